// Stored sync-rules versions (see rules_versions.h).
#include "server/storage/rules_versions.h"

#include <pqxx/pqxx>

#include "server/core/log.h"
#include "server/core/pg_errors.h"

namespace sluice::storage {
namespace {

using protocol::ErrorCode;
using protocol::Status;

const core::Logger kLog("storage", "rules_versions");

const char* state_text(VersionState state) {
    switch (state) {
        case VersionState::kBuilding:
            return "building";
        case VersionState::kActive:
            return "active";
        case VersionState::kRetired:
            return "retired";
    }
    return "retired";
}

VersionState parse_state(const std::string& text) {
    if (text == "building") {
        return VersionState::kBuilding;
    }
    return text == "active" ? VersionState::kActive : VersionState::kRetired;
}

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

// Runs `sql` (a DELETE of at most one chunk, $1 = the version or slot) until it deletes nothing.
std::int64_t delete_in_chunks(pqxx::connection& connection, const std::string& sql, const std::string& key) {
    std::int64_t total = 0;
    for (;;) {
        pqxx::work tx(connection);
        const auto deleted = static_cast<std::int64_t>(tx.exec_params(sql, key).affected_rows());
        tx.commit();
        total += deleted;
        if (deleted == 0) {
            return total;
        }
    }
}

}  // namespace

protocol::Result<std::vector<StoredRulesVersion>> list_rules_versions(pqxx::connection& connection) {
    using List = std::vector<StoredRulesVersion>;
    return guarded<List>("listing the rules versions", [&] {
        pqxx::read_transaction tx(connection);
        List out;
        for (const auto& r : tx.exec("SELECT id, content, state, slot_name, publication, cleaned_at IS NOT NULL "
                                     "FROM sluice.rules_versions ORDER BY id")) {
            out.push_back({r[0].as<std::int64_t>(), r[1].as<std::string>(), parse_state(r[2].as<std::string>()),
                           r[3].as<std::string>(), r[4].as<std::string>(), r[5].as<bool>()});
        }
        return out;
    });
}

protocol::Status add_rules_version(pqxx::connection& connection, const StoredRulesVersion& version) {
    auto done = guarded<bool>("recording a rules version", [&] {
        pqxx::work tx(connection);
        tx.exec_params0(
            "INSERT INTO sluice.rules_versions (id, content, state, slot_name, publication, activated_at, activated_op_id) "
            "VALUES ($1, $2, $3, $4, $5, CASE WHEN $3 = 'active' THEN now() END, CASE WHEN $3 = 'active' THEN 0 END)",
            version.id, version.content, state_text(version.state), version.slot_name, version.publication);
        tx.commit();
        return true;
    });
    return done ? Status::ok() : done.status();
}

protocol::Status retire_rules_version(pqxx::connection& connection, std::int64_t id) {
    auto done = guarded<bool>("retiring a rules version", [&] {
        pqxx::work tx(connection);
        tx.exec_params0("UPDATE sluice.rules_versions SET state = 'retired' WHERE id = $1 AND state = 'building'", id);
        tx.commit();
        return true;
    });
    return done ? Status::ok() : done.status();
}

protocol::Result<std::int64_t> remove_rules_version_storage(pqxx::connection& connection,
                                                            const StoredRulesVersion& version) {
    return guarded<std::int64_t>("removing a retired rules version's storage", [&] {
        const std::string id = std::to_string(version.id);
        // Ops of a failed write may sit in buckets that have no row in sluice.buckets.
        std::int64_t removed = remove_ops_in_flight(connection, version.id);
        // Ops bucket by bucket; a bucket's row goes last, so a crash half-way finds it again.
        const std::string prefix = id + "#";
        for (;;) {
            std::vector<std::string> buckets;
            {
                pqxx::read_transaction tx(connection);
                for (const auto& r : tx.exec_params(
                         "SELECT bucket FROM sluice.buckets WHERE left(bucket, length($1)) = $1 LIMIT 100", prefix)) {
                    buckets.push_back(r[0].as<std::string>());
                }
            }
            if (buckets.empty()) {
                break;
            }
            for (const auto& bucket : buckets) {
                pqxx::work tx(connection);
                removed += static_cast<std::int64_t>(
                    tx.exec_params("DELETE FROM sluice.op_chunks WHERE bucket = $1", bucket).affected_rows());
                tx.exec_params0("DELETE FROM sluice.buckets WHERE bucket = $1", bucket);
                tx.commit();
                ++removed;
            }
        }
        removed += delete_in_chunks(connection,
                                    "DELETE FROM sluice.current_rows WHERE ctid = ANY(ARRAY(SELECT ctid FROM "
                                    "sluice.current_rows WHERE rules_version = $1::bigint LIMIT 10000))",
                                    id);
        removed += delete_in_chunks(connection,
                                    "DELETE FROM sluice.parameter_lookups WHERE ctid = ANY(ARRAY(SELECT ctid FROM "
                                    "sluice.parameter_lookups WHERE rules_version = $1::bigint LIMIT 10000))",
                                    id);
        pqxx::work tx(connection);
        removed += static_cast<std::int64_t>(
            tx.exec_params("DELETE FROM sluice.checkpoints WHERE rules_version = $1", version.id).affected_rows());
        tx.exec_params0("DELETE FROM sluice.snapshot_progress WHERE slot_name = $1", version.slot_name);
        tx.exec_params0("DELETE FROM sluice.replication_state WHERE slot_name = $1", version.slot_name);
        tx.exec_params0("UPDATE sluice.rules_versions SET cleaned_at = now() WHERE id = $1", version.id);
        tx.commit();
        kLog.info("rules version {} removed from storage: {} row(s)", version.id, removed);
        return removed;
    });
}

std::int64_t remove_ops_in_flight(pqxx::connection& connection, std::int64_t rules_version) {
    pqxx::work tx(connection);
    // (A write's chunks hold only its own ops: all of a chunk is in the range, or none.)
    const auto removed = tx.exec_params1(
        "WITH m AS (DELETE FROM sluice.ops_in_flight WHERE rules_version = $1 RETURNING *), "
        "d AS (DELETE FROM sluice.op_chunks c USING m "
        "      WHERE c.bucket = ANY(m.buckets) AND c.first_op_id BETWEEN m.first_op_id AND m.last_op_id "
        "      RETURNING c.op_count) "
        "SELECT COALESCE(sum(op_count), 0) FROM d",
        rules_version)[0].as<std::int64_t>();
    tx.commit();
    return removed;
}

}  // namespace sluice::storage
