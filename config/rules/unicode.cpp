// UTF-8 decoding and encoding, UTF-16 counting and the case tables used by upper() and lower().
#include "config/rules/unicode.h"

#include <vector>

namespace sluice::config::rules {
namespace {

constexpr char32_t kReplacement = 0xFFFD;

// Decodes one code point at s[i], advancing i; invalid sequences yield U+FFFD for one byte.
char32_t decode(std::string_view s, std::size_t& i) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x80) {
        ++i;
        return b0;
    }
    int extra = 0;
    char32_t cp = 0;
    if ((b0 & 0xE0) == 0xC0) {
        extra = 1;
        cp = b0 & 0x1F;
    } else if ((b0 & 0xF0) == 0xE0) {
        extra = 2;
        cp = b0 & 0x0F;
    } else if ((b0 & 0xF8) == 0xF0) {
        extra = 3;
        cp = b0 & 0x07;
    } else {
        ++i;
        return kReplacement;
    }
    if (i + static_cast<std::size_t>(extra) >= s.size()) {
        ++i;
        return kReplacement;
    }
    for (int k = 1; k <= extra; ++k) {
        const auto b = static_cast<unsigned char>(s[i + static_cast<std::size_t>(k)]);
        if ((b & 0xC0) != 0x80) {
            ++i;
            return kReplacement;
        }
        cp = (cp << 6) | (b & 0x3F);
    }
    i += static_cast<std::size_t>(extra) + 1;
    return cp;
}

void encode(std::string& out, char32_t cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) {
        cp = kReplacement;
    }
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

// Lower -> upper for one code point; 0 when it has no single-code-point upper case.
char32_t upper_of(char32_t c) {
    if (c >= 'a' && c <= 'z') return c - 32;
    if (c < 0x80) return c;
    if ((c >= 0xE0 && c <= 0xFE && c != 0xF7)) return c - 32;
    if (c == 0xFF) return 0x178;
    if (c == 0xB5) return 0x39C;
    if (c >= 0x100 && c <= 0x17F) {
        if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return (c % 2 == 0) ? c - 1 : c;
        if (c == 0x131) return 'I';
        if (c == 0x17F) return 'S';
        if (c == 0x138 || c == 0x149 || c == 0x130) return c;
        return (c % 2 == 1) ? c - 1 : c;
    }
    if (c >= 0x3B1 && c <= 0x3C9 && c != 0x3C2) return c - 32;
    if (c == 0x3C2) return 0x3A3;
    if (c == 0x3AC) return 0x386;
    if (c >= 0x3AD && c <= 0x3AF) return c - 37;
    if (c == 0x3CC) return 0x38C;
    if (c == 0x3CD || c == 0x3CE) return c - 63;
    if (c == 0x3CA || c == 0x3CB) return c - 32;
    if (c >= 0x430 && c <= 0x44F) return c - 32;
    if (c >= 0x450 && c <= 0x45F) return c - 80;
    if ((c >= 0x460 && c <= 0x481) || (c >= 0x48A && c <= 0x4BF) || (c >= 0x4D0 && c <= 0x52F)) {
        return (c % 2 == 1) ? c - 1 : c;
    }
    if (c >= 0x4C1 && c <= 0x4CE) return (c % 2 == 0) ? c - 1 : c;
    if (c == 0x4CF) return 0x4C0;
    if (c >= 0x561 && c <= 0x586) return c - 48;
    if (c >= 0x1E00 && c <= 0x1EFF && !(c >= 0x1E96 && c <= 0x1E9F)) return (c % 2 == 1) ? c - 1 : c;
    if (c >= 0xFF41 && c <= 0xFF5A) return c - 32;
    return c;
}

char32_t lower_of(char32_t c) {
    if (c >= 'A' && c <= 'Z') return c + 32;
    if (c < 0x80) return c;
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;
    if (c == 0x178) return 0xFF;
    if (c >= 0x100 && c <= 0x17F) {
        if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return (c % 2 == 1) ? c + 1 : c;
        if (c == 0x130) return 'i';
        if (c == 0x131 || c == 0x138 || c == 0x149 || c == 0x17F) return c;
        return (c % 2 == 0) ? c + 1 : c;
    }
    if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 32;
    if (c == 0x386) return 0x3AC;
    if (c >= 0x388 && c <= 0x38A) return c + 37;
    if (c == 0x38C) return 0x3CC;
    if (c == 0x38E || c == 0x38F) return c + 63;
    if (c == 0x3AA || c == 0x3AB) return c + 32;
    if (c >= 0x410 && c <= 0x42F) return c + 32;
    if (c >= 0x400 && c <= 0x40F) return c + 80;
    if ((c >= 0x460 && c <= 0x481) || (c >= 0x48A && c <= 0x4BF) || (c >= 0x4D0 && c <= 0x52F)) {
        return (c % 2 == 0) ? c + 1 : c;
    }
    if (c >= 0x4C1 && c <= 0x4CE) return (c % 2 == 1) ? c + 1 : c;
    if (c == 0x4C0) return 0x4CF;
    if (c >= 0x531 && c <= 0x556) return c + 48;
    if (c >= 0x1E00 && c <= 0x1EFF && !(c >= 0x1E96 && c <= 0x1E9F)) return (c % 2 == 0) ? c + 1 : c;
    if (c >= 0xFF21 && c <= 0xFF3A) return c + 32;
    return c;
}

