// Text form -> Value decoding by Postgres type (see text_value.h). Spec: each type's output function
// as documented in the Postgres manual, "Data Types" (numeric, float, boolean, bytea hex format,
// arrays "Array Value Input"/"Output").
#include "protocol/pgoutput/text_value.h"

#include <charconv>
#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace sluice::protocol::pgoutput {
namespace {

// The type after following domains; enums and unknown types come back as text.
enum class Category { kInteger, kReal, kNumeric, kBool, kBytea, kJson, kArray, kText };

struct Resolved {
    Category category = Category::kText;
    Oid type = 0;  // the base type, or for kArray the element type
};

Resolved resolve(Oid type, const TypeResolver& resolver) {
    for (int depth = 0; depth < 16; ++depth) {  // domains over domains; bounded against cycles
        switch (type) {
            case oid::kInt2:
            case oid::kInt4:
            case oid::kInt8:
            case oid::kOid:
                return {Category::kInteger, type};
            case oid::kFloat4:
            case oid::kFloat8:
                return {Category::kReal, type};
            case oid::kNumeric:
                return {Category::kNumeric, type};
            case oid::kBool:
                return {Category::kBool, type};
            case oid::kBytea:
                return {Category::kBytea, type};
            case oid::kJson:
            case oid::kJsonb:
                return {Category::kJson, type};
            default:
                break;
        }
        if (auto element = oid::builtin_array_element(type)) {
            return {Category::kArray, *element};
        }
        if (!resolver) {
            return {Category::kText, type};
        }
        const auto description = resolver(type);
        if (!description) {
            return {Category::kText, type};
        }
        switch (description->kind) {
            case TypeDescription::Kind::kDomain:
                type = description->base;
                continue;
            case TypeDescription::Kind::kArray:
                return {Category::kArray, description->base};
            case TypeDescription::Kind::kEnum:
            case TypeDescription::Kind::kOther:
                return {Category::kText, type};
        }
    }
    return {Category::kText, type};
}

Status bad_value(Oid type, std::string_view text, std::string_view why) {
    constexpr std::size_t kShown = 64;
    return {ErrorCode::kPgoutputValueMalformed,
            fmt::format("cannot decode the text '{}{}' of a value of type oid {}: {}", text.substr(0, kShown),
                        text.size() > kShown ? "…" : "", type, why)};
}

std::optional<std::int64_t> parse_integer(std::string_view text) {
    std::int64_t v = 0;
    const auto* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, v);
    if (ec != std::errc() || ptr != end) {
        return std::nullopt;
    }
    return v;
}

std::optional<double> parse_real(std::string_view text) {
    if (text == "NaN") {
        return std::numeric_limits<double>::quiet_NaN();
    }
    if (text == "Infinity") {
        return std::numeric_limits<double>::infinity();
    }
    if (text == "-Infinity") {
        return -std::numeric_limits<double>::infinity();
    }
    double v = 0;
    const auto* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, v);
    if (ec != std::errc() || ptr != end) {
        return std::nullopt;
    }
    return v;
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::optional<std::string> parse_bytea_hex(std::string_view text) {
    if (!text.starts_with("\\x") || text.size() % 2 != 0) {
        return std::nullopt;
    }
    std::string out;
    out.reserve(text.size() / 2 - 1);
    for (std::size_t i = 2; i < text.size(); i += 2) {
        const int hi = hex_digit(text[i]);
        const int lo = hex_digit(text[i + 1]);
        if (hi < 0 || lo < 0) {
            return std::nullopt;
        }
        out.push_back(static_cast<char>(hi * 16 + lo));
    }
    return out;
}

bool is_json_number(std::string_view text) {
    // Postgres numeric output: -?digits(.digits)? ; anything else (NaN, Infinity) is not a JSON number.
    std::size_t i = 0;
    if (i < text.size() && text[i] == '-') ++i;
    const auto digits_from = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    if (i == digits_from) return false;
    if (i < text.size() && text[i] == '.') {
        ++i;
        const auto frac_from = i;
        while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
        if (i == frac_from) return false;
    }
    return i == text.size();
}

// Parses the array literal recursively, writing JSON as it goes.
class ArrayParser {
public:
    ArrayParser(Oid element, Resolved resolved, std::string_view text)
        : m_element(element), m_resolved(resolved), m_text(text), m_delimiter(element == oid::kBox ? ';' : ',') {}

    Status parse(std::string& out) {
        // Optional dimension decoration "[1:2][0:1]=" when a lower bound is not 1.
        if (!m_text.empty() && m_text.front() == '[') {
            const auto eq = m_text.find('=');
            if (eq == std::string_view::npos) {
                return bad("dimension decoration without '='");
            }
            m_pos = eq + 1;
        }
        if (auto s = parse_level(out, 0); !s.is_ok()) {
            return s;
        }
        if (m_pos != m_text.size()) {
            return bad("trailing characters after the array");
        }
        return Status::ok();
    }

private:
    static constexpr int kMaxDepth = 6;  // Postgres's MAXDIM

    Status bad(std::string_view why) const {
        return bad_value(m_element, m_text, fmt::format("array element type {}: {} at character {}", m_element, why,
                                                        m_pos + 1));
    }

