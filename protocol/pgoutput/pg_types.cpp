// Built-in array types and their element types (pg_type.typarray for the types in pg_types.h).
#include "protocol/pgoutput/pg_types.h"

#include <array>
#include <utility>

namespace sluice::protocol::pgoutput::oid {

std::optional<Oid> builtin_array_element(Oid array_oid) {
    static constexpr std::array<std::pair<Oid, Oid>, 24> kArrays{{
        {1000, kBool},        {1001, kBytea},     {1002, kChar},        {1003, kName},     {1016, kInt8},
        {1005, kInt2},        {1007, kInt4},      {1009, kText},        {1028, kOid},      {199, kJson},
        {1020, kBox},         {1021, kFloat4},    {1022, kFloat8},      {1014, kBpchar},   {1015, kVarchar},
        {1182, kDate},        {1183, kTime},      {1115, kTimestamp},   {1185, kTimestamptz}, {1187, kInterval},
        {1270, kTimetz},      {1231, kNumeric},   {2951, kUuid},        {3807, kJsonb},
    }};
    for (const auto& [array, element] : kArrays) {
        if (array == array_oid) {
            return element;
        }
    }
    return std::nullopt;
}

}  // namespace sluice::protocol::pgoutput::oid
