// A whole source transaction as the replication layer hands it on: its commit position and its
// changes in order, each row change with the relation (columns, types, identity) it was made under.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "protocol/lsn.h"
#include "protocol/pgoutput/messages.h"

namespace sluice::replication {

// Shared and immutable: a schema change makes a new one, so earlier changes keep their own.
using RelationPtr = std::shared_ptr<const protocol::pgoutput::Relation>;

struct RowChange {
    enum class Kind { kInsert, kUpdate, kDelete };
    Kind kind = Kind::kInsert;
    RelationPtr relation;
    // kUpdate (when sent) and kDelete: the key or full old row (see old_kind).
    protocol::pgoutput::OldTupleKind old_kind = protocol::pgoutput::OldTupleKind::kNone;
    protocol::pgoutput::Tuple old_tuple;
    // kInsert, kUpdate: the new row; kUnchangedToast datums must be filled from the stored row.
    protocol::pgoutput::Tuple new_tuple;
};

struct TruncateChange {
    std::vector<RelationPtr> relations;
    std::uint8_t options = 0;  // protocol::pgoutput::Truncate::kCascade | kRestartIdentity
};

using Change = std::variant<RowChange, TruncateChange, protocol::pgoutput::LogicalMessage>;

struct SourceTransaction {
    protocol::pgoutput::Xid xid = 0;  // 0 for a non-transactional logical message
    protocol::Lsn commit_lsn;         // the commit record
    protocol::Lsn end_lsn;            // confirm this once the transaction is durable
    protocol::pgoutput::PgTimestamp commit_time = 0;
    std::optional<std::string> origin;  // replication origin, when the change came from one
    std::vector<Change> changes;
    // false: a leading chunk of a large transaction; more chunks of it follow, the last one complete.
    // end_lsn is known (and the transaction may be confirmed) only on the complete one.
    bool complete = true;
};

}  // namespace sluice::replication
