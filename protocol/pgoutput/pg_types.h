// Built-in Postgres type OIDs that Sluice decodes (stable since Postgres 8.x, see pg_type.dat), and
// the resolver through which callers describe the other types: domains, enums, their arrays.
#pragma once

#include <functional>
#include <optional>

#include "protocol/pgoutput/messages.h"

namespace sluice::protocol::pgoutput::oid {

inline constexpr Oid kBool = 16;
inline constexpr Oid kBytea = 17;
inline constexpr Oid kChar = 18;
inline constexpr Oid kName = 19;
inline constexpr Oid kInt8 = 20;
inline constexpr Oid kInt2 = 21;
inline constexpr Oid kInt4 = 23;
inline constexpr Oid kText = 25;
inline constexpr Oid kOid = 26;
inline constexpr Oid kJson = 114;
inline constexpr Oid kBox = 603;
inline constexpr Oid kFloat4 = 700;
inline constexpr Oid kFloat8 = 701;
inline constexpr Oid kBpchar = 1042;
inline constexpr Oid kVarchar = 1043;
inline constexpr Oid kDate = 1082;
inline constexpr Oid kTime = 1083;
inline constexpr Oid kTimestamp = 1114;
inline constexpr Oid kTimestamptz = 1184;
inline constexpr Oid kInterval = 1186;
inline constexpr Oid kTimetz = 1266;
inline constexpr Oid kNumeric = 1700;
inline constexpr Oid kUuid = 2950;
inline constexpr Oid kJsonb = 3802;

// The element type of a built-in array type; nullopt when `array_oid` is not one.
[[nodiscard]] std::optional<Oid> builtin_array_element(Oid array_oid);

}  // namespace sluice::protocol::pgoutput::oid

namespace sluice::protocol::pgoutput {

// What the caller knows about a type that is not built in (from pg_type: typtype, typbasetype,
// typelem).
struct TypeDescription {
    enum class Kind {
        kDomain,  // decode as `base`
        kEnum,    // text
        kArray,   // an array whose elements have type `base`
        kOther,   // composite, range, ...: passed on as text
    };
    Kind kind = Kind::kOther;
    Oid base = 0;
};

// Describes a non-built-in type; nullopt when unknown (the value is then passed on as text).
using TypeResolver = std::function<std::optional<TypeDescription>(Oid)>;

}  // namespace sluice::protocol::pgoutput
