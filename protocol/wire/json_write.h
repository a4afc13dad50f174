// Appending JSON text to a std::string the way a JavaScript peer writes it (JSON.stringify): string
// escaping, 64-bit integers, and JS number formatting. Used by every encoder of the wire protocol.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace sluice::protocol::wire {

// Appends `text` as a quoted JSON string, escaped exactly as JSON.stringify does for UTF-8 input:
// \" \\ \b \f \n \r \t, other control characters as \u00xx (lower-case hex), everything else as is.
void append_json_string(std::string& out, std::string_view text);

// Appends a decimal integer (no quotes).
void append_u64(std::string& out, std::uint64_t value);
void append_i64(std::string& out, std::int64_t value);

// Appends a decimal integer in quotes: the form of op_ids ("1234"). Never goes through a double.
void append_quoted_u64(std::string& out, std::uint64_t value);

// Appends a double as JavaScript's Number#toString writes it (2.0 -> "2", 1e21 -> "1e+21",
// 1e-7 -> "1e-7", -0 -> "0"); NaN and infinities as null, like JSON.stringify.
void append_js_number(std::string& out, double value);

// Appends a double as JavaScript's String(value) writes it: as append_js_number for finite values,
// "NaN", "Infinity" and "-Infinity" otherwise (the text form of a real, e.g. CAST(x AS TEXT)).
void append_js_number_text(std::string& out, double value);

}  // namespace sluice::protocol::wire
