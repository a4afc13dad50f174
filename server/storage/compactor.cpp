// Op-log compaction (see compactor.h).
#include "server/storage/compactor.h"

#include <pqxx/pqxx>

#include "server/core/log.h"
#include "server/core/pg_errors.h"

namespace sluice::storage {
namespace {

const core::Logger kLog("storage", "compact");

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
            // Every PUT or REMOVE that is not the last op of its row in this bucket: a client that
            // has it also receives the later op, and one that has not never needs it.
            auto moved = tx.exec_params(
                "UPDATE sluice.ops o SET op = 3, data = NULL FROM ("
                "  SELECT op_id, row_number() OVER (PARTITION BY object_type, object_id, subkey ORDER BY op_id DESC) "
                "         AS newer FROM sluice.ops WHERE bucket = $1 AND op_id <= $2 AND op IN (1, 2)) s "
                "WHERE o.bucket = $1 AND o.op_id = s.op_id AND s.newer > 1",
                bucket, up_to);
            // The removable prefix: everything up to the checkpoint before the first PUT (a PUT left
            // after step 1 may be a row's current state, which a CLEAR would lose).
            const auto prefix = tx.exec_params1(
                "SELECT count(*), COALESCE(max(op_id), 0), COALESCE(sum(checksum), 0) % 4294967296 FROM sluice.ops "
                "WHERE bucket = $1 AND op_id <= $2 AND op_id < COALESCE("
                "  (SELECT op_id FROM sluice.ops WHERE bucket = $1 AND op = 1 ORDER BY op_id LIMIT 1), $2 + 1)",
                bucket, up_to);
            const auto folded = prefix[0].as<std::int64_t>();
            if (folded >= 2) {
                const auto clear_id = prefix[1].as<std::int64_t>();
                tx.exec_params0("DELETE FROM sluice.ops WHERE bucket = $1 AND op_id < $2", bucket, clear_id);
                tx.exec_params0(
                    "UPDATE sluice.ops SET op = 4, object_type = NULL, object_id = NULL, subkey = NULL, data = NULL, "
                    "checksum = $3 WHERE bucket = $1 AND op_id = $2",
                    bucket, clear_id, prefix[2].as<std::int64_t>());
                tx.exec_params0("UPDATE sluice.buckets SET op_count = op_count - $2 WHERE bucket = $1", bucket,
                                folded - 1);
                report.cleared += folded - 1;
            }
            tx.exec_params0("UPDATE sluice.buckets SET compacted_to = $2 WHERE bucket = $1", bucket, up_to);
            tx.commit();
            report.moved += static_cast<std::int64_t>(moved.affected_rows());
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
