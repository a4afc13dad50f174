// Values: number formatting as JavaScript prints it, JSON output, SQLite comparison and conversions.
#include "config/rules/value.h"

#include "protocol/wire/json_write.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "config/rules/detail/json_writer.h"

namespace sluice::config::rules {

std::string_view Value::type_name() const {
    switch (m_type) {
        case ValueType::kNull: return "null";
        case ValueType::kInteger: return "integer";
        case ValueType::kReal: return "real";
        case ValueType::kText: return "text";
        case ValueType::kBlob: return "blob";
    }
    return "null";
}

std::optional<std::string> Value::to_text() const {
    switch (m_type) {
        case ValueType::kNull: return std::nullopt;
        case ValueType::kInteger: return std::to_string(m_int);
        case ValueType::kReal: return format_real(m_real);
        case ValueType::kText:
        case ValueType::kBlob: return m_bytes;
    }
    return std::nullopt;
}

bool operator==(const Value& a, const Value& b) {
    if (a.m_type != b.m_type) {
        return false;
    }
    switch (a.m_type) {
        case ValueType::kNull: return true;
        case ValueType::kInteger: return a.m_int == b.m_int;
        case ValueType::kReal: return a.m_real == b.m_real || (std::isnan(a.m_real) && std::isnan(b.m_real));
        default: return a.m_bytes == b.m_bytes;
    }
}

void Row::set(std::string name, Value value) {
    for (auto& [n, v] : m_columns) {
        if (n == name) {
            v = std::move(value);
            return;
        }
    }
    m_columns.emplace_back(std::move(name), std::move(value));
}

void append_real(std::string& out, double v) { protocol::wire::append_js_number_text(out, v); }

std::string format_real(double v) {
    std::string out;
    append_real(out, v);
    return out;
}

namespace {

bool needs_escape(unsigned char c) { return c < 0x20 || c == '"' || c == '\\'; }

}  // namespace

void append_json_string(std::string& out, std::string_view text) {
    if (detail::json_clean(text)) {  // the common case: one copy
        out.reserve(out.size() + text.size() + 2);
        out += '"';
        out.append(text);
        out += '"';
        return;
    }
    static constexpr char kHex[] = "0123456789abcdef";
    out.reserve(out.size() + text.size() + 2);
    out += '"';
    std::size_t start = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (!needs_escape(c)) {
            continue;
        }
        out.append(text.data() + start, i - start);
        start = i + 1;
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            default:
                out += "\\u00";
                out += kHex[c >> 4];
                out += kHex[c & 15];
        }
    }
    out.append(text.data() + start, text.size() - start);
    out += '"';
}

void append_json(std::string& out, const Value& v) {
    switch (v.type()) {
        case ValueType::kNull:
        case ValueType::kBlob: out += "null"; break;
        case ValueType::kInteger: {
            char buf[24];
            auto res = std::to_chars(buf, buf + sizeof buf, v.as_integer());
            out.append(buf, res.ptr);
            break;
        }
        case ValueType::kReal:
            if (std::isfinite(v.as_real())) {
                append_real(out, v.as_real());
            } else {
                out += "null";
            }
            break;
        case ValueType::kText: append_json_string(out, v.bytes()); break;
    }
}

namespace {

int type_rank(ValueType t) {
    switch (t) {
        case ValueType::kNull: return 0;
        case ValueType::kInteger:
        case ValueType::kReal: return 1;
        case ValueType::kText: return 2;
        case ValueType::kBlob: return 3;
    }
    return 0;
}

int compare_numbers(const Value& a, const Value& b) {
    if (a.type() == ValueType::kInteger && b.type() == ValueType::kInteger) {
        return a.as_integer() < b.as_integer() ? -1 : a.as_integer() > b.as_integer() ? 1 : 0;
    }
    // long double holds every int64 exactly on x86-64, so mixed comparisons are exact there.
    const long double x = a.type() == ValueType::kInteger ? static_cast<long double>(a.as_integer()) : a.as_real();
    const long double y = b.type() == ValueType::kInteger ? static_cast<long double>(b.as_integer()) : b.as_real();
    if (std::isnan(x) || std::isnan(y)) {
        return std::isnan(x) ? (std::isnan(y) ? 0 : -1) : 1;
    }
    return x < y ? -1 : x > y ? 1 : 0;
}

}  // namespace

int compare(const Value& a, const Value& b) {
    const int ra = type_rank(a.type());
    const int rb = type_rank(b.type());
    if (ra != rb) {
        return ra < rb ? -1 : 1;
    }
    if (ra == 1) {
        return compare_numbers(a, b);
    }
    const int c = a.bytes().compare(b.bytes());
    return c < 0 ? -1 : c > 0 ? 1 : 0;
}

bool sql_equal(const Value& a, const Value& b) {
    if (a.is_null() || b.is_null()) {
        return false;
    }
    if (type_rank(a.type()) != type_rank(b.type())) {
        return false;
    }
    return compare(a, b) == 0;
}

Value to_numeric(const Value& v) {
    if (v.type() != ValueType::kText && v.type() != ValueType::kBlob) {
        return v;
    }
    const std::string& s = v.bytes();
    std::size_t i = 0;
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) {
        ++i;
    }
    const std::size_t start = i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
        ++i;
    }
    const std::size_t digits_start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
        ++i;
    }
    bool is_real = false;
    std::size_t mantissa_digits = i - digits_start;
    if (i < s.size() && s[i] == '.') {
        std::size_t j = i + 1;
        while (j < s.size() && s[j] >= '0' && s[j] <= '9') {
            ++j;
        }
        mantissa_digits += j - i - 1;
        if (mantissa_digits > 0) {
            is_real = true;
            i = j;
        }
    }
    if (mantissa_digits == 0) {
        return Value::integer(0);
    }
    if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
        std::size_t j = i + 1;
        if (j < s.size() && (s[j] == '+' || s[j] == '-')) {
            ++j;
        }
        if (j < s.size() && s[j] >= '0' && s[j] <= '9') {
            while (j < s.size() && s[j] >= '0' && s[j] <= '9') {
                ++j;
            }
            is_real = true;
            i = j;
        }
    }
    const std::string number = s.substr(start, i - start);
    if (!is_real) {
        std::int64_t out = 0;
        const char* first = number.data() + (number[0] == '+' ? 1 : 0);
        auto res = std::from_chars(first, number.data() + number.size(), out);
        if (res.ec == std::errc()) {
            return Value::integer(out);
        }
    }
    return Value::real(std::strtod(number.c_str(), nullptr));
}

std::optional<bool> truthy(const Value& v) {
    switch (v.type()) {
        case ValueType::kNull: return std::nullopt;
        case ValueType::kInteger: return v.as_integer() != 0;
        case ValueType::kReal: return v.as_real() != 0.0;
        default: {
            const Value n = to_numeric(v);
            return n.type() == ValueType::kInteger ? n.as_integer() != 0 : n.as_real() != 0.0;
        }
    }
}

}  // namespace sluice::config::rules
