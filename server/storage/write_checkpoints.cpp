// Write checkpoint records (see write_checkpoints.h).
#include "server/storage/write_checkpoints.h"

#include <fmt/format.h>
#include <pqxx/pqxx>

#include "server/core/pg_errors.h"

namespace sluice::storage {
namespace {

using protocol::ErrorCode;
using protocol::Status;

// Superseded rows are dropped by the BucketWriter when it delivers newer ones, so inserting stays
// one cheap statement however far replication lags.
constexpr const char* kInsert =
    "INSERT INTO sluice.write_checkpoints (user_id, client_id, checkpoint, lsn) "
    "VALUES ($1, $2, COALESCE($3, nextval('sluice.write_checkpoint_numbers')), $4::pg_lsn) "
    "ON CONFLICT (user_id, client_id, checkpoint) DO NOTHING RETURNING checkpoint";

}  // namespace

struct WriteCheckpointStore::Impl {
    pqxx::connection connection;
    explicit Impl(const std::string& conninfo) : connection(conninfo) {}

    protocol::Result<std::int64_t> insert(const std::string& user_id, const std::string& client_id,
                                          std::optional<std::int64_t> number, protocol::Lsn lsn) {
        try {
            // One statement, so autocommit keeps it atomic and costs one round trip.
            pqxx::nontransaction tx(connection);
            auto result = tx.exec_params(kInsert, user_id, client_id, number, lsn.to_string());
            if (result.empty()) {
                return number.value_or(0);  // already recorded (a client-numbered repeat)
            }
            return result[0][0].as<std::int64_t>();
        } catch (const pqxx::broken_connection& e) {
            return Status(ErrorCode::kStorageUnreachable,
                          fmt::format("lost the storage connection while recording a write checkpoint: {}",
                                      core::one_line(e.what())));
        } catch (const std::exception& e) {
            return Status(ErrorCode::kStorageQueryFailed,
                          fmt::format("recording a write checkpoint failed: {}", core::one_line(e.what())));
        }
    }
};

WriteCheckpointStore::WriteCheckpointStore(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
WriteCheckpointStore::~WriteCheckpointStore() = default;

protocol::Result<std::unique_ptr<WriteCheckpointStore>> WriteCheckpointStore::open(const std::string& conninfo) {
    try {
        return std::unique_ptr<WriteCheckpointStore>(new WriteCheckpointStore(std::make_unique<Impl>(conninfo)));
    } catch (const std::exception& e) {
        return Status(ErrorCode::kStorageUnreachable,
                      fmt::format("cannot connect to the storage database: {}", core::one_line(e.what())));
    }
}

protocol::Result<std::int64_t> WriteCheckpointStore::create(const std::string& user_id, const std::string& client_id,
                                                            protocol::Lsn lsn) {
    return m_impl->insert(user_id, client_id, std::nullopt, lsn);
}

protocol::Status WriteCheckpointStore::record(const std::string& user_id, const std::string& client_id,
                                              std::int64_t number, protocol::Lsn lsn) {
    auto r = m_impl->insert(user_id, client_id, number, lsn);
    return r ? Status::ok() : r.status();
}

}  // namespace sluice::storage
