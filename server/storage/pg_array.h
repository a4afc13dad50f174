// Postgres array literals ({"a","b"}) for passing lists as one query parameter: the storage layer
// sends whole batches as arrays and expands them with unnest().
#pragma once

#include <string>
#include <vector>

namespace sluice::storage {

[[nodiscard]] std::string to_pg_array(const std::vector<std::string>& items);

}  // namespace sluice::storage
