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
        std::int64_t up_to = 0;
        std::vector<std::string> buckets;
        {
            pqxx::read_transaction tx(connection);
            up_to = tx.exec1("SELECT COALESCE(max(op_id), 0) FROM sluice.checkpoints")[0].as<std::int64_t>();
            for (const auto& r : tx.exec_params("SELECT bucket FROM sluice.buckets WHERE compacted_to < LEAST(last_op_id, $1)",
                                                up_to)) {
                buckets.push_back(r[0].as<std::string>());
            }
        }
        for (const auto& bucket : buckets) {
            pqxx::work tx(connection);
            // Every PUT or REMOVE that is not the last op of its row in this bucket: a client that
            // has it also receives the later op, and one that has not never needs it.
            auto moved = tx.exec_params(
                "UPDATE sluice.ops o SET op = 3, data = NULL FROM ("
                "  SELECT op_id, row_number() OVER (PARTITION BY object_type, object_id, subkey ORDER BY op_id DESC) "
                "         AS newer FROM sluice.ops WHERE bucket = $1 AND op_id <= $2 AND op IN (1, 2)) s "
                "WHERE o.bucket = $1 AND o.op_id = s.op_id AND s.newer > 1",
                bucket, up_to);
            tx.exec_params0("UPDATE sluice.buckets SET compacted_to = $2 WHERE bucket = $1", bucket, up_to);
            tx.commit();
            report.moved += static_cast<std::int64_t>(moved.affected_rows());
            ++report.buckets;
        }
        kLog.info("compacted {} bucket(s) up to op {}: {} op(s) superseded", report.buckets, up_to, report.moved);
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
