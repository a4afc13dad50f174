// The built-in functions of the rules dialect (deterministic only), SQLite semantics except where the
// compat doc says PowerSync differs (UTF-16 lengths, non-ASCII case mapping).
#include <array>
#include <cmath>

#include "config/rules/datetime.h"
#include "config/rules/detail/expr.h"
#include "config/rules/json.h"
#include "config/rules/unicode.h"

namespace sluice::config::rules::detail {
namespace {

constexpr std::array kFunctions{
    FunctionInfo{"upper", Fn::kUpper, 1, 1, "upper(text)"},
    FunctionInfo{"lower", Fn::kLower, 1, 1, "lower(text)"},
    FunctionInfo{"substring", Fn::kSubstring, 2, 3, "substring(text, start[, length])"},
    FunctionInfo{"length", Fn::kLength, 1, 1, "length(value)"},
    FunctionInfo{"hex", Fn::kHex, 1, 1, "hex(value)"},
    FunctionInfo{"base64", Fn::kBase64, 1, 1, "base64(value)"},
    FunctionInfo{"typeof", Fn::kTypeof, 1, 1, "typeof(value)"},
    FunctionInfo{"ifnull", Fn::kIfnull, 2, 2, "ifnull(a, b)"},
    FunctionInfo{"iif", Fn::kIif, 3, 3, "iif(condition, a, b)"},
    FunctionInfo{"json_extract", Fn::kJsonExtract, 2, 2, "json_extract(json, path)"},
    FunctionInfo{"json_array_length", Fn::kJsonArrayLength, 1, 2, "json_array_length(json[, path])"},
    FunctionInfo{"json_valid", Fn::kJsonValid, 1, 1, "json_valid(text)"},
    FunctionInfo{"json_keys", Fn::kJsonKeys, 1, 2, "json_keys(json[, path])"},
    FunctionInfo{"unixepoch", Fn::kUnixepoch, 1, 3, "unixepoch(time[, modifier...])"},
    FunctionInfo{"datetime", Fn::kDatetime, 1, 3, "datetime(time[, modifier...])"},
};

constexpr std::string_view kNames =
    "upper, lower, substring, length, hex, base64, typeof, ifnull, iif, json_extract, json_array_length, "
    "json_valid, json_keys, json_each (in FROM), unixepoch, datetime";

std::string hex_of(std::string_view bytes) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (char ch : bytes) {
        const auto c = static_cast<unsigned char>(ch);
        out += kHex[c >> 4];
        out += kHex[c & 15];
    }
    return out;
}

std::string base64_of(std::string_view bytes) {
    static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 2 < bytes.size(); i += 3) {
        const unsigned n = (static_cast<unsigned char>(bytes[i]) << 16) |
                           (static_cast<unsigned char>(bytes[i + 1]) << 8) | static_cast<unsigned char>(bytes[i + 2]);
        out += kAlphabet[(n >> 18) & 63];
        out += kAlphabet[(n >> 12) & 63];
        out += kAlphabet[(n >> 6) & 63];
        out += kAlphabet[n & 63];
    }
    if (i < bytes.size()) {
        unsigned n = static_cast<unsigned char>(bytes[i]) << 16;
        if (i + 1 < bytes.size()) {
            n |= static_cast<unsigned char>(bytes[i + 1]) << 8;
        }
        out += kAlphabet[(n >> 18) & 63];
        out += kAlphabet[(n >> 12) & 63];
        out += i + 1 < bytes.size() ? kAlphabet[(n >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

std::int64_t to_int(const Value& v) {
    const Value n = to_numeric(v);
    if (n.type() == ValueType::kInteger) {
        return n.as_integer();
    }
    const double d = std::trunc(n.as_real());
    if (!(d > -9.2e18 && d < 9.2e18)) {
        return d < 0 ? -(std::int64_t{1} << 62) : (std::int64_t{1} << 62);
    }
    return static_cast<std::int64_t>(d);
}

Value json_result(JsonResult res, EvalContext& ctx, std::string_view fn) {
    if (!res.error.empty()) {
        ctx.error = res.error + " in " + std::string(fn) + "()";
    }
    return std::move(res.value);
}

}  // namespace

const FunctionInfo* find_function(std::string_view name) {
    for (const auto& f : kFunctions) {
        if (f.name == name) {
            return &f;
        }
    }
    return nullptr;
}

std::string_view function_names() { return kNames; }

Value call_function(const CExpr& call, EvalContext& ctx) {
    if (call.fn == Fn::kIif) {
        const auto c = truthy(eval(call.args[0], ctx));
        return eval(call.args[(c.has_value() && *c) ? 1 : 2], ctx);
    }
    if (call.fn == Fn::kIfnull) {
        Value a = eval(call.args[0], ctx);
        return a.is_null() ? eval(call.args[1], ctx) : a;
    }
    std::array<Value, 3> args;
    for (std::size_t i = 0; i < call.args.size() && i < args.size(); ++i) {
        args[i] = eval(call.args[i], ctx);
    }
    const Value& a = args[0];
    switch (call.fn) {
        case Fn::kUpper: return a.is_null() ? Value{} : Value::text(to_upper(*a.to_text()));
        case Fn::kLower: return a.is_null() ? Value{} : Value::text(to_lower(*a.to_text()));
        case Fn::kSubstring: {
            if (a.is_null() || args[1].is_null() || (call.args.size() == 3 && args[2].is_null())) {
                return {};
            }
            const bool has_length = call.args.size() == 3;
            const std::int64_t start = to_int(args[1]);
            const std::int64_t length = has_length ? to_int(args[2]) : 0;
            if (a.type() == ValueType::kBlob) {
                std::int64_t first = 0;
                std::int64_t count = 0;
                substring_range(static_cast<std::int64_t>(a.bytes().size()), start, length, has_length, first, count);
                return Value::blob(a.bytes().substr(static_cast<std::size_t>(first), static_cast<std::size_t>(count)));
            }
            return Value::text(utf16_substring(*a.to_text(), start, length, has_length));
        }
        case Fn::kLength:
            switch (a.type()) {
                case ValueType::kNull: return {};
                case ValueType::kBlob: return Value::integer(static_cast<std::int64_t>(a.bytes().size()));
                default: return Value::integer(static_cast<std::int64_t>(utf16_length(*a.to_text())));
            }
        case Fn::kHex: return Value::text(a.is_null() ? std::string() : hex_of(*a.to_text()));
        case Fn::kBase64: return a.is_null() ? Value{} : Value::text(base64_of(*a.to_text()));
        case Fn::kTypeof: return Value::text(std::string(a.type_name()));
        case Fn::kJsonExtract:
            if (a.is_null() || args[1].is_null()) {
                return {};
            }
            return json_result(json_extract(*a.to_text(), *args[1].to_text(), JsonMode::kSqlValue), ctx,
                               "json_extract");
        case Fn::kJsonArrayLength:
            if (a.is_null() || (call.args.size() == 2 && args[1].is_null())) {
                return {};
            }
            return json_result(json_array_length(*a.to_text(), call.args.size() == 2 ? *args[1].to_text() : "$"),
                               ctx, "json_array_length");
        case Fn::kJsonKeys:
            if (a.is_null() || (call.args.size() == 2 && args[1].is_null())) {
                return {};
            }
            return json_result(json_keys(*a.to_text(), call.args.size() == 2 ? *args[1].to_text() : "$"), ctx,
                               "json_keys");
        case Fn::kJsonValid:
            if (a.is_null()) {
                return {};
            }
            if (a.type() == ValueType::kBlob) {
                return Value::integer(0);
            }
            return Value::boolean(json_valid(*a.to_text()));
        case Fn::kUnixepoch:
            return sql_unixepoch(std::span<const Value>(args.data(), call.args.size()));
        case Fn::kDatetime:
            return sql_datetime(std::span<const Value>(args.data(), call.args.size()));
        default: return {};
    }
}

}  // namespace sluice::config::rules::detail
