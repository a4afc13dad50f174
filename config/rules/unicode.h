// UTF-8 text helpers for the rules functions: lengths and substrings in UTF-16 code units (as a
// JavaScript client counts them) and case mapping beyond ASCII (Latin, Greek, Cyrillic, Armenian).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace sluice::config::rules {

// Number of UTF-16 code units of a UTF-8 string (invalid bytes count as one unit each).
[[nodiscard]] std::size_t utf16_length(std::string_view utf8);
// SQLite substr(text, start[, length]) semantics over UTF-16 code units; a surrogate pair cut in two
// becomes U+FFFD, as encoding a lone surrogate does in JavaScript.
[[nodiscard]] std::string utf16_substring(std::string_view utf8, std::int64_t start, std::int64_t length,
                                          bool has_length);
// SQLite substr()'s arithmetic: the first unit (0-based) and the count to take from a string of len units.
void substring_range(std::int64_t len, std::int64_t start, std::int64_t length, bool has_length, std::int64_t& first,
                     std::int64_t& count);
[[nodiscard]] std::string to_upper(std::string_view utf8);
[[nodiscard]] std::string to_lower(std::string_view utf8);

}  // namespace sluice::config::rules
