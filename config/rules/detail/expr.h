// Compiled expressions: the evaluable form of the AST (names resolved to row columns or request
// values, functions to table entries), and their evaluator. Internal to config/rules.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/rules/ast.h"
#include "config/rules/request.h"
#include "config/rules/value.h"

namespace sluice::config::rules::detail {

enum class Op : std::uint8_t {
    kLiteral,
    kColumn,        // name in source (row / old / new)
    kEachValue,     // json_each's value
    kEachKey,       // json_each's key
    kUserId,        // request.user_id()
    kJwt,           // request.jwt()
    kClientParams,  // request.parameters()
    kTokenParam,    // token_parameters.<name>
    kUserParam,     // user_parameters.<name>
    kBucketParam,   // bucket.<name>: only valid in data-query matches, never evaluated
    kClaim,         // streams: auth.parameter('<name>'), a top-level claim of the token
    kSubParam,      // streams: subscription.parameter('<name>')
    kSubParams,     // streams: subscription.parameters(), JSON text
    kCase,          // streams: CASE; args as NodeKind::kCase, has_operand/has_else in case_operand/case_else
    kList,          // streams: ARRAY[...]/ROW(...) -> JSON array text
    kAnd,
    kOr,
    kNot,
    kIsNull,
    kIsNotNull,
    kBinary,  // bop: comparisons, arithmetic, ||, ->, ->>
    kIn,
    kCast,
    kCall,
};

enum class RowSource : std::uint8_t { kRow, kOld, kNew };
enum class CastType : std::uint8_t { kText, kInteger, kReal, kNumeric, kBlob };
enum class Fn : std::uint8_t {
    kUpper, kLower, kSubstring, kLength, kHex, kBase64, kTypeof, kIfnull, kIif, kJsonExtract,
    kJsonArrayLength, kJsonValid, kJsonKeys, kUnixepoch, kDatetime,
};

struct CExpr {
    Op op = Op::kLiteral;
    BinaryOp bop = BinaryOp::kEq;
    RowSource source = RowSource::kRow;
    CastType cast = CastType::kText;
    Fn fn = Fn::kUpper;
    int index = -1;  // kBucketParam: parameter index
    bool case_operand = false;
    bool case_else = false;
    Value literal;
    std::string name;
    std::vector<CExpr> args;
};

// What evaluation can see. Errors (IN on a non-array, malformed JSON) set error and yield NULL; the
// caller checks error after evaluating.
struct EvalContext {
    const Row* row = nullptr;
    const Row* old_row = nullptr;
    const Row* new_row = nullptr;
    const Request* request = nullptr;
    const SubscriptionParameters* subscription = nullptr;  // streams: the subscription being resolved
    const Value* each_key = nullptr;
    const Value* each_value = nullptr;
    std::string error;
};

[[nodiscard]] Value eval(const CExpr& e, EvalContext& ctx);
// Like eval, but returns a reference to the row's or literal's own value when possible (no copy);
// otherwise evaluates into scratch and returns it.
[[nodiscard]] const Value& eval_ref(const CExpr& e, EvalContext& ctx, Value& scratch);
// Where-clause truth: true only when the value is true (NULL is not).
[[nodiscard]] bool eval_condition(const CExpr& e, EvalContext& ctx);

struct FunctionInfo {
    std::string_view name;
    Fn fn;
    int min_args;
    int max_args;
    std::string_view signature;
};
[[nodiscard]] const FunctionInfo* find_function(std::string_view name);
// Comma-separated names of every function, for messages.
[[nodiscard]] std::string_view function_names();
[[nodiscard]] Value call_function(const CExpr& call, EvalContext& ctx);
[[nodiscard]] Value cast_value(const Value& v, CastType type);
// Structural equality of compiled expressions (same operation on the same inputs).
[[nodiscard]] bool same_expr(const CExpr& a, const CExpr& b);

}  // namespace sluice::config::rules::detail
