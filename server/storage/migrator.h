// Applies the embedded storage migrations (migrations/*.sql) in order, recording each in
// sluice.schema_migrations. Safe to run twice, and from several processes at once (an advisory lock
// serialises them; the later ones find nothing left to do).
#pragma once

#include <span>
#include <vector>

#include "migrations/migrations.h"
#include <pqxx/connection>

#include "protocol/status.h"


namespace sluice::storage {

struct MigrationReport {
    std::vector<int> applied;  // versions applied by this call
    int current_version = 0;   // the storage schema's version afterwards
};

[[nodiscard]] protocol::Result<MigrationReport> migrate(pqxx::connection& connection,
                                                        std::span<const migrations::Migration> migrations);

}  // namespace sluice::storage
