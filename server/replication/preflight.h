// Start-up checks of the source Postgres, each failure with an actionable message: reachable, login
// accepted, wal_level=logical, REPLICATION privilege, a free (or our own) replication slot, a free
// WAL sender and a working replication connection.
#pragma once

#include <string>

#include "protocol/lsn.h"
#include "protocol/status.h"

namespace sluice::replication {

struct SourceInfo {
    std::string server_version;  // e.g. "15.18"
    std::string system_id;       // from IDENTIFY_SYSTEM
    protocol::Lsn current_lsn;
    bool slot_exists = false;    // our slot already exists (a restart, not a first start)
};

struct PreflightOptions {
    std::string conninfo;
    std::string slot_name;
    int connect_timeout_seconds = 10;
};

[[nodiscard]] protocol::Result<SourceInfo> preflight(const PreflightOptions& options);

}  // namespace sluice::replication