    Status parse_level(std::string& out, int depth) {
        if (depth >= kMaxDepth) {
            return bad("more than 6 dimensions");
        }
        if (m_pos >= m_text.size() || m_text[m_pos] != '{') {
            return bad("expected '{'");
        }
        ++m_pos;
        out.push_back('[');
        if (m_pos < m_text.size() && m_text[m_pos] == '}') {
            ++m_pos;
            out.push_back(']');
            return Status::ok();
        }
        for (bool first = true;; first = false) {
            if (!first) {
                out.push_back(',');
            }
            if (m_pos >= m_text.size()) {
                return bad("unterminated array");
            }
            Status s = m_text[m_pos] == '{' ? parse_level(out, depth + 1) : parse_element(out);
            if (!s.is_ok()) {
                return s;
            }
            if (m_pos >= m_text.size()) {
                return bad("unterminated array");
            }
            if (m_text[m_pos] == '}') {
                ++m_pos;
                out.push_back(']');
                return Status::ok();
            }
            if (m_text[m_pos] != m_delimiter) {
                return bad("expected a delimiter or '}'");
            }
            ++m_pos;
        }
    }

    Status parse_element(std::string& out) {
        std::string value;
        bool quoted = false;
        if (m_text[m_pos] == '"') {
            quoted = true;
            ++m_pos;
            for (;;) {
                if (m_pos >= m_text.size()) {
                    return bad("unterminated quoted element");
                }
                const char c = m_text[m_pos++];
                if (c == '"') {
                    break;
                }
                if (c == '\\') {
                    if (m_pos >= m_text.size()) {
                        return bad("backslash at the end");
                    }
                    value.push_back(m_text[m_pos++]);
                } else {
                    value.push_back(c);
                }
            }
        } else {
            while (m_pos < m_text.size() && m_text[m_pos] != m_delimiter && m_text[m_pos] != '}') {
                const char c = m_text[m_pos];
                if (c == '{' || c == '"') {
                    return bad("unexpected character in an unquoted element");
                }
                if (c == '\\') {
                    ++m_pos;
                    if (m_pos >= m_text.size()) {
                        return bad("backslash at the end");
                    }
                }
                value.push_back(m_text[m_pos++]);
            }
            if (value.empty()) {
                return bad("empty unquoted element");
            }
        }
        if (!quoted && value.size() == 4 && (value == "NULL" || value == "null" || value == "Null")) {
            out += "null";
            return Status::ok();
        }
        return append_element(out, value);
    }

    Status append_element(std::string& out, const std::string& value) const {
        switch (m_resolved.category) {
            case Category::kInteger:
                if (!parse_integer(value)) {
                    return bad_value(m_element, value, "not an integer");
                }
                out += value;
                return Status::ok();
            case Category::kReal: {
                const auto v = parse_real(value);
                if (!v) {
                    return bad_value(m_element, value, "not a floating-point number");
                }
                if (std::isfinite(*v)) {
                    append_js_number(out, *v);
                } else {
                    append_json_string(out, value);
                }
                return Status::ok();
            }
            case Category::kNumeric:
                if (is_json_number(value)) {
                    out += value;
                } else {
                    append_json_string(out, value);
                }
                return Status::ok();
            case Category::kBool:
                if (value == "t" || value == "f") {
                    out += value == "t" ? "true" : "false";
                    return Status::ok();
                }
                return bad_value(m_element, value, "not a boolean");
            case Category::kJson:
                out += value;  // already JSON; Postgres validated it
                return Status::ok();
            case Category::kBytea:
            case Category::kArray:
            case Category::kText:
                append_json_string(out, value);
                return Status::ok();
        }
        return Status::ok();
    }

    Oid m_element;
    Resolved m_resolved;
    std::string_view m_text;
    char m_delimiter;
    std::size_t m_pos = 0;
};

}  // namespace

Result<std::string> array_text_to_json(Oid element_type, std::string_view text, const TypeResolver& resolver) {
    std::string out;
    out.reserve(text.size() + 2);
    ArrayParser parser(element_type, resolve(element_type, resolver), text);
    if (auto s = parser.parse(out); !s.is_ok()) {
        return s;
    }
    return out;
}

Result<Value> decode_text_value(Oid type, std::string_view text, const TypeResolver& resolver) {
    const auto resolved = resolve(type, resolver);
    switch (resolved.category) {
        case Category::kInteger:
            if (auto v = parse_integer(text)) {
                return Value::from_integer(*v);
            }
            return bad_value(type, text, "not a 64-bit integer");
        case Category::kReal:
            if (auto v = parse_real(text)) {
                return Value::from_real(*v);
            }
            return bad_value(type, text, "not a floating-point number");
        case Category::kBool:
            if (text == "t" || text == "f") {
                return Value::from_integer(text == "t" ? 1 : 0);
            }
            return bad_value(type, text, "not 't' or 'f'");
        case Category::kBytea:
            if (auto v = parse_bytea_hex(text)) {
                return Value::from_blob(std::move(*v));
            }
            return bad_value(type, text, "not bytea hex format ('\\x...'); set bytea_output = hex");
        case Category::kArray: {
            auto json = array_text_to_json(resolved.type, text, resolver);
            if (!json.is_ok()) {
                return json.status();
            }
            return Value::from_text(std::move(json).value());
        }
        case Category::kNumeric:
        case Category::kJson:
        case Category::kText:
            return Value::from_text(std::string(text));
    }
    return Value::from_text(std::string(text));
}

Result<Value> decode_datum(Oid type, const Datum& datum, const TypeResolver& resolver) {
    switch (datum.kind) {
        case DatumKind::kNull:
            return Value::null();
        case DatumKind::kText:
            return decode_text_value(type, datum.data, resolver);
        case DatumKind::kUnchangedToast:
            return Status(ErrorCode::kPgoutputValueMalformed,
                          "an unchanged TOAST value has no content: take it from the stored row");
        case DatumKind::kBinary:
            return Status(ErrorCode::kPgoutputValueMalformed, "binary-format values are not decoded: stream with "
                                                              "binary 'false'");
    }
    return Value::null();
}

}  // namespace sluice::protocol::pgoutput
