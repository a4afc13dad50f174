// The sync-rules versions recorded in storage (sluice.rules_versions, migrations/0002) and the
// removal of one version's stored data. The decisions (which version to build, when to switch) are
// server/app/rules_versions.h's; this file is only their storage half (libpqxx lives here).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <pqxx/connection>

#include "protocol/status.h"

namespace sluice::storage {

enum class VersionState : std::uint8_t {
    kBuilding,  // snapshot and stream into its own buckets; not shown to clients
    kActive,    // the one clients are served (exactly one, once any exists)
    kRetired,   // replaced or abandoned; its storage and slot are removed (then cleaned_at is set)
};

struct StoredRulesVersion {
    std::int64_t id = 0;
    std::string content;      // the sync-rules YAML text
    VersionState state = VersionState::kBuilding;
    std::string slot_name;    // its replication slot on the source
    std::string publication;  // its publication on the source
    bool cleaned = false;     // retired and removed
};

// Every recorded version, by id.
[[nodiscard]] protocol::Result<std::vector<StoredRulesVersion>> list_rules_versions(pqxx::connection& connection);
// Records a new version (its id must be above every recorded one).
[[nodiscard]] protocol::Status add_rules_version(pqxx::connection& connection, const StoredRulesVersion& version);
// building -> retired: a build that is abandoned (the rules changed again before it finished).
[[nodiscard]] protocol::Status retire_rules_version(pqxx::connection& connection, std::int64_t id);

// Deletes everything stored for a retired version: its buckets' ops (bucket ids "<id>#..."), its
// buckets, row copies, lookup entries, checkpoints, and the replication progress of its slot; then
// sets cleaned_at. In many short transactions (serving and replication carry on), and safe to
// repeat after a crash half-way. Returns the number of rows deleted.
[[nodiscard]] protocol::Result<std::int64_t> remove_rules_version_storage(pqxx::connection& connection,
                                                                       const StoredRulesVersion& version);

// Deletes the ops a version's writer committed whose storage write then failed to commit (see
// migrations/0006_ops_in_flight.sql), with their records; returns how many ops. Throws pqxx errors.
std::int64_t remove_ops_in_flight(pqxx::connection& connection, std::int64_t rules_version);

}  // namespace sluice::storage
