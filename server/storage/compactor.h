// Compaction of the bucket op log, online and without changing any client's reduced state or any
// bucket checksum (powersync-compat.md, "Ops"):
//  1. an op superseded by a later op for the same row in the same bucket becomes a MOVE (same op_id
//     and checksum, no data), so storage sheds the old row copies;
//  2. then the bucket's removable prefix (every op before its first PUT: MOVEs, final REMOVEs, an
//     earlier CLEAR) is folded into one CLEAR op at the prefix's last op_id, whose checksum is the
//     sum of the ops it replaced. A client that held part of the prefix drops its rows of the bucket
//     at the CLEAR and gets every live row back from the PUTs after it; one that is past it never
//     sees it.
// Only ops at or before the bucket's rules version's latest checkpoint are touched (all of them are
// committed), one bucket per transaction, so readers and the writer carry on meanwhile.
#pragma once

#include <cstdint>

#include <pqxx/connection>

#include "protocol/status.h"

namespace sluice::storage {

struct CompactionReport {
    std::int64_t buckets = 0;  // buckets examined
    std::int64_t moved = 0;    // ops turned into MOVE
    std::int64_t cleared = 0;  // ops folded away into CLEAR ops
};

[[nodiscard]] protocol::Result<CompactionReport> compact(pqxx::connection& connection);

}  // namespace sluice::storage
