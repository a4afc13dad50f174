// What a client session reads from bucket storage (checksums at a checkpoint, pages of ops, the
// parameter lookup index, write checkpoints), as an interface so session logic is tested without Postgres; and a pool
// of BucketReader-backed instances for the worker threads that run session steps.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "protocol/status.h"
#include "server/storage/bucket_reader.h"

namespace sluice::sync {

class SyncStorage {
public:
    virtual ~SyncStorage() = default;
    // Checksums at `checkpoint_op_id`; buckets without ops are absent.
    [[nodiscard]] virtual protocol::Result<std::map<std::string, storage::BucketChecksum>> checksums(
        std::span<const std::string> buckets, std::int64_t checkpoint_op_id) = 0;
    // Ops of one bucket with after < op_id <= up_to, in op_id order, at most `limit`.
    [[nodiscard]] virtual protocol::Result<std::vector<storage::StoredOp>> read_ops(const std::string& bucket,
                                                                                   std::int64_t after,
                                                                                   std::int64_t up_to,
                                                                                   std::size_t limit) = 0;
    // For each key, the bucket parameter values of every lookup entry with that key, in the index
    // of that rules version as of checkpoint `checkpoint_op_id`.
    [[nodiscard]] virtual protocol::Result<std::vector<std::vector<std::string>>> lookup(
        std::span<const std::string> keys, std::int64_t rules_version, std::int64_t checkpoint_op_id) = 0;
    // The highest op_id <= checkpoint_op_id at which any write checkpoint was delivered (0: none).
    [[nodiscard]] virtual protocol::Result<std::int64_t> write_checkpoints_delivered(std::int64_t checkpoint_op_id) = 0;
    // The highest write checkpoint of (user, client) included in checkpoint `checkpoint_op_id`.
    [[nodiscard]] virtual protocol::Result<std::optional<std::int64_t>> write_checkpoint(
        const std::string& user_id, const std::string& client_id, std::int64_t checkpoint_op_id) = 0;
};

// SyncStorage over one BucketReader (one Postgres connection).
class ReaderStorage final : public SyncStorage {
public:
    explicit ReaderStorage(std::unique_ptr<storage::BucketReader> reader) : m_reader(std::move(reader)) {}
    protocol::Result<std::map<std::string, storage::BucketChecksum>> checksums(std::span<const std::string> buckets,
                                                                             std::int64_t checkpoint_op_id) override;
    protocol::Result<std::vector<storage::StoredOp>> read_ops(const std::string& bucket, std::int64_t after,
                                                             std::int64_t up_to, std::size_t limit) override;
    protocol::Result<std::vector<std::vector<std::string>>> lookup(std::span<const std::string> keys,
                                                                  std::int64_t rules_version,
                                                                  std::int64_t checkpoint_op_id) override;
    protocol::Result<std::int64_t> write_checkpoints_delivered(std::int64_t checkpoint_op_id) override {
        return m_reader->write_checkpoints_delivered(checkpoint_op_id);
    }
    protocol::Result<std::optional<std::int64_t>> write_checkpoint(const std::string& user_id,
                                                                  const std::string& client_id,
                                                                  std::int64_t checkpoint_op_id) override;

private:
    std::unique_ptr<storage::BucketReader> m_reader;
};

class ReadCache;

// A pool of storage connections shared by the worker threads. acquire() reuses an idle one or opens
// a new one; a connection that failed is not returned (the next acquire opens a fresh one). Reads of
// checksums and small op pages go through one ReadCache shared by every session (read_cache.h).
class StoragePool {
public:
    using Factory = std::function<protocol::Result<std::unique_ptr<SyncStorage>>()>;
    explicit StoragePool(Factory factory);
    ~StoragePool();
    // A pool of ReaderStorage on `conninfo`.
    [[nodiscard]] static std::shared_ptr<StoragePool> for_conninfo(std::string conninfo);

    // Runs fn with a connection (blocking: call it on a worker thread, never on an I/O thread).
    // The connection goes back to the pool unless fn returned an error.
    [[nodiscard]] protocol::Status with(const std::function<protocol::Status(SyncStorage&)>& fn);
    [[nodiscard]] const ReadCache& cache() const { return *m_cache; }

private:
    Factory m_factory;
    std::unique_ptr<ReadCache> m_cache;
    std::mutex m_mutex;  // guards m_idle; taken by worker threads
    std::vector<std::unique_ptr<SyncStorage>> m_idle;
};

}  // namespace sluice::sync
