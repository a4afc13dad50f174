// Evaluator of compiled expressions: operators with SQLite semantics (see detail/expr.h).
#include "config/rules/detail/expr.h"

#include <cmath>
#include <limits>

#include "config/rules/json.h"

namespace sluice::config::rules::detail {
namespace {

const Value kNullValue;

const Value& column(const CExpr& e, const EvalContext& ctx) {
    const Row* row = e.source == RowSource::kRow ? ctx.row : e.source == RowSource::kOld ? ctx.old_row : ctx.new_row;
    if (row == nullptr) {
        return kNullValue;
    }
    const Value* v = row->find(e.name);
    return v != nullptr ? *v : kNullValue;
}

Value arithmetic(BinaryOp op, const Value& a, const Value& b) {
    if (a.is_null() || b.is_null()) {
        return {};
    }
    const Value x = to_numeric(a);
    const Value y = to_numeric(b);
    if (x.type() == ValueType::kInteger && y.type() == ValueType::kInteger) {
        const std::int64_t i = x.as_integer();
        const std::int64_t j = y.as_integer();
        std::int64_t r = 0;
        switch (op) {
            case BinaryOp::kAdd:
                if (!__builtin_add_overflow(i, j, &r)) {
                    return Value::integer(r);
                }
                break;
            case BinaryOp::kSub:
                if (!__builtin_sub_overflow(i, j, &r)) {
                    return Value::integer(r);
                }
                break;
            case BinaryOp::kMul:
                if (!__builtin_mul_overflow(i, j, &r)) {
                    return Value::integer(r);
                }
                break;
            default:
                if (j == 0) {
                    return {};
                }
                if (!(i == std::numeric_limits<std::int64_t>::min() && j == -1)) {
                    return Value::integer(i / j);
                }
                break;
        }
    }
    const double p = x.number();
    const double q = y.number();
    switch (op) {
        case BinaryOp::kAdd: return Value::real(p + q);
        case BinaryOp::kSub: return Value::real(p - q);
        case BinaryOp::kMul: return Value::real(p * q);
        default:
            if (q == 0.0) {
                return {};
            }
            return Value::real(p / q);
    }
}

Value binary(const CExpr& e, EvalContext& ctx) {
    Value sa;
    Value sb;
    const Value& a = eval_ref(e.args[0], ctx, sa);
    const Value& b = eval_ref(e.args[1], ctx, sb);
    switch (e.bop) {
        case BinaryOp::kEq:
        case BinaryOp::kNe:
        case BinaryOp::kLt:
        case BinaryOp::kLe:
        case BinaryOp::kGt:
        case BinaryOp::kGe: {
            if (a.is_null() || b.is_null()) {
                return {};
            }
            const int c = compare(a, b);
            bool r = false;
            switch (e.bop) {
                case BinaryOp::kEq: r = c == 0; break;
                case BinaryOp::kNe: r = c != 0; break;
                case BinaryOp::kLt: r = c < 0; break;
                case BinaryOp::kLe: r = c <= 0; break;
                case BinaryOp::kGt: r = c > 0; break;
                default: r = c >= 0; break;
            }
            return Value::boolean(r);
        }
        case BinaryOp::kAdd:
        case BinaryOp::kSub:
        case BinaryOp::kMul:
        case BinaryOp::kDiv: return arithmetic(e.bop, a, b);
        case BinaryOp::kConcat: {
            if (a.is_null() || b.is_null()) {
                return {};
            }
            std::string out = *a.to_text();
            out += *b.to_text();
            return Value::text(std::move(out));
        }
        case BinaryOp::kArrow:
        case BinaryOp::kArrow2: {
            if (a.is_null() || b.is_null()) {
                return {};
            }
            const std::string json = *a.to_text();
            auto res = json_arrow(json, b, e.bop == BinaryOp::kArrow ? JsonMode::kJsonText : JsonMode::kSqlValue);
            if (!res.error.empty()) {
                ctx.error = res.error + " in " + std::string(e.bop == BinaryOp::kArrow ? "->" : "->>");
            }
            return std::move(res.value);
        }
        default: return {};
    }
}

Value in_array(const CExpr& e, EvalContext& ctx) {
    Value sa;
    Value sb;
    const Value& needle = eval_ref(e.args[0], ctx, sa);
    const Value& haystack = eval_ref(e.args[1], ctx, sb);
    if (haystack.is_null()) {
        return {};
    }
    std::string error;
    std::optional<std::vector<Value>> elements;
    if (haystack.type() == ValueType::kText) {
        elements = json_array_values(haystack.bytes(), &error);
    }
    if (!elements) {
        std::string shown = haystack.to_text().value_or("");
        if (shown.size() > 40) {
            shown.resize(37);
            shown += "...";
        }
        ctx.error = "IN expects a JSON array on its right side, got " + std::string(haystack.type_name()) + " '" +
                    shown + "'";
        return {};
    }
    if (needle.is_null()) {
        return {};
    }
    bool saw_null = false;
    for (const auto& v : *elements) {
        if (sql_equal(needle, v)) {
            return Value::integer(1);
        }
        saw_null = saw_null || v.is_null();
    }
    return saw_null ? Value::null() : Value::integer(0);
}

// CASE x WHEN a THEN b ... ELSE c END compares with = (NULL matches nothing); CASE WHEN cond THEN
// b ... takes the first true condition; no match and no ELSE gives NULL.
Value case_value(const CExpr& e, EvalContext& ctx) {
    std::size_t i = 0;
    Value operand;
    if (e.case_operand) {
        operand = eval(e.args[0], ctx);
        i = 1;
    }
    const std::size_t pairs_end = e.args.size() - (e.case_else ? 1 : 0);
    for (; i + 1 < pairs_end; i += 2) {
        bool hit = false;
        if (e.case_operand) {
            Value s;
            hit = sql_equal(operand, eval_ref(e.args[i], ctx, s));
        } else {
            const auto t = truthy(eval(e.args[i], ctx));
            hit = t.has_value() && *t;
        }
        if (hit) {
            return eval(e.args[i + 1], ctx);
        }
    }
    if (e.case_else) {
        return eval(e.args.back(), ctx);
    }
    return {};
}

}  // namespace

bool same_expr(const CExpr& a, const CExpr& b) {
    if (a.op != b.op || a.bop != b.bop || a.source != b.source || a.cast != b.cast || a.fn != b.fn ||
        a.index != b.index || a.case_operand != b.case_operand || a.case_else != b.case_else || a.name != b.name ||
        !(a.literal == b.literal) || a.args.size() != b.args.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.args.size(); ++i) {
        if (!same_expr(a.args[i], b.args[i])) {
            return false;
        }
    }
    return true;
}

Value cast_value(const Value& v, CastType type) {
    if (v.is_null()) {
        return {};
    }
    switch (type) {
        case CastType::kText: return Value::text(*v.to_text());
        case CastType::kBlob: return Value::blob(*v.to_text());
        case CastType::kReal: {
            const Value n = to_numeric(v);
            return Value::real(n.number());
        }
        case CastType::kInteger: {
            const Value n = to_numeric(v);
            if (n.type() == ValueType::kInteger) {
                return n;
            }
            const double f = std::floor(n.as_real());
            if (std::isnan(f)) {
                return Value::integer(0);
            }
            if (f >= 9223372036854775807.0) {
                return Value::integer(std::numeric_limits<std::int64_t>::max());
            }
            if (f <= -9223372036854775808.0) {
                return Value::integer(std::numeric_limits<std::int64_t>::min());
            }
            return Value::integer(static_cast<std::int64_t>(f));
        }
        case CastType::kNumeric: {
            const Value n = to_numeric(v);
            if (n.type() == ValueType::kReal && std::floor(n.as_real()) == n.as_real() &&
                std::fabs(n.as_real()) < 9223372036854775807.0) {
                return Value::integer(static_cast<std::int64_t>(n.as_real()));
            }
            return n;
        }
    }
    return {};
}

const Value& eval_ref(const CExpr& e, EvalContext& ctx, Value& scratch) {
    switch (e.op) {
        case Op::kLiteral: return e.literal;
        case Op::kColumn: return column(e, ctx);
        case Op::kEachValue: return ctx.each_value != nullptr ? *ctx.each_value : kNullValue;
        case Op::kEachKey: return ctx.each_key != nullptr ? *ctx.each_key : kNullValue;
        case Op::kUserId: return ctx.request != nullptr ? ctx.request->user_id() : kNullValue;
        case Op::kTokenParam: return ctx.request != nullptr ? ctx.request->token_parameter(e.name) : kNullValue;
        case Op::kUserParam: return ctx.request != nullptr ? ctx.request->client_parameter(e.name) : kNullValue;
        case Op::kClaim: return ctx.request != nullptr ? ctx.request->claim(e.name) : kNullValue;
        case Op::kSubParam: return ctx.subscription != nullptr ? ctx.subscription->parameter(e.name) : kNullValue;
        default: scratch = eval(e, ctx); return scratch;
    }
}

Value eval(const CExpr& e, EvalContext& ctx) {
    switch (e.op) {
        case Op::kLiteral: return e.literal;
        case Op::kColumn: return column(e, ctx);
        case Op::kEachValue: return ctx.each_value != nullptr ? *ctx.each_value : Value{};
        case Op::kEachKey: return ctx.each_key != nullptr ? *ctx.each_key : Value{};
        case Op::kUserId: return ctx.request != nullptr ? ctx.request->user_id() : Value{};
        case Op::kJwt: return ctx.request != nullptr ? Value::text(ctx.request->jwt()) : Value{};
        case Op::kClientParams: return ctx.request != nullptr ? Value::text(ctx.request->parameters()) : Value{};
        case Op::kTokenParam: return ctx.request != nullptr ? ctx.request->token_parameter(e.name) : Value{};
        case Op::kUserParam: return ctx.request != nullptr ? ctx.request->client_parameter(e.name) : Value{};
        case Op::kBucketParam: return {};
        case Op::kClaim: return ctx.request != nullptr ? ctx.request->claim(e.name) : Value{};
        case Op::kSubParam: return ctx.subscription != nullptr ? ctx.subscription->parameter(e.name) : Value{};
        case Op::kSubParams: return Value::text(ctx.subscription != nullptr ? ctx.subscription->json() : "{}");
        case Op::kCase: return case_value(e, ctx);
        case Op::kList: {
            std::string out = "[";
            for (std::size_t i = 0; i < e.args.size(); ++i) {
                if (i > 0) {
                    out += ',';
                }
                Value s;
                append_json(out, eval_ref(e.args[i], ctx, s));
            }
            out += ']';
            return Value::text(std::move(out));
        }
        case Op::kAnd: {
            const auto a = truthy(eval(e.args[0], ctx));
            if (a.has_value() && !*a) {
                return Value::integer(0);
            }
            const auto b = truthy(eval(e.args[1], ctx));
            if (b.has_value() && !*b) {
                return Value::integer(0);
            }
            if (!a.has_value() || !b.has_value()) {
                return {};
            }
            return Value::integer(1);
        }
        case Op::kOr: {
            const auto a = truthy(eval(e.args[0], ctx));
            if (a.has_value() && *a) {
                return Value::integer(1);
            }
            const auto b = truthy(eval(e.args[1], ctx));
            if (b.has_value() && *b) {
                return Value::integer(1);
            }
            if (!a.has_value() || !b.has_value()) {
                return {};
            }
            return Value::integer(0);
        }
        case Op::kNot: {
            const auto a = truthy(eval(e.args[0], ctx));
            if (!a.has_value()) {
                return {};
            }
            return Value::boolean(!*a);
        }
        case Op::kIsNull:
        case Op::kIsNotNull: {
            Value s;
            const bool null = eval_ref(e.args[0], ctx, s).is_null();
            return Value::boolean(e.op == Op::kIsNull ? null : !null);
        }
        case Op::kBinary: return binary(e, ctx);
        case Op::kIn: return in_array(e, ctx);
        case Op::kCast: {
            Value s;
            return cast_value(eval_ref(e.args[0], ctx, s), e.cast);
        }
        case Op::kCall: return call_function(e, ctx);
    }
    return {};
}

bool eval_condition(const CExpr& e, EvalContext& ctx) {
    if (e.op == Op::kBinary && e.bop == BinaryOp::kEq) {
        Value sa;
        Value sb;
        return sql_equal(eval_ref(e.args[0], ctx, sa), eval_ref(e.args[1], ctx, sb));
    }
    const auto t = truthy(eval(e, ctx));
    return t.has_value() && *t;
}

}  // namespace sluice::config::rules::detail
