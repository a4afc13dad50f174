// Parser of the sync-rules SQL subset: one SELECT (parameter or data query, or a Sync Streams
// query) or one expression (write_rules conditions). Reports syntax errors and the constructs the
// dialect rejects with their spans: bucket_definitions has no LIKE, CASE, %, unary minus, IN (list),
// 1e3, subqueries or joins; Sync Streams adds IN (SELECT ...), INNER JOIN ... ON, BETWEEN, CASE and
// ARRAY[...]/ROW(...) lists, and still rejects the rest.
#pragma once

#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "config/rules/ast.h"

namespace sluice::config::rules {

struct ParsedSelect {
    std::optional<SelectStatement> statement;  // absent after a syntax error that stops parsing
    std::vector<SqlError> errors;
    std::vector<std::pair<Feature, Span>> features;  // streams: edition-3 constructs used, in order
};

struct ParsedExpression {
    std::optional<Node> expression;
    std::vector<SqlError> errors;
};

[[nodiscard]] ParsedSelect parse_select(std::string_view sql, Dialect dialect = Dialect::kBucketDefinitions);
[[nodiscard]] ParsedExpression parse_expression(std::string_view sql);

}  // namespace sluice::config::rules
