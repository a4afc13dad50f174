// SyncStorage over BucketReader, and the StoragePool (see sync_storage.h).
#include "server/sync/sync_storage.h"

#include "server/sync/read_cache.h"

namespace sluice::sync {

protocol::Result<std::map<std::string, storage::BucketChecksum>> ReaderStorage::checksums(
    std::span<const std::string> buckets, std::int64_t checkpoint_op_id) {
    return m_reader->checksums(buckets, checkpoint_op_id);
}

protocol::Result<std::vector<storage::StoredOp>> ReaderStorage::read_ops(const std::string& bucket, std::int64_t after,
                                                                        std::int64_t up_to, std::size_t limit) {
    return m_reader->read_ops(bucket, after, up_to, limit);
}

protocol::Result<std::vector<std::vector<std::string>>> ReaderStorage::lookup(std::span<const std::string> keys,
                                                                              std::int64_t rules_version,
                                                                              std::int64_t checkpoint_op_id) {
    return m_reader->lookup(keys, rules_version, checkpoint_op_id);
}

protocol::Result<std::optional<std::int64_t>> ReaderStorage::write_checkpoint(const std::string& user_id,
                                                                            const std::string& client_id,
                                                                            std::int64_t checkpoint_op_id) {
    return m_reader->write_checkpoint(user_id, client_id, checkpoint_op_id);
}

std::shared_ptr<StoragePool> StoragePool::for_conninfo(std::string conninfo) {
    return std::make_shared<StoragePool>([conninfo = std::move(conninfo)]() -> protocol::Result<std::unique_ptr<SyncStorage>> {
        auto reader = storage::BucketReader::open(conninfo);
        if (!reader) {
            return reader.status();
        }
        return std::unique_ptr<SyncStorage>(std::make_unique<ReaderStorage>(std::move(reader).value()));
    });
}

StoragePool::StoragePool(Factory factory) : m_factory(std::move(factory)), m_cache(std::make_unique<ReadCache>()) {}
StoragePool::~StoragePool() = default;

protocol::Status StoragePool::with(const std::function<protocol::Status(SyncStorage&)>& fn) {
    std::unique_ptr<SyncStorage> storage;
    {
        std::lock_guard lock(m_mutex);
        if (!m_idle.empty()) {
            storage = std::move(m_idle.back());
            m_idle.pop_back();
        }
    }
    if (!storage) {
        auto opened = m_factory();
        if (!opened) {
            return opened.status();
        }
        storage = std::move(opened).value();
    }
    CachedStorage cached(*storage, *m_cache);
    auto status = fn(cached);
    if (status.is_ok()) {
        std::lock_guard lock(m_mutex);
        m_idle.push_back(std::move(storage));
    }
    return status;
}

}  // namespace sluice::sync
