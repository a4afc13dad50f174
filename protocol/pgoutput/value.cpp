// JSON forms of decoded values (see value.h).
#include "protocol/pgoutput/value.h"

#include <array>
#include <charconv>
#include <cmath>

namespace sluice::protocol::pgoutput {

void append_json_string(std::string& out, std::string_view text) {
    static constexpr char kHex[] = "0123456789abcdef";
    out.push_back('"');
    for (const char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            default:
                if (c < 0x20) {
                    out += "\\u00";
                    out.push_back(kHex[c >> 4U]);
                    out.push_back(kHex[c & 0xFU]);
                } else {
                    out.push_back(ch);
                }
        }
    }
    out.push_back('"');
}

void append_js_number(std::string& out, double v) {
    if (v == 0.0) {
        out.push_back('0');  // JavaScript prints -0 as "0" too
        return;
    }
    // Shortest round-trip digits in scientific form: "-d.ddde+XX".
    std::array<char, 64> buf{};
    const auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), v, std::chars_format::scientific);
    std::string_view sci(buf.data(), static_cast<std::size_t>(end - buf.data()));
    if (sci.front() == '-') {
        out.push_back('-');
        sci.remove_prefix(1);
    }
    const auto e_pos = sci.find('e');
    std::string digits;
    for (const char c : sci.substr(0, e_pos)) {
        if (c != '.') {
            digits.push_back(c);
        }
    }
    int exponent = 0;
    const auto exp_text = sci.substr(e_pos + 1);
    std::from_chars(exp_text.data() + (exp_text.front() == '+' ? 1 : 0), exp_text.data() + exp_text.size(), exponent);
    // ECMAScript Number::toString: k digits, decimal point after n digits.
    const int k = static_cast<int>(digits.size());
    const int n = exponent + 1;
    if (k <= n && n <= 21) {
        out += digits;
        out.append(static_cast<std::size_t>(n - k), '0');
    } else if (0 < n && n <= 21) {
        out.append(digits, 0, static_cast<std::size_t>(n));
        out.push_back('.');
        out.append(digits, static_cast<std::size_t>(n));
    } else if (-6 < n && n <= 0) {
        out += "0.";
        out.append(static_cast<std::size_t>(-n), '0');
        out += digits;
    } else {
        out.push_back(digits[0]);
        if (k > 1) {
            out.push_back('.');
            out.append(digits, 1);
        }
        out.push_back('e');
        out.push_back(n - 1 < 0 ? '-' : '+');
        out += std::to_string(std::abs(n - 1));
    }
}

void append_json(std::string& out, const Value& value) {
    switch (value.type) {
        case ValueType::kNull:
        case ValueType::kBlob:
            out += "null";
            break;
        case ValueType::kInteger:
            out += std::to_string(value.integer);
            break;
        case ValueType::kReal:
            if (std::isfinite(value.real)) {
                append_js_number(out, value.real);
            } else {
                out += "null";
            }
            break;
        case ValueType::kText:
            append_json_string(out, value.bytes);
            break;
    }
}

std::string to_json(const Value& value) {
    std::string out;
    append_json(out, value);
    return out;
}

}  // namespace sluice::protocol::pgoutput
