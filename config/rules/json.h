// JSON helpers for the rules functions and request values (simdjson underneath): path extraction
// as SQLite's json_extract / -> / ->> do it, array elements for IN and json_each, and conversion of
// JSON values to SQL values (true/false -> 1/0, objects and arrays -> JSON text).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/rules/value.h"

namespace sluice::config::rules {

enum class JsonMode {
    kSqlValue,  // json_extract and ->>: strings unquoted, numbers, objects/arrays as JSON text
    kJsonText,  // ->: the JSON text of the element ("abc" keeps its quotes)
};

// Result of a JSON operation: a value, or an error message for the row ("malformed JSON", "bad path").
struct JsonResult {
    Value value;
    std::string error;  // empty on success
};

[[nodiscard]] bool json_valid(std::string_view text);
// Extracts the element at a SQLite JSON path ("$", "$.a.b", "$[0]", "$.a[#-1]", "$.\"k\""); a missing
// element gives NULL.
[[nodiscard]] JsonResult json_extract(std::string_view json, std::string_view path, JsonMode mode);
// The right side of -> / ->>: an integer is an array index, text starting with '$' a path, other
// text an object key.
[[nodiscard]] JsonResult json_arrow(std::string_view json, const Value& selector, JsonMode mode);
[[nodiscard]] JsonResult json_array_length(std::string_view json, std::string_view path);
[[nodiscard]] JsonResult json_keys(std::string_view json, std::string_view path);

// Elements of a JSON array as SQL values; nullopt (with *error set) when the text is not a JSON array.
[[nodiscard]] std::optional<std::vector<Value>> json_array_values(std::string_view json, std::string* error);
// json_each(): (key, value) pairs of an array (keys 0, 1, ...) or an object (keys as text).
[[nodiscard]] std::optional<std::vector<std::pair<Value, Value>>> json_each_entries(std::string_view json,
                                                                                    std::string* error);
// A JSON object as a Row (for tools and tests): strings -> text, integers -> integer, other numbers
// -> real, true/false -> 1/0, objects/arrays -> JSON text, {"$blob":"<hex>"} -> blob.
[[nodiscard]] std::optional<Row> json_object_to_row(std::string_view json, std::string* error);
// The members of a JSON object as (name, SQL value) pairs; nullopt when not an object.
[[nodiscard]] std::optional<std::vector<std::pair<std::string, Value>>> json_object_members(std::string_view json,
                                                                                          std::string* error);

}  // namespace sluice::config::rules
