// ReadCache: what many sessions read alike at one checkpoint, read from storage once. When a new
// checkpoint arrives every subscribed session asks for the same bucket checksums at it and the same
// small page of ops (from the previous checkpoint up to it): the first asks storage, the others are
// answered from memory. Both are immutable once a checkpoint exists, so entries never go stale.
// Bounded: checksums by entry count, pages by bytes, oldest out first; pages over a size are not kept
// (initial downloads stream through without copies).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "server/sync/sync_storage.h"

namespace sluice::sync {

struct ReadCacheLimits {
    std::size_t max_checksums = 200'000;      // (bucket, checkpoint) entries
    std::size_t max_page_bytes = 64 * 1024;   // larger pages are not kept
    std::size_t max_total_bytes = 32 << 20;   // all kept pages together
};

struct ReadCacheStats {
    std::uint64_t checksum_hits = 0;
    std::uint64_t checksum_misses = 0;
    std::uint64_t page_hits = 0;
    std::uint64_t page_misses = 0;
};

class ReadCache {
public:
    explicit ReadCache(ReadCacheLimits limits = {}) : m_limits(limits) {}

    // SyncStorage::checksums through the cache; asks `storage` only for the buckets it lacks.
    [[nodiscard]] protocol::Result<std::map<std::string, storage::BucketChecksum>> checksums(
        SyncStorage& storage, std::span<const std::string> buckets, std::int64_t checkpoint_op_id);
    // SyncStorage::read_ops through the cache.
    [[nodiscard]] protocol::Result<std::vector<storage::StoredOp>> read_ops(SyncStorage& storage,
                                                                           const std::string& bucket,
                                                                           std::int64_t after, std::int64_t up_to,
                                                                           std::size_t limit);
    // SyncStorage::write_checkpoints_delivered through the cache: one query per checkpoint.
    [[nodiscard]] protocol::Result<std::int64_t> write_checkpoints_delivered(SyncStorage& storage,
                                                                           std::int64_t checkpoint_op_id);
    [[nodiscard]] ReadCacheStats stats() const;

private:
    using ChecksumKey = std::pair<std::string, std::int64_t>;  // (bucket, checkpoint)
    using PageKey = std::tuple<std::string, std::int64_t, std::int64_t, std::size_t>;  // (bucket, after, up_to, limit)
    struct Page {
        std::vector<storage::StoredOp> ops;
        std::size_t bytes = 0;
    };

    ReadCacheLimits m_limits;
    mutable std::mutex m_mutex;  // guards everything below; taken by the worker threads
    std::map<ChecksumKey, std::optional<storage::BucketChecksum>> m_checksums;  // nullopt: no ops at that checkpoint
    std::deque<ChecksumKey> m_checksum_order;
    std::map<PageKey, Page> m_pages;
    std::deque<PageKey> m_page_order;
    std::size_t m_page_bytes = 0;
    std::map<std::int64_t, std::int64_t> m_deliveries;  // checkpoint -> write_checkpoints_delivered (the last few)
    ReadCacheStats m_stats;
};

// A SyncStorage that reads through a ReadCache (lookups go straight to storage: they are not
// versioned by checkpoint; write checkpoints too: they are per client).
class CachedStorage final : public SyncStorage {
public:
    CachedStorage(SyncStorage& storage, ReadCache& cache) : m_storage(storage), m_cache(cache) {}
    protocol::Result<std::map<std::string, storage::BucketChecksum>> checksums(std::span<const std::string> buckets,
                                                                             std::int64_t checkpoint_op_id) override {
        return m_cache.checksums(m_storage, buckets, checkpoint_op_id);
    }
    protocol::Result<std::vector<storage::StoredOp>> read_ops(const std::string& bucket, std::int64_t after,
                                                             std::int64_t up_to, std::size_t limit) override {
        return m_cache.read_ops(m_storage, bucket, after, up_to, limit);
    }
    protocol::Result<std::vector<std::vector<std::string>>> lookup(std::span<const std::string> keys,
                                                                   std::int64_t rules_version,
                                                                   std::int64_t checkpoint_op_id) override {
        return m_storage.lookup(keys, rules_version, checkpoint_op_id);
    }
    protocol::Result<std::int64_t> write_checkpoints_delivered(std::int64_t checkpoint_op_id) override {
        return m_cache.write_checkpoints_delivered(m_storage, checkpoint_op_id);
    }
    protocol::Result<std::optional<std::int64_t>> write_checkpoint(const std::string& user_id,
                                                                   const std::string& client_id,
                                                                   std::int64_t checkpoint_op_id) override {
        return m_storage.write_checkpoint(user_id, client_id, checkpoint_op_id);
    }

private:
    SyncStorage& m_storage;
    ReadCache& m_cache;
};

}  // namespace sluice::sync
