// Setup of the source for logical replication: the publication (created and kept in step with the
// tables the rules use, or user-managed and only verified; never Sluice's storage schema) and the
// logical slot with pgoutput (created with its consistent point, or verified).
#pragma once

#include <string>
#include <vector>

#include "protocol/lsn.h"
#include "protocol/status.h"
#include "server/replication/pg_connection.h"

namespace sluice::replication {

inline constexpr const char* kStorageSchema = "sluice";

enum class PublicationMode {
    kManaged,      // Sluice creates the publication and adds/removes tables to match `tables`
    kUserManaged,  // the publication must exist and include `tables`; Sluice never changes it
};

struct PublicationSpec {
    std::string name = "sluice";
    std::vector<std::string> tables;  // "schema.table" or "table" (schema public)
    PublicationMode mode = PublicationMode::kManaged;
};

// Works on a regular or a replication=database connection (simple SQL only).
[[nodiscard]] protocol::Status ensure_publication(PgConnection& connection, const PublicationSpec& spec);

enum class SlotSnapshot {
    kNothing,  // no snapshot
    kExport,   // export one: usable by another session until this connection's next command
};

struct SlotInfo {
    bool created = false;
    protocol::Lsn consistent_point;  // created: where the stream starts; existing: confirmed_flush_lsn
    std::string snapshot_name;       // created with kExport
};

// Creates the logical pgoutput slot when missing (CREATE_REPLICATION_SLOT … LOGICAL pgoutput), or
// checks that the existing one is a usable logical pgoutput slot of this database. Needs a
// replication connection.
[[nodiscard]] protocol::Result<SlotInfo> ensure_slot(PgConnection& replication, const std::string& slot,
                                                     SlotSnapshot snapshot = SlotSnapshot::kNothing);

// Splits "schema.table" (default schema public) into its two parts.
[[nodiscard]] std::pair<std::string, std::string> split_table_name(const std::string& table);

}  // namespace sluice::replication
