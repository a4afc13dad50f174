// Compaction of the bucket op log: an op superseded by a later op for the same row in the same
// bucket becomes a MOVE (same op_id and checksum, no data), so bucket checksums and every client's
// reduced state stay the same while storage sheds the old row copies. Online: it touches only ops
// at or before the latest checkpoint, one bucket per transaction.
#pragma once

#include <cstdint>

#include <pqxx/connection>

#include "protocol/status.h"

namespace sluice::storage {

struct CompactionReport {
    std::int64_t buckets = 0;  // buckets examined
    std::int64_t moved = 0;    // ops turned into MOVE
};

[[nodiscard]] protocol::Result<CompactionReport> compact(pqxx::connection& connection);

}  // namespace sluice::storage
