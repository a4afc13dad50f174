// A compact, escape-free encoding of a list of strings as one text value: each string written as
// "<decimal byte length>:<bytes>". Used for the placements, lookups and column values kept in
// sluice.current_rows (router and storage); simpler and faster than JSON for data only Sluice reads.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::core {

void append_field(std::string& out, std::string_view field);
// nullopt when the text is not a valid encoding (a corrupted row).
[[nodiscard]] std::optional<std::vector<std::string>> decode_fields(std::string_view text);

}  // namespace sluice::core
