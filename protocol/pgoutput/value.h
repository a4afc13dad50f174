// Value: a decoded column value in the client's (SQLite's) type system: null, 64-bit integer,
// real, text or blob. The mapping from Postgres types is in powersync-compat.md; the rules engine
// (config/rules/value.h) has the same five kinds and converts one to one.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/wire/json_write.h"

namespace sluice::protocol::pgoutput {

enum class ValueType : std::uint8_t { kNull, kInteger, kReal, kText, kBlob };

struct Value {
    ValueType type = ValueType::kNull;
    std::int64_t integer = 0;  // kInteger
    double real = 0.0;         // kReal
    std::string bytes;         // kText (UTF-8) and kBlob

    static Value null() { return {}; }
    static Value from_integer(std::int64_t v) { return {ValueType::kInteger, v, 0.0, {}}; }
    static Value from_real(double v) { return {ValueType::kReal, 0, v, {}}; }
    static Value from_text(std::string v) { return {ValueType::kText, 0, 0.0, std::move(v)}; }
    static Value from_blob(std::string v) { return {ValueType::kBlob, 0, 0.0, std::move(v)}; }

    bool operator==(const Value&) const = default;
};

// Appends the JSON a client receives for the value: integers exact, reals as JavaScript prints
// them (3.0 -> 3, 1e21 -> 1e+21; non-finite -> null), text as a string, null as null. Blobs have
// no JSON form (rules send them through base64() or hex()) and are written as null.
void append_json(std::string& out, const Value& value);
[[nodiscard]] std::string to_json(const Value& value);
// JSON strings and JavaScript number formatting: the wire protocol's, so every JSON Sluice writes agrees.
using wire::append_js_number;
using wire::append_json_string;

}  // namespace sluice::protocol::pgoutput
