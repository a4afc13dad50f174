// The migration runner (see migrator.h).
#include "server/storage/migrator.h"

#include <map>

#include <pqxx/pqxx>

#include "server/core/log.h"
#include "server/core/pg_errors.h"

namespace sluice::storage {
namespace {

using protocol::ErrorCode;
using protocol::Status;

const core::Logger kLog("storage", "migrate");

// Advisory-lock key for migrations: the bytes of "sluicemg".
constexpr std::int64_t kMigrationLockKey = 0x736c756963656d67;

struct Applied {
    std::string name;
    std::string checksum;
};

}  // namespace

protocol::Result<MigrationReport> migrate(pqxx::connection& connection,
                                          std::span<const migrations::Migration> migrations) {
    MigrationReport report;
    try {
        pqxx::nontransaction session(connection);
        session.exec_params("SELECT pg_advisory_lock($1)", kMigrationLockKey);
        // The lock is released when this guard runs, whether we return normally or by exception.
        struct Unlock {
            pqxx::connection& c;
            ~Unlock() {
                try {
                    pqxx::nontransaction(c).exec_params("SELECT pg_advisory_unlock($1)", kMigrationLockKey);
                } catch (const std::exception&) {
                    // The connection is gone, and its session lock with it.
                }
            }
        };
        session.exec0("CREATE SCHEMA IF NOT EXISTS sluice");
        session.exec0(
            "CREATE TABLE IF NOT EXISTS sluice.schema_migrations ("
            "  version int PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
            "  applied_at timestamptz NOT NULL DEFAULT now())");
        session.commit();
        Unlock unlock{connection};

        std::map<int, Applied> applied;
        {
            pqxx::nontransaction read(connection);
            for (const auto& row : read.exec("SELECT version, name, checksum FROM sluice.schema_migrations")) {
                applied[row[0].as<int>()] = {row[1].as<std::string>(), row[2].as<std::string>()};
            }
        }
        const int known = migrations.empty() ? 0 : migrations.back().version;
        if (!applied.empty() && applied.rbegin()->first > known) {
            return Status(ErrorCode::kStorageMigrationUnknown,
                          fmt::format("storage schema is at version {} but this binary knows migrations up to {}",
                                      applied.rbegin()->first, known));
        }
        for (const auto& m : migrations) {
            pqxx::work tx(connection);
            const auto checksum =
                tx.exec_params1("SELECT encode(sha256(convert_to($1, 'UTF8')), 'hex')", std::string(m.sql))[0]
                    .as<std::string>();
            if (auto it = applied.find(m.version); it != applied.end()) {
                if (it->second.checksum != checksum) {
                    return Status(ErrorCode::kStorageMigrationChanged,
                                  fmt::format("migration {:04}_{} was changed after it was applied", m.version,
                                              m.name));
                }
                report.current_version = m.version;
                continue;
            }
            try {
                tx.exec0(std::string(m.sql));
            } catch (const pqxx::sql_error& e) {
                return Status(ErrorCode::kStorageMigrationFailed,
                              fmt::format("migration {:04}_{} failed: {}", m.version, m.name, core::one_line(e.what())));
            }
            tx.exec_params0("INSERT INTO sluice.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                            m.version, std::string(m.name), checksum);
            tx.commit();
            kLog.info("applied {:04}_{}", m.version, m.name);
            report.applied.push_back(m.version);
            report.current_version = m.version;
        }
    } catch (const pqxx::broken_connection& e) {
        return Status(ErrorCode::kStorageUnreachable,
                      fmt::format("lost the storage connection while migrating: {}", core::one_line(e.what())));
    } catch (const std::exception& e) {
        return Status(ErrorCode::kStorageQueryFailed, fmt::format("migrating failed: {}", core::one_line(e.what())));
    }
    return report;
}

}  // namespace sluice::storage
