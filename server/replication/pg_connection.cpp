// Raw libpq connection for the replication layer (see pg_connection.h).
#include "server/replication/pg_connection.h"

#include <libpq-fe.h>

#include <fmt/format.h>

#include "server/core/pg_errors.h"

namespace sluice::replication {
namespace {

using protocol::ErrorCode;
using protocol::Status;

Status connect_failure_status(const std::string& conninfo, const std::string& message) {
    const auto where = core::redact_conninfo(conninfo);
    switch (core::classify_connect_failure(message)) {
        case core::ConnectFailure::kUnreachable:
            return {ErrorCode::kSourceUnreachable,
                    fmt::format("cannot reach the source Postgres ({}): {}; check source.uri and that Postgres "
                                "is running and listening on that address",
                                where, message)};
        case core::ConnectFailure::kAuth:
            return {ErrorCode::kSourceAuthFailed,
                    fmt::format("the source Postgres rejected the login ({}): {}; check the user and password in "
                                "source.uri and pg_hba.conf (replication connections need their own "
                                "'replication' entry)",
                                where, message)};
        case core::ConnectFailure::kDatabaseMissing:
            return {ErrorCode::kSourceDatabaseMissing,
                    fmt::format("the source database does not exist ({}): {}", where, message)};
        case core::ConnectFailure::kNoReplication:
            return {ErrorCode::kSourceNoReplicationPrivilege,
                    fmt::format("the source user may not open a replication connection ({}): {}; run ALTER ROLE "
                                "<user> WITH REPLICATION",
                                where, message)};
        case core::ConnectFailure::kNoWalSenders:
            return {ErrorCode::kSourceNoFreeWalSenders,
                    fmt::format("the source Postgres has no free WAL sender ({}): {}; raise max_wal_senders and "
                                "restart Postgres, or stop other replication clients",
                                where, message)};
        case core::ConnectFailure::kOther:
            break;
    }
    return {ErrorCode::kSourceUnreachable, fmt::format("cannot connect to the source Postgres ({}): {}", where, message)};
}

}  // namespace

void PgConnection::Closer::operator()(pg_conn* c) const { PQfinish(c); }

protocol::Result<PgConnection> PgConnection::open(const std::string& conninfo, ConnectionKind kind,
                                                  int connect_timeout_seconds, const std::string& options) {
    const std::string timeout = std::to_string(connect_timeout_seconds);
    // expand_dbname: the first "dbname" is the whole conninfo; the later keywords override it.
    std::vector<const char*> keys{"dbname", "connect_timeout", "application_name"};
    std::vector<const char*> values{conninfo.c_str(), timeout.c_str(), "sluice"};
    if (kind == ConnectionKind::kReplication) {
        keys.push_back("replication");
        values.push_back("database");
    }
    if (!options.empty()) {
        keys.push_back("options");
        values.push_back(options.c_str());
    }
    keys.push_back(nullptr);
    values.push_back(nullptr);
    pg_conn* raw = PQconnectdbParams(keys.data(), values.data(), 1);
    PgConnection connection(raw);
    if (raw == nullptr) {
        return Status(ErrorCode::kSourceUnreachable, "libpq could not allocate a connection");
    }
    if (PQstatus(raw) != CONNECTION_OK) {
        return connect_failure_status(conninfo, core::one_line(PQerrorMessage(raw)));
    }
    return connection;
}

protocol::Result<Rows> PgConnection::query(const std::string& sql) {
    std::unique_ptr<pg_result, decltype(&PQclear)> result(PQexec(m_conn.get(), sql.c_str()), &PQclear);
    const auto status = PQresultStatus(result.get());
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
        return Status(ErrorCode::kSourceQueryFailed,
                      fmt::format("'{}' failed on the source: {}", sql, core::one_line(PQerrorMessage(m_conn.get()))));
    }
    Rows rows;
    const int n_rows = PQntuples(result.get());
    const int n_cols = PQnfields(result.get());
    rows.reserve(static_cast<std::size_t>(n_rows));
    for (int r = 0; r < n_rows; ++r) {
        auto& row = rows.emplace_back();
        for (int c = 0; c < n_cols; ++c) {
            if (PQgetisnull(result.get(), r, c) != 0) {
                row.emplace_back(std::nullopt);
            } else {
                row.emplace_back(std::string(PQgetvalue(result.get(), r, c),
                                             static_cast<std::size_t>(PQgetlength(result.get(), r, c))));
            }
        }
    }
    return rows;
}

std::string PgConnection::server_version() const {
    const int v = PQserverVersion(m_conn.get());
    return fmt::format("{}.{}", v / 10000, v % 10000);
}

}  // namespace sluice::replication
