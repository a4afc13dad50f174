// Shapes a Sync Streams query (or subquery) for compiling: the table whose columns it selects, the
// OR alternatives of its WHERE, and its INNER JOINs turned into `<column> IN (SELECT <column> FROM
// <joined table> WHERE <its conditions>)` atoms. Internal to the stream compiler.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "config/rules/ast.h"
#include "config/rules/rule_set.h"

namespace sluice::config::rules::detail {

// A table of a query: the FROM table or an INNER JOIN table.
struct QueryTable {
    std::vector<std::string> parts;  // [schema,] name
    std::string alias;
    Span span;
    [[nodiscard]] const std::string& ref() const { return alias.empty() ? parts.back() : alias; }
    [[nodiscard]] TableName name() const { return {parts.size() == 2 ? parts[0] : "public", parts.back()}; }
};

// What a WHERE atom touches, from its syntax.
struct Touch {
    bool request = false;
    bool subquery = false;
    bool unqualified = false;  // a bare column name
    std::uint32_t tables = 0;  // bit i: a column of table i
};

// A query after its joins are turned into subqueries: the table whose columns it selects, and the
// atoms of each OR alternative of its WHERE (with IN (SELECT ...) atoms standing for the joins).
struct Shaped {
    QueryTable root;
    std::vector<std::vector<const Node*>> terms;
};

// Whether a node names a with: query (a bare name that the compiler knows).
using WithRefTest = std::function<bool(const Node&)>;

// Which tables a node touches. Does not look into subqueries.
void touch_node(const Node& n, const std::vector<QueryTable>& tables, const WithRefTest& is_with_ref, Touch& t);

// Splits stmt's WHERE into OR alternatives and turns its joins into subqueries (the nodes it makes
// live in synth). False, with errors, when the query's shape is not supported.
[[nodiscard]] bool shape_query(const SelectStatement& stmt, std::string_view sql, const WithRefTest& is_with_ref,
                               std::vector<SqlError>& errors, std::deque<Node>& synth, Shaped& out);

// Disjunctive normal form over AND/OR, expanding only the subtrees `split` selects; stops past
// kMaxTerms alternatives.
constexpr std::size_t kMaxTerms = 64;
[[nodiscard]] std::vector<std::vector<const Node*>> dnf(const Node& n, const std::function<bool(const Node&)>& split);

}  // namespace sluice::config::rules::detail