bool is_letter(char32_t c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= 0x80 && (upper_of(c) != c || lower_of(c) != c));
}

// Whether the last code point already written to out (valid UTF-8) is a letter.
bool previous_is_letter(const std::string& out) {
    std::size_t start = out.size() - 1;
    while (start > 0 && (static_cast<unsigned char>(out[start]) & 0xC0) == 0x80) {
        --start;
    }
    std::size_t k = start;
    return is_letter(decode(out, k));
}

}  // namespace

std::size_t utf16_length(std::string_view utf8) {
    std::size_t units = 0;
    std::size_t i = 0;
    while (i < utf8.size()) {
        const auto b = static_cast<unsigned char>(utf8[i]);
        if (b < 0x80) {
            ++units;
            ++i;
            continue;
        }
        units += decode(utf8, i) >= 0x10000 ? 2 : 1;
    }
    return units;
}

void substring_range(std::int64_t len, std::int64_t start, std::int64_t length, bool has_length, std::int64_t& first,
                     std::int64_t& count) {
    std::int64_t p1 = start;
    std::int64_t p2 = has_length ? length : (std::int64_t{1} << 40);
    bool neg_p2 = false;
    if (p2 < 0) {
        p2 = p2 < -(std::int64_t{1} << 40) ? (std::int64_t{1} << 40) : -p2;
        neg_p2 = true;
    }
    if (p1 < -(std::int64_t{1} << 40)) {
        p1 = -(std::int64_t{1} << 40);
    } else if (p1 > (std::int64_t{1} << 40)) {
        p1 = std::int64_t{1} << 40;
    }
    if (p2 > (std::int64_t{1} << 40)) {
        p2 = std::int64_t{1} << 40;
    }
    if (p1 < 0) {
        p1 += len;
        if (p1 < 0) {
            p2 += p1;
            if (p2 < 0) {
                p2 = 0;
            }
            p1 = 0;
        }
    } else if (p1 > 0) {
        --p1;
    } else if (p2 > 0) {
        --p2;
    }
    if (neg_p2) {
        p1 -= p2;
        if (p1 < 0) {
            p2 += p1;
            p1 = 0;
        }
    }
    if (p1 > len) {
        p1 = len;
    }
    if (p1 + p2 > len) {
        p2 = len - p1;
        if (p2 < 0) {
            p2 = 0;
        }
    }
    first = p1;
    count = p2;
}

std::string utf16_substring(std::string_view utf8, std::int64_t start, std::int64_t length, bool has_length) {
    std::vector<char16_t> units;
    units.reserve(utf8.size());
    for (std::size_t i = 0; i < utf8.size();) {
        const char32_t cp = decode(utf8, i);
        if (cp >= 0x10000) {
            units.push_back(static_cast<char16_t>(0xD800 + ((cp - 0x10000) >> 10)));
            units.push_back(static_cast<char16_t>(0xDC00 + ((cp - 0x10000) & 0x3FF)));
        } else {
            units.push_back(static_cast<char16_t>(cp));
        }
    }
    const auto len = static_cast<std::int64_t>(units.size());
    std::int64_t p1 = 0;
    std::int64_t p2 = 0;
    substring_range(len, start, length, has_length, p1, p2);
    std::string out;
    for (std::int64_t k = p1; k < p1 + p2; ++k) {
        const char16_t u = units[static_cast<std::size_t>(k)];
        if (u >= 0xD800 && u <= 0xDBFF && k + 1 < p1 + p2) {
            const char16_t lo = units[static_cast<std::size_t>(k + 1)];
            if (lo >= 0xDC00 && lo <= 0xDFFF) {
                encode(out, 0x10000 + ((static_cast<char32_t>(u) - 0xD800) << 10) + (lo - 0xDC00));
                ++k;
                continue;
            }
        }
        encode(out, u);
    }
    return out;
}

std::string to_upper(std::string_view utf8) {
    std::string out;
    out.reserve(utf8.size());
    for (std::size_t i = 0; i < utf8.size();) {
        const auto b = static_cast<unsigned char>(utf8[i]);
        if (b < 0x80) {
            out += static_cast<char>(b >= 'a' && b <= 'z' ? b - 32 : b);
            ++i;
            continue;
        }
        const char32_t cp = decode(utf8, i);
        if (cp == 0xDF) {
            out += "SS";  // as JavaScript's toUpperCase
        } else {
            encode(out, upper_of(cp));
        }
    }
    return out;
}

std::string to_lower(std::string_view utf8) {
    std::string out;
    out.reserve(utf8.size());
    for (std::size_t i = 0; i < utf8.size();) {
        const auto b = static_cast<unsigned char>(utf8[i]);
        if (b < 0x80) {
            out += static_cast<char>(b >= 'A' && b <= 'Z' ? b + 32 : b);
            ++i;
            continue;
        }
        const char32_t cp = decode(utf8, i);
        if (cp == 0x3A3) {
            // Final sigma, as JavaScript's toLowerCase: after a letter and not before one.
            const bool after_letter = !out.empty() && previous_is_letter(out);
            std::size_t j = i;
            const bool before_letter = j < utf8.size() && is_letter(decode(utf8, j));
            encode(out, after_letter && !before_letter ? 0x3C2 : 0x3C3);
            continue;
        }
        encode(out, lower_of(cp));
    }
    return out;
}

}  // namespace sluice::config::rules
