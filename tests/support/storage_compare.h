// Compares what two bucket storages hold for one rules version each, modulo history: per bucket the
// reduced rows (the last op of each row decides; a CLEAR drops what came before), the current row
// copies with their placements, and the parameter lookup index. Bucket ids are compared without
// their version prefix, so a version built by a switch can be compared with a fresh build.
#pragma once

#include <cstdint>
#include <string>

namespace sluice::test {

// "" when equal; otherwise the first differences found, one per line.
[[nodiscard]] std::string compare_storage(const std::string& storage_a, std::int64_t version_a,
                                          const std::string& storage_b, std::int64_t version_b);

}  // namespace sluice::test
