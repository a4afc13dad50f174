// Classification of Postgres connection failures from libpq's message text (libpq gives no SQLSTATE
// for a failed connection). Shared by the replication and storage layers, so both say the same thing.
#pragma once

#include <string>
#include <string_view>

namespace sluice::core {

enum class ConnectFailure {
    kUnreachable,       // no server at that address, DNS failure, timeout
    kAuth,              // bad password, unknown role, no pg_hba.conf entry
    kDatabaseMissing,   // the database named in the URI does not exist
    kNoReplication,     // the role lacks REPLICATION (replication connections only)
    kNoWalSenders,      // max_wal_senders reached
    kOther,
};

[[nodiscard]] ConnectFailure classify_connect_failure(std::string_view libpq_message);

// libpq's multi-line message on one line, without the trailing newline.
[[nodiscard]] std::string one_line(std::string_view libpq_message);

// A connection URI or key=value string with any password replaced by "***", for logs and errors.
[[nodiscard]] std::string redact_conninfo(std::string_view conninfo);

}  // namespace sluice::core
