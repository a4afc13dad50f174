// The compiled form of a rule set: bucket definitions, their parameter and data queries split into
// OR-free match terms, indexed by source table. Built by compiler.cpp, read by evaluator.cpp. Internal.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "config/rules/detail/expr.h"
#include "config/rules/rule_set.h"
#include "config/rules/write_rules.h"

namespace sluice::config::rules::detail {

// One `<expr> = bucket.p` (in_array false) or `bucket.p IN <expr>` (in_array true).
struct Binding {
    int param = 0;
    CExpr expr;
    bool in_array = false;
};

// One alternative of a data query's WHERE (its disjunctive normal form): all filters true and every
// parameter bound.
struct DataTerm {
    std::vector<CExpr> filters;
    std::vector<Binding> bindings;
};

struct OutputColumn {
    bool star = false;
    std::string name;
    CExpr expr;
};

struct DataQuery {
    int definition = 0;
    int index = 0;
    TableName table;
    std::string output_table;
    std::string sql;
    std::vector<OutputColumn> columns;
    bool star_only = false;  // SELECT * alone: the row is the output
    std::vector<DataTerm> terms;
    bool simple = false;  // one term, only = bindings, each parameter once: the fast path
};

enum class KeyKind : std::uint8_t {
    kEqual,         // <row expr> = <request expr>
    kRowArray,      // <request expr> IN <row array expr>
    kRequestArray,  // <row expr> IN <request array expr>
};

struct KeyPart {
    KeyKind kind = KeyKind::kEqual;
    CExpr row;
    CExpr request;
};

// One alternative of a table parameter query's WHERE, with its own lookup key prefix.
struct LookupTerm {
    std::vector<CExpr> row_filters;
    std::vector<CExpr> request_filters;
    std::vector<KeyPart> keys;
    std::string key_prefix;  // "<definition>/<query>/<term>"
};

struct ParameterOutput {
    int param = 0;
    CExpr expr;
    bool row_side = false;  // computed from the parameter-table row (stored in the lookup entry)
};

enum class ParameterKind : std::uint8_t { kRequest, kJsonEach, kTable };

struct ParameterQuery {
    int definition = 0;
    int index = 0;
    ParameterKind kind = ParameterKind::kRequest;
    TableName table;
    CExpr each_source;  // kJsonEach
    bool has_where = false;
    CExpr where;  // kRequest / kJsonEach
    std::vector<ParameterOutput> outputs;
    std::vector<LookupTerm> terms;  // kTable
    bool stored_in_order = false;   // kTable: every output is row-side, in parameter order
    std::string sql;
};

struct Definition {
    std::string name;
    int priority = 3;
    std::vector<std::string> params;
    std::vector<ParameterQuery> parameter_queries;
    std::vector<int> data_queries;  // indexes into Compiled::data
    bool has_parameters_key = false;
};

struct TableIndex {
    std::vector<int> data;                          // data query indexes
    std::vector<std::pair<int, int>> parameters;  // (definition, parameter query)
};

struct Compiled {
    CompileOptions options;
    std::vector<Definition> definitions;
    std::vector<DataQuery> data;
    std::map<std::string, TableIndex, std::less<>> tables;  // key: schema + '.' + name
    WriteRules write_rules;
};

}  // namespace sluice::config::rules::detail

namespace sluice::config::rules {
struct RuleSet::Impl : detail::Compiled {};
}  // namespace sluice::config::rules
