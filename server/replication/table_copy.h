// The initial copy of a source table for the snapshot: its description (as a pgoutput Relation, so
// copied rows go through the same router path as streamed ones) and its rows in ordering-key order,
// one bounded chunk at a time, resumable after the last key copied. Raw libpq, simple queries.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "protocol/pgoutput/messages.h"
#include "protocol/status.h"
#include "server/replication/pg_connection.h"

namespace sluice::replication {

struct TableDescription {
    protocol::pgoutput::Relation relation;  // columns with types and replica-identity key flags
    std::vector<std::size_t> order_columns; // indexes of the columns the copy is ordered by (PK, else identity)
    std::int64_t rows_estimated = 0;        // pg_class.reltuples
};

// Describes "schema.table" the way pgoutput would in a Relation message. Errors name the table and
// the fix when it has no usable replica identity.
[[nodiscard]] protocol::Result<TableDescription> describe_table(PgConnection& connection, const std::string& table);

// The relation with its key columns set the way storage identifies rows: the primary key when the
// replica identity is FULL and a primary key exists (pgoutput then flags every column), otherwise as
// pgoutput flags them. So a switch between DEFAULT and FULL identity keeps rows' keys.
[[nodiscard]] protocol::Result<std::shared_ptr<const protocol::pgoutput::Relation>> key_by_primary_key(
    PgConnection& connection, const std::shared_ptr<const protocol::pgoutput::Relation>& relation);

struct CopyChunk {
    std::vector<protocol::pgoutput::Tuple> rows;  // text datums, relation column order
    std::string last_key;  // the last row's ordering values (core/field_codec encoding); "" if none
};

// The next rows after `after_key` ("" = from the start), at most `limit`, ordered by the ordering
// key. A table without an ordering key is read whole in one chunk (`limit` ignored).
[[nodiscard]] protocol::Result<CopyChunk> copy_chunk(PgConnection& connection, const TableDescription& table,
                                                     const std::string& after_key, std::size_t limit);

}  // namespace sluice::replication
