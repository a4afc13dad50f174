// Parser of the sync-rules SQL subset: one SELECT (parameter or data query) or one expression
// (write_rules conditions). Reports syntax errors and the constructs the older PowerSync dialect
// rejects (LIKE, CASE, %, unary minus, IN (list), 1e3, subqueries, joins, ...) with their spans.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "config/rules/ast.h"

namespace sluice::config::rules {

struct ParsedSelect {
    std::optional<SelectStatement> statement;  // absent after a syntax error that stops parsing
    std::vector<SqlError> errors;
};

struct ParsedExpression {
    std::optional<Node> expression;
    std::vector<SqlError> errors;
};

[[nodiscard]] ParsedSelect parse_select(std::string_view sql);
[[nodiscard]] ParsedExpression parse_expression(std::string_view sql);

}  // namespace sluice::config::rules
