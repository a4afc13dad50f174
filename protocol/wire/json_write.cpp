// JSON text output matching JSON.stringify (see json_write.h).
#include "protocol/wire/json_write.h"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <system_error>

namespace sluice::protocol::wire {
namespace {

// For each byte: 0 = copy as is, otherwise the character after the backslash ('u' = \u00xx).
constexpr std::array<char, 256> make_escape_table() {
    std::array<char, 256> table{};
    for (int c = 0; c < 0x20; ++c) {
        table[static_cast<std::size_t>(c)] = 'u';
    }
    table['\b'] = 'b';
    table['\f'] = 'f';
    table['\n'] = 'n';
    table['\r'] = 'r';
    table['\t'] = 't';
    table['"'] = '"';
    table['\\'] = '\\';
    return table;
}

constexpr std::array<char, 256> kEscape = make_escape_table();

}  // namespace

void append_json_string(std::string& out, std::string_view text) {
    out.reserve(out.size() + text.size() + 2);
    out.push_back('"');
    const char* run = text.data();
    const char* const end = text.data() + text.size();
    for (const char* p = run; p != end; ++p) {
        const char escape = kEscape[static_cast<unsigned char>(*p)];
        if (escape == 0) {
            continue;
        }
        out.append(run, p);
        out.push_back('\\');
        out.push_back(escape);
        if (escape == 'u') {
            constexpr std::string_view kHex = "0123456789abcdef";
            const auto c = static_cast<unsigned char>(*p);
            out.append("00");
            out.push_back(kHex[c >> 4U]);
            out.push_back(kHex[c & 0xFU]);
        }
        run = p + 1;
    }
    out.append(run, end);
    out.push_back('"');
}

void append_u64(std::string& out, std::uint64_t value) {
    char buf[24];
    const auto res = std::to_chars(buf, buf + sizeof buf, value);
    out.append(buf, res.ptr);
}

void append_i64(std::string& out, std::int64_t value) {
    char buf[24];
    const auto res = std::to_chars(buf, buf + sizeof buf, value);
    out.append(buf, res.ptr);
}

void append_quoted_u64(std::string& out, std::uint64_t value) {
    char buf[26];
    buf[0] = '"';
    auto res = std::to_chars(buf + 1, buf + sizeof buf - 1, value);
    *res.ptr++ = '"';
    out.append(buf, res.ptr);
}

void append_js_number_text(std::string& out, double value) {
    if (std::isnan(value)) {
        out.append("NaN");
    } else if (std::isinf(value)) {
        out.append(value < 0 ? "-Infinity" : "Infinity");
    } else {
        append_js_number(out, value);
    }
}

void append_js_number(std::string& out, double value) {
    if (!std::isfinite(value)) {
        out.append("null");
        return;
    }
    if (value == 0) {
        out.push_back('0');  // also -0, as JS prints it
        return;
    }
    // Shortest round-trip digits in scientific form: "-d.ddde+XX".
    char sci[40];
    const auto res = std::to_chars(sci, sci + sizeof sci, value, std::chars_format::scientific);
    std::string_view s(sci, static_cast<std::size_t>(res.ptr - sci));
    if (s.front() == '-') {
        out.push_back('-');
        s.remove_prefix(1);
    }
    const auto e_pos = s.find('e');
    std::string digits;
    digits.reserve(20);
    for (char c : s.substr(0, e_pos)) {
        if (c != '.') {
            digits.push_back(c);
        }
    }
    const int exp10 = std::atoi(std::string(s.substr(e_pos + 1)).c_str());
    // ECMAScript Number::toString: value = 0.digits * 10^n with k digits.
    const int k = static_cast<int>(digits.size());
    const int n = exp10 + 1;
    if (k <= n && n <= 21) {
        out.append(digits);
        out.append(static_cast<std::size_t>(n - k), '0');
    } else if (0 < n && n <= 21) {
        out.append(digits, 0, static_cast<std::size_t>(n));
        out.push_back('.');
        out.append(digits, static_cast<std::size_t>(n));
    } else if (-6 < n && n <= 0) {
        out.append("0.");
        out.append(static_cast<std::size_t>(-n), '0');
        out.append(digits);
    } else {
        out.push_back(digits[0]);
        if (k > 1) {
            out.push_back('.');
            out.append(digits, 1);
        }
        out.push_back('e');
        out.push_back(n - 1 >= 0 ? '+' : '-');
        append_i64(out, std::abs(n - 1));
    }
}

}  // namespace sluice::protocol::wire
