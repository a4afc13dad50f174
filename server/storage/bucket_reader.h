// BucketReader: what client sessions read from bucket storage: the latest checkpoint, bucket
// checksums at a checkpoint (from running totals, never a scan of the bucket), pages of ops, the
// parameter lookup index, and write checkpoints. One per serving thread; each call is one short
// read-only query (no BEGIN/COMMIT around it: a single statement reads one snapshot), except that a
// page of ops may take a few, one per group of op chunks (op_chunks.h).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "protocol/lsn.h"
#include "protocol/status.h"
#include "server/storage/op_chunks.h"

namespace sluice::storage {

struct Checkpoint {
    std::int64_t op_id = 0;
    protocol::Lsn lsn;
    std::int64_t rules_version = 1;  // whose buckets it covers
};

// Means "the active rules version" (sluice.rules_versions; version 1 when none is recorded).
inline constexpr std::int64_t kActiveRulesVersion = 0;

struct BucketChecksum {
    std::uint32_t checksum = 0;  // wrapping sum of the op checksums with op_id <= the checkpoint
    std::int64_t count = 0;      // number of those ops
};

class BucketReader {
public:
    [[nodiscard]] static protocol::Result<std::unique_ptr<BucketReader>> open(const std::string& conninfo);
    ~BucketReader();
    BucketReader(const BucketReader&) = delete;
    BucketReader& operator=(const BucketReader&) = delete;

    // The newest checkpoint of the active rules version (of any version when none is recorded);
    // nullopt before the first one (snapshot not done).
    [[nodiscard]] protocol::Result<std::optional<Checkpoint>> latest_checkpoint();
    // Checksums at `checkpoint_op_id`; buckets without ops are absent from the map.
    [[nodiscard]] protocol::Result<std::map<std::string, BucketChecksum>> checksums(
        std::span<const std::string> buckets, std::int64_t checkpoint_op_id);
    // Ops of one bucket with after < op_id <= up_to, in op_id order, at most `limit`.
    [[nodiscard]] protocol::Result<std::vector<StoredOp>> read_ops(const std::string& bucket, std::int64_t after,
                                                                    std::int64_t up_to, std::size_t limit);
    // The highest write checkpoint of (user, client) that checkpoint `checkpoint_op_id` includes
    // (replication had passed its LSN); nullopt when there is none.
    // The highest op_id at or below `checkpoint_op_id` at which any write checkpoint was delivered (0:
    // none). A session that read its own at checkpoint C need not read again while this is <= C.
    [[nodiscard]] protocol::Result<std::int64_t> write_checkpoints_delivered(std::int64_t checkpoint_op_id);
    [[nodiscard]] protocol::Result<std::optional<std::int64_t>> write_checkpoint(const std::string& user_id,
                                                                                const std::string& client_id,
                                                                                std::int64_t checkpoint_op_id);
    // For each key, the bucket_params of every lookup entry with that key in that rules version's
    // index: as of checkpoint `at_checkpoint` (a session resolving its buckets there), or as it
    // stands now. The index as of a checkpoint older than a minute may be incomplete.
    [[nodiscard]] protocol::Result<std::vector<std::vector<std::string>>> lookup(
        std::span<const std::string> keys, std::int64_t rules_version = kActiveRulesVersion,
        std::optional<std::int64_t> at_checkpoint = std::nullopt);

    struct Impl;

private:
    explicit BucketReader(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> m_impl;
};

}  // namespace sluice::storage
