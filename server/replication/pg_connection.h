// A thin RAII owner of a raw libpq connection for the replication layer (libpqxx cannot run the
// replication protocol), with simple-query helpers.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "protocol/status.h"

struct pg_conn;
struct pg_result;

namespace sluice::replication {

enum class ConnectionKind {
    kRegular,      // an ordinary SQL session
    kReplication,  // replication=database: the walsender protocol plus simple SQL
};

// Rows of a simple query as text; NULL fields are nullopt.
using Rows = std::vector<std::vector<std::optional<std::string>>>;

class PgConnection {
public:
    // Connects; failures are classified into source error codes with the fix in the message.
    // `options` is passed as libpq's "options" keyword (e.g. "-c datestyle=ISO"); empty: none.
    [[nodiscard]] static protocol::Result<PgConnection> open(const std::string& conninfo, ConnectionKind kind,
                                                             int connect_timeout_seconds,
                                                             const std::string& options = {});

    // Runs one simple-protocol statement; returns its rows or kSourceQueryFailed with the server's message.
    [[nodiscard]] protocol::Result<Rows> query(const std::string& sql);

    [[nodiscard]] pg_conn* raw() const { return m_conn.get(); }
    [[nodiscard]] std::string server_version() const;

private:
    struct Closer {
        void operator()(pg_conn* c) const;
    };
    explicit PgConnection(pg_conn* conn) : m_conn(conn) {}
    std::unique_ptr<pg_conn, Closer> m_conn;
};

}  // namespace sluice::replication
