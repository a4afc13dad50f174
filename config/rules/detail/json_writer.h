// JsonWriter: appends JSON text to a reused std::string through a raw cursor, one capacity check per
// item rather than per character; the hot path of row evaluation (SELECT * output rows). Internal.
#pragma once

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "config/rules/value.h"

namespace sluice::config::rules::detail {

// True when no byte of text needs escaping in a JSON string (control, '"' or '\'). Checks eight bytes
// at a time (the last word overlapping), or four: (x - 0x20) borrows below 0x20 and (x ^ c) - 1 at c;
// a borrow may flag a later clean byte too, which only sends the text to the careful path.
[[nodiscard]] inline bool json_clean(std::string_view text) {
    constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
    constexpr std::uint64_t kHighs = 0x8080808080808080ULL;
    auto marks = [](std::uint64_t x) {
        const std::uint64_t q = x ^ (kOnes * '"');
        const std::uint64_t b = x ^ (kOnes * '\\');
        return (((x - kOnes * 0x20) & ~x) | ((q - kOnes) & ~q) | ((b - kOnes) & ~b)) & kHighs;
    };
    const char* p = text.data();
    const std::size_t n = text.size();
    if (n >= 8) {
        std::uint64_t x = 0;
        for (std::size_t i = 0; i + 8 < n; i += 8) {
            std::memcpy(&x, p + i, 8);
            if (marks(x) != 0) {
                return false;
            }
        }
        std::memcpy(&x, p + n - 8, 8);
        return marks(x) == 0;
    }
    if (n >= 4) {
        std::uint32_t a = 0;
        std::uint32_t b = 0;
        std::memcpy(&a, p, 4);
        std::memcpy(&b, p + n - 4, 4);
        return marks((std::uint64_t{a} << 32) | b) == 0;
    }
    for (std::size_t i = 0; i < n; ++i) {
        const auto c = static_cast<unsigned char>(p[i]);
        if (c < 0x20 || c == '"' || c == '\\') {
            return false;
        }
    }
    return true;
}

class JsonWriter {
public:
    // Appends after out's current content; call finish() before reading out again.
    explicit JsonWriter(std::string& out) : m_out(out), m_used(out.size()) { out.resize(out.capacity()); }
    JsonWriter(const JsonWriter&) = delete;
    JsonWriter& operator=(const JsonWriter&) = delete;

    void raw(char c) {
        need(1);
        m_out[m_used++] = c;
    }
    void raw(std::string_view s) {
        need(s.size());
        copy(m_out.data() + m_used, s);
        m_used += s.size();
    }
    // A JSON string, as append_json_string writes it.
    void string(std::string_view s) {
        if (!json_clean(s)) {
            slow([&](std::string& out) { append_json_string(out, s); });
            return;
        }
        need(s.size() + 2);
        char* d = m_out.data() + m_used;
        d[0] = '"';
        copy(d + 1, s);
        d[s.size() + 1] = '"';
        m_used += s.size() + 2;
    }
    // A value, as append_json writes it.
    void value(const Value& v) {
        switch (v.type()) {
            case ValueType::kText: string(v.bytes()); return;
            case ValueType::kInteger: {
                need(24);
                char* d = m_out.data() + m_used;
                m_used += static_cast<std::size_t>(std::to_chars(d, d + 24, v.as_integer()).ptr - d);
                return;
            }
            default: slow([&](std::string& out) { append_json(out, v); });
        }
    }
    // Shrinks the string to what was written.
    void finish() { m_out.resize(m_used); }

private:
    // memcpy, with short texts (names, ids) copied inline as two overlapping words.
    static void copy(char* d, std::string_view s) {
        const std::size_t n = s.size();
        if (n >= 8 && n <= 16) {
            std::uint64_t a = 0;
            std::uint64_t b = 0;
            std::memcpy(&a, s.data(), 8);
            std::memcpy(&b, s.data() + n - 8, 8);
            std::memcpy(d, &a, 8);
            std::memcpy(d + n - 8, &b, 8);
        } else if (n >= 4 && n < 8) {
            std::uint32_t a = 0;
            std::uint32_t b = 0;
            std::memcpy(&a, s.data(), 4);
            std::memcpy(&b, s.data() + n - 4, 4);
            std::memcpy(d, &a, 4);
            std::memcpy(d + n - 4, &b, 4);
        } else if (n < 4) {
            for (std::size_t i = 0; i < n; ++i) {
                d[i] = s[i];
            }
        } else {
            std::memcpy(d, s.data(), n);
        }
    }
    void need(std::size_t n) {
        if (m_out.size() - m_used < n) {
            m_out.resize(std::max(m_out.size() * 2, m_used + n + 64));
        }
    }
    template <typename Fn>
    void slow(Fn&& fn) {
        m_out.resize(m_used);
        fn(m_out);
        m_used = m_out.size();
        m_out.resize(m_out.capacity());
    }

    std::string& m_out;
    std::size_t m_used;  // bytes written; m_out.size() is the room
};

}  // namespace sluice::config::rules::detail
