// Bucket ids of the PowerSync sync protocol: `[<version>#]<definition name><JSON array of the
// parameter values>`, e.g. `global[]`, `2#by_user["u1"]`, `list_todos["l1",3]` (protocol/README.md).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "protocol/status.h"

namespace sluice::protocol::wire {

// One parameter value: null, an exact integer, a real, or text. A real with an integral value is
// written like the integer (2.0 -> 2), as a JavaScript client writes it, so both give one bucket.
using BucketParameter = std::variant<std::monostate, std::int64_t, double, std::string>;

struct BucketId {
    std::optional<std::uint32_t> version;  // the rules version prefix `N#`, if any
    std::string name;                      // the bucket definition (or stream) name
    std::vector<BucketParameter> parameters;

    bool operator==(const BucketId&) const = default;
};

// Appends the bucket id; parameter text is escaped as JSON.stringify does.
void append_bucket_id(std::string& out, std::string_view name, std::span<const BucketParameter> parameters,
                      std::optional<std::uint32_t> version = std::nullopt);
[[nodiscard]] std::string format_bucket_id(const BucketId& id);

// Parses a bucket id back; kBucketIdMalformed when the text is not `[N#]name[...]` with a JSON
// array of strings, numbers and nulls. Accepts any JSON spacing; format_bucket_id gives the
// canonical form back.
[[nodiscard]] Result<BucketId> parse_bucket_id(std::string_view text);

}  // namespace sluice::protocol::wire
