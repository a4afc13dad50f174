// Decodes a column's Postgres text output form into a client Value, by type (powersync-compat.md's
// mapping): int2/4/8 -> integer (exact), float4/8 -> real, numeric -> text, bool -> 1/0, bytea (hex
// form) -> blob, json/jsonb -> JSON text, arrays -> JSON array text, text-like types, uuid, enums,
// date/time types -> their text. Domains decode as their base type. Expects DateStyle ISO and
// bytea_output hex on the source session.
#pragma once

#include <string_view>

#include "protocol/pgoutput/messages.h"
#include "protocol/pgoutput/pg_types.h"
#include "protocol/pgoutput/value.h"
#include "protocol/status.h"

namespace sluice::protocol::pgoutput {

// kPgoutputValueMalformed when `text` is not a valid text form of the type. `resolver` may be empty.
[[nodiscard]] Result<Value> decode_text_value(Oid type, std::string_view text, const TypeResolver& resolver = {});

// The value of one Datum: null for kNull, decode_text_value for kText. kUnchangedToast and kBinary
// are the caller's business (kPgoutputValueMalformed here).
[[nodiscard]] Result<Value> decode_datum(Oid type, const Datum& datum, const TypeResolver& resolver = {});

// An array's text form ("{1,2}", "{{\"a b\",NULL}}", "[0:1]={x,y}") as JSON array text, elements
// mapped by `element_type`: numbers as numbers, bool as true/false, json as embedded JSON, the rest
// (numeric NaN/Infinity included) as strings, NULL as null.
[[nodiscard]] Result<std::string> array_text_to_json(Oid element_type, std::string_view text,
                                                     const TypeResolver& resolver = {});

}  // namespace sluice::protocol::pgoutput
