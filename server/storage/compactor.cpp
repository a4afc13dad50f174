// Op-log compaction (see compactor.h).
#include "server/storage/compactor.h"

#include <pqxx/pqxx>

#include "server/core/log.h"
#include "server/core/pg_errors.h"
#include "server/storage/op_chunks.h"

namespace sluice::storage {
namespace {

const core::Logger kLog("storage", "compact");

// Both steps work on whole chunks up to the checkpoint (op_chunks.h); a chunk that spans the
// checkpoint waits for the next compaction.

// Turns every PUT or REMOVE that is not the last op of its row in the bucket into a MOVE: a client
// that has it also receives the later op, and one that has not never needs it. Rewrites only the
// chunks that hold such ops; returns how many ops it changed.
std::int64_t supersede(pqxx::work& tx, const std::string& bucket, std::int64_t up_to) {
    return tx
        .exec_params1(
            "WITH o AS ("
            "  SELECT c.last_op_id AS chunk, (e->>0)::bigint AS op_id, "
            "         row_number() OVER (PARTITION BY e->>2, e->>3, e->>4 ORDER BY (e->>0)::bigint DESC) AS newer "
            "  FROM sluice.op_chunks c, json_array_elements(c.ops::json) e "
            "  WHERE c.bucket = $1 AND c.last_op_id <= $2 AND e->>1 IN ('1', '2')), "
            "s AS (SELECT chunk, op_id FROM o WHERE newer > 1), "
            "rewritten AS ("
            "  SELECT c.last_op_id AS chunk, "
            "         json_agg(CASE WHEN s.op_id IS NULL THEN x.e "
            "                  ELSE json_build_array(x.e->0, 3, x.e->2, x.e->3, x.e->4, NULL, x.e->6) END "
            "                  ORDER BY x.i)::text AS ops "
            "  FROM sluice.op_chunks c "
            "  CROSS JOIN LATERAL json_array_elements(c.ops::json) WITH ORDINALITY AS x(e, i) "
            "  LEFT JOIN s ON s.chunk = c.last_op_id AND s.op_id = (x.e->>0)::bigint "
            "  WHERE c.bucket = $1 AND c.last_op_id IN (SELECT chunk FROM s) "
            "  GROUP BY c.last_op_id), "
            "u AS (UPDATE sluice.op_chunks c SET ops = r.ops FROM rewritten r "
            "      WHERE c.bucket = $1 AND c.last_op_id = r.chunk) "
            "SELECT count(*) FROM s",
            bucket, up_to)[0]
        .as<std::int64_t>();
}

// The removable prefix: the ops up to the checkpoint before the first PUT (a PUT left after
// supersede() may be a row's current state, which a CLEAR would lose), found chunk by chunk.
struct Prefix {
    std::int64_t count = 0;
    std::int64_t last_op_id = 0;  // becomes the CLEAR op
    std::uint32_t checksum = 0;   // wrapping sum
    std::int64_t chunk = 0;       // the chunk that holds last_op_id
    std::vector<StoredOp> rest;   // that chunk's ops after last_op_id
};

Prefix find_prefix(pqxx::work& tx, const std::string& bucket, std::int64_t up_to) {
    Prefix prefix;
    std::int64_t from = 0;
    for (;;) {
        constexpr std::int64_t kPage = 64;
        auto result = tx.exec_params(
            "SELECT last_op_id, ops FROM sluice.op_chunks WHERE bucket = $1 AND last_op_id > $2 AND last_op_id <= $3 "
            "ORDER BY last_op_id LIMIT $4",
            bucket, from, up_to, kPage);
        for (const auto& r : result) {
            const auto chunk = r[0].as<std::int64_t>();
            auto ops = decode_op_chunk(std::string_view(r[1].c_str(), r[1].size()));
            if (!ops) {
                throw std::runtime_error(ops.status().message());
            }
            for (std::size_t i = 0; i < ops->size(); ++i) {
                const auto& op = (*ops)[i];
                if (op.op == 1) {
                    if (i > 0) {
                        prefix.rest.assign(ops->begin() + static_cast<std::ptrdiff_t>(i), ops->end());
                    }
                    return prefix;
                }
                ++prefix.count;
                prefix.last_op_id = op.op_id;
                prefix.checksum += op.checksum;
                prefix.chunk = chunk;
            }
        }
        if (result.size() < static_cast<std::size_t>(kPage)) {
            return prefix;
        }
        from = result.back()[0].as<std::int64_t>();
    }
}

// Folds a prefix of two or more ops into one CLEAR op; returns how many ops that removed.
std::int64_t fold_prefix(pqxx::work& tx, const std::string& bucket, std::int64_t up_to) {
    const auto prefix = find_prefix(tx, bucket, up_to);
    if (prefix.count < 2) {
        return 0;
    }
    tx.exec_params0("DELETE FROM sluice.op_chunks WHERE bucket = $1 AND last_op_id < $2", bucket, prefix.chunk);
    StoredOp clear;
    clear.op_id = prefix.last_op_id;
    clear.op = 4;
    clear.checksum = prefix.checksum;
    std::vector<StoredOp> ops{clear};
    ops.insert(ops.end(), prefix.rest.begin(), prefix.rest.end());
    std::int64_t checksum = 0;
    for (const auto& op : ops) {
        checksum += op.checksum;
    }
    tx.exec_params0(
        "UPDATE sluice.op_chunks SET first_op_id = $3, op_count = $4, checksum = $5, ops = $6 "
        "WHERE bucket = $1 AND last_op_id = $2",
        bucket, prefix.chunk, clear.op_id, static_cast<std::int64_t>(ops.size()), checksum, encode_op_chunk(ops));
    return prefix.count - 1;
}

}  // namespace

protocol::Result<CompactionReport> compact(pqxx::connection& connection) {
    CompactionReport report;
    try {
        // Each bucket up to its own rules version's latest checkpoint ("2#by_user[...]" is version 2;
        // ids without a version prefix are version 1's).
        std::vector<std::pair<std::string, std::int64_t>> buckets;
        {
            pqxx::read_transaction tx(connection);
            // Each version's latest checkpoint from the index (versions not cleaned up, and 1 for
            // storage written without recorded versions).
            for (const auto& r : tx.exec(
                     "SELECT b.bucket, cp.up_to FROM sluice.buckets b "
                     "JOIN (SELECT v.id AS rules_version, (SELECT max(op_id) FROM sluice.checkpoints c "
                     "                                     WHERE c.rules_version = v.id) AS up_to "
                     "      FROM (SELECT id FROM sluice.rules_versions WHERE cleaned_at IS NULL UNION SELECT 1) v) cp "
                     "  ON cp.rules_version = COALESCE(substring(b.bucket FROM '^([0-9]{1,18})#')::bigint, 1) "
                     "WHERE cp.up_to IS NOT NULL AND b.compacted_to < LEAST(b.last_op_id, cp.up_to)")) {
                buckets.emplace_back(r[0].as<std::string>(), r[1].as<std::int64_t>());
            }
        }
        for (const auto& [bucket, up_to] : buckets) {
            pqxx::work tx(connection);
            const auto moved = supersede(tx, bucket, up_to);
            const auto folded = fold_prefix(tx, bucket, up_to);
            if (folded > 0) {
                tx.exec_params0("UPDATE sluice.buckets SET op_count = op_count - $2 WHERE bucket = $1", bucket, folded);
            }
            tx.exec_params0("UPDATE sluice.buckets SET compacted_to = $2 WHERE bucket = $1", bucket, up_to);
            tx.commit();
            report.moved += moved;
            report.cleared += folded;
            ++report.buckets;
        }
        kLog.info("compacted {} bucket(s): {} op(s) superseded, {} folded into CLEAR ops", report.buckets, report.moved,
                  report.cleared);
    } catch (const pqxx::broken_connection& e) {
        return protocol::Status(protocol::ErrorCode::kStorageUnreachable,
                                fmt::format("lost the storage connection while compacting: {}", core::one_line(e.what())));
    } catch (const std::exception& e) {
        return protocol::Status(protocol::ErrorCode::kStorageQueryFailed,
                                fmt::format("compaction failed: {}", core::one_line(e.what())));
    }
    return report;
}

}  // namespace sluice::storage
