// ReadCache (see read_cache.h).
#include "server/sync/read_cache.h"

namespace sluice::sync {

protocol::Result<std::map<std::string, storage::BucketChecksum>> ReadCache::checksums(
    SyncStorage& storage, std::span<const std::string> buckets, std::int64_t checkpoint_op_id) {
    std::map<std::string, storage::BucketChecksum> out;
    std::vector<std::string> missing;
    {
        std::lock_guard lock(m_mutex);
        for (const auto& bucket : buckets) {
            auto it = m_checksums.find({bucket, checkpoint_op_id});
            if (it == m_checksums.end()) {
                missing.push_back(bucket);
                continue;
            }
            if (it->second) {
                out.emplace(bucket, *it->second);
            }
        }
        m_stats.checksum_hits += buckets.size() - missing.size();
        m_stats.checksum_misses += missing.size();
    }
    if (missing.empty()) {
        return out;
    }
    auto read = storage.checksums(missing, checkpoint_op_id);
    if (!read) {
        return read.status();
    }
    std::lock_guard lock(m_mutex);
    for (const auto& bucket : missing) {
        std::optional<storage::BucketChecksum> value;
        if (auto it = read->find(bucket); it != read->end()) {
            value = it->second;
            out.emplace(bucket, it->second);
        }
        if (m_checksums.emplace(ChecksumKey{bucket, checkpoint_op_id}, value).second) {
            m_checksum_order.emplace_back(bucket, checkpoint_op_id);
        }
    }
    while (m_checksum_order.size() > m_limits.max_checksums) {
        m_checksums.erase(m_checksum_order.front());
        m_checksum_order.pop_front();
    }
    return out;
}

protocol::Result<std::int64_t> ReadCache::write_checkpoints_delivered(SyncStorage& storage,
                                                                     std::int64_t checkpoint_op_id) {
    {
        std::lock_guard lock(m_mutex);
        if (auto it = m_deliveries.find(checkpoint_op_id); it != m_deliveries.end()) {
            return it->second;
        }
    }
    auto read = storage.write_checkpoints_delivered(checkpoint_op_id);
    if (read) {
        std::lock_guard lock(m_mutex);
        m_deliveries[checkpoint_op_id] = read.value();
        while (m_deliveries.size() > 64) {
            m_deliveries.erase(m_deliveries.begin());  // the oldest checkpoints
        }
    }
    return read;
}

protocol::Result<std::vector<storage::StoredOp>> ReadCache::read_ops(SyncStorage& storage, const std::string& bucket,
                                                                    std::int64_t after, std::int64_t up_to,
                                                                    std::size_t limit) {
    PageKey key{bucket, after, up_to, limit};
    {
        std::lock_guard lock(m_mutex);
        if (auto it = m_pages.find(key); it != m_pages.end()) {
            ++m_stats.page_hits;
            return it->second.ops;
        }
        ++m_stats.page_misses;
    }
    auto read = storage.read_ops(bucket, after, up_to, limit);
    if (!read) {
        return read;
    }
    std::size_t bytes = 0;
    for (const auto& op : read.value()) {
        bytes += sizeof(op) + op.object_type.size() + op.object_id.size() + op.subkey.size() +
                 (op.data ? op.data->size() : 0);
    }
    if (bytes > m_limits.max_page_bytes) {
        return read;
    }
    std::lock_guard lock(m_mutex);
    if (m_pages.emplace(key, Page{read.value(), bytes}).second) {
        m_page_order.push_back(std::move(key));
        m_page_bytes += bytes;
    }
    while (m_page_bytes > m_limits.max_total_bytes && !m_page_order.empty()) {
        auto it = m_pages.find(m_page_order.front());
        m_page_bytes -= it->second.bytes;
        m_pages.erase(it);
        m_page_order.pop_front();
    }
    return read;
}

ReadCacheStats ReadCache::stats() const {
    std::lock_guard lock(m_mutex);
    return m_stats;
}

}  // namespace sluice::sync
