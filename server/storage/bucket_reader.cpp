// Read queries for sessions (see bucket_reader.h).
#include "server/storage/bucket_reader.h"

#include <algorithm>

#include <fmt/format.h>
#include <pqxx/pqxx>

#include "server/core/pg_errors.h"
#include "server/storage/pg_array.h"

namespace sluice::storage {
namespace {

using protocol::ErrorCode;
using protocol::Status;

template <typename T, typename F>
protocol::Result<T> guarded(const char* what, F&& body) {
    try {
        return body();
    } catch (const pqxx::broken_connection& e) {
        return Status(ErrorCode::kStorageUnreachable,
                      fmt::format("lost the storage connection while {}: {}", what, core::one_line(e.what())));
    } catch (const std::exception& e) {
        return Status(ErrorCode::kStorageQueryFailed, fmt::format("{} failed: {}", what, core::one_line(e.what())));
    }
}

}  // namespace

struct BucketReader::Impl {
    pqxx::connection connection;
    explicit Impl(const std::string& conninfo) : connection(conninfo) {}
};

BucketReader::BucketReader(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
BucketReader::~BucketReader() = default;

protocol::Result<std::unique_ptr<BucketReader>> BucketReader::open(const std::string& conninfo) {
    return guarded<std::unique_ptr<BucketReader>>("opening a bucket reader", [&] {
        return std::unique_ptr<BucketReader>(new BucketReader(std::make_unique<Impl>(conninfo)));
    });
}

protocol::Result<std::optional<Checkpoint>> BucketReader::latest_checkpoint() {
    return guarded<std::optional<Checkpoint>>("reading the latest checkpoint", [&]() -> std::optional<Checkpoint> {
        pqxx::nontransaction tx(m_impl->connection);  // one statement: its own snapshot, one round trip
        auto result = tx.exec(
            "SELECT c.op_id, c.lsn::text, c.rules_version FROM sluice.checkpoints c "
            "WHERE c.rules_version = COALESCE((SELECT id FROM sluice.rules_versions WHERE state = 'active'), "
            "    (SELECT rules_version FROM sluice.checkpoints ORDER BY op_id DESC LIMIT 1)) "
            "ORDER BY c.op_id DESC LIMIT 1");
        if (result.empty()) {
            return std::nullopt;
        }
        return Checkpoint{result[0][0].as<std::int64_t>(),
                          protocol::Lsn::parse(result[0][1].as<std::string>()).value_or(protocol::Lsn{}),
                          result[0][2].as<std::int64_t>()};
    });
}

protocol::Result<std::map<std::string, BucketChecksum>> BucketReader::checksums(std::span<const std::string> buckets,
                                                                                std::int64_t checkpoint_op_id) {
    using Map = std::map<std::string, BucketChecksum>;
    return guarded<Map>("reading bucket checksums", [&] {
        Map out;
        if (buckets.empty()) {
            return out;
        }
        const auto names = to_pg_array(std::vector<std::string>(buckets.begin(), buckets.end()));
        pqxx::nontransaction tx(m_impl->connection);  // one statement: its own snapshot, one round trip
        // Running totals, minus the ops written after the checkpoint (only in buckets that have any).
        // The writer commits ops just before the totals that include them (bucket_writer.cpp): ops
        // past a bucket's last_op_id are not in its total yet.
        auto result = tx.exec_params(
            "SELECT b.bucket, "
            "       (b.checksum - COALESCE(late.checksum, 0)) % 4294967296, "
            "       b.op_count - COALESCE(late.count, 0) "
            "FROM sluice.buckets b "
            "LEFT JOIN LATERAL ("
            // Chunks after the checkpoint count whole; one that spans it, by its ops after it.
            "  SELECT sum(CASE WHEN c.first_op_id > $2 THEN c.checksum ELSE part.checksum END) AS checksum, "
            "         sum(CASE WHEN c.first_op_id > $2 THEN c.op_count ELSE part.count END) AS count "
            "  FROM sluice.op_chunks c "
            "  CROSS JOIN LATERAL (SELECT sum((e->>6)::bigint) AS checksum, count(*) AS count "
            "      FROM json_array_elements(CASE WHEN c.first_op_id > $2 THEN '[]' ELSE c.ops END::json) e "
            "      WHERE (e->>0)::bigint > $2) part "
            "  WHERE c.bucket = b.bucket AND c.last_op_id > $2 AND c.last_op_id <= b.last_op_id "
            "    AND b.last_op_id > $2) late ON true "
            "WHERE b.bucket = ANY($1::text[])",
            names, checkpoint_op_id);
        for (const auto& r : result) {
            std::int64_t sum = r[1].as<std::int64_t>();
            if (sum < 0) {
                sum += std::int64_t{1} << 32;
            }
            const auto count = r[2].as<std::int64_t>();
            if (count > 0) {
                out[r[0].as<std::string>()] = {static_cast<std::uint32_t>(sum), count};
            }
        }
        return out;
    });
}

protocol::Result<std::vector<StoredOp>> BucketReader::read_ops(const std::string& bucket, std::int64_t after,
                                                               std::int64_t up_to, std::size_t limit) {
    return guarded<std::vector<StoredOp>>("reading ops", [&]() -> protocol::Result<std::vector<StoredOp>> {
        std::vector<StoredOp> ops;
        pqxx::nontransaction tx(m_impl->connection);
        // Chunks in op_id order until the page is full: a first guess of the chunks a page needs
        // (a chunk holds about 10-20 ops of ~100 bytes), then twice as many per round trip. Each
        // statement reads its own snapshot; a compaction between two of them is no different from
        // one between two pages, which clients handle (compaction keeps every prefix's result).
        std::int64_t from = after;
        std::size_t chunks = std::max<std::size_t>(8, limit / 16);
        while (ops.size() < limit) {
            auto result = tx.exec_params(
                "SELECT last_op_id, ops FROM sluice.op_chunks WHERE bucket = $1 AND last_op_id > $2 "
                "AND first_op_id <= $3 ORDER BY last_op_id LIMIT $4",
                bucket, from, up_to, static_cast<std::int64_t>(chunks));
            for (const auto& r : result) {
                auto decoded = decode_op_chunk(std::string_view(r[1].c_str(), r[1].size()));
                if (!decoded) {
                    return decoded.status();
                }
                for (auto& op : decoded.value()) {
                    if (op.op_id > after && op.op_id <= up_to && ops.size() < limit) {
                        ops.push_back(std::move(op));
                    }
                }
            }
            if (result.size() < chunks) {
                break;
            }
            from = result.back()[0].as<std::int64_t>();
            chunks *= 2;
        }
        return ops;
    });
}

protocol::Result<std::int64_t> BucketReader::write_checkpoints_delivered(std::int64_t checkpoint_op_id) {
    return guarded<std::int64_t>("reading write checkpoint deliveries", [&] {
        pqxx::nontransaction tx(m_impl->connection);
        return tx
            .exec_params1("SELECT COALESCE(max(op_id), 0) FROM sluice.write_checkpoints WHERE op_id <= $1",
                          checkpoint_op_id)[0]
            .as<std::int64_t>();
    });
}

protocol::Result<std::optional<std::int64_t>> BucketReader::write_checkpoint(const std::string& user_id,
                                                                           const std::string& client_id,
                                                                           std::int64_t checkpoint_op_id) {
    return guarded<std::optional<std::int64_t>>("reading the write checkpoint", [&] {
        pqxx::nontransaction tx(m_impl->connection);  // one statement: its own snapshot, one round trip
        auto result = tx.exec_params(
            "SELECT max(checkpoint) FROM sluice.write_checkpoints "
            "WHERE user_id = $1 AND client_id = $2 AND op_id IS NOT NULL AND op_id <= $3",
            user_id, client_id, checkpoint_op_id);
        return result[0][0].get<std::int64_t>();
    });
}

protocol::Result<std::vector<std::vector<std::string>>> BucketReader::lookup(std::span<const std::string> keys,
                                                                             std::int64_t rules_version,
                                                                             std::optional<std::int64_t> at_checkpoint) {
    using Values = std::vector<std::vector<std::string>>;
    return guarded<Values>("reading parameter lookups", [&] {
        Values out(keys.size());
        if (keys.empty()) {
            return out;
        }
        pqxx::nontransaction tx(m_impl->connection);  // one statement: its own snapshot, one round trip
        auto result = tx.exec_params(
            "SELECT k.i, p.bucket_params FROM unnest($1::text[]) WITH ORDINALITY AS k(key, i) "
            "JOIN sluice.parameter_lookups p ON p.lookup_key = k.key AND p.rules_version = "
            "  CASE WHEN $2::bigint <> 0 THEN $2::bigint ELSE COALESCE((SELECT id FROM sluice.rules_versions WHERE state = 'active'), 1) END "
            // Valid at the checkpoint (migrations/0005_lookup_history.sql), or now (still open).
            "AND CASE WHEN $3::bigint IS NULL THEN p.to_op IS NULL "
            "         ELSE p.from_op <= $3::bigint AND (p.to_op IS NULL OR p.to_op > $3::bigint) END",
            to_pg_array(std::vector<std::string>(keys.begin(), keys.end())), rules_version, at_checkpoint);
        for (const auto& r : result) {
            out[r[0].as<std::size_t>() - 1].push_back(r[1].as<std::string>());
        }
        return out;
    });
}

}  // namespace sluice::storage
