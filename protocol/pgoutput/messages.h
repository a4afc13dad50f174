// The messages of Postgres's pgoutput logical-decoding plugin as typed structs: protocol v1 (Begin,
// Commit, Origin, Relation, Type, Insert, Update, Delete, Truncate, logical Message) and the v2
// stream messages. Spec: Postgres docs, "Logical Replication Message Formats" (protocol.sgml).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "protocol/lsn.h"

namespace sluice::protocol::pgoutput {

using Oid = std::uint32_t;
using Xid = std::uint32_t;
// Microseconds since 2000-01-01 00:00:00 UTC (Postgres's TimestampTz).
using PgTimestamp = std::int64_t;

struct Begin {
    Lsn final_lsn;  // the LSN of the transaction's commit record
    PgTimestamp commit_time = 0;
    Xid xid = 0;
    bool operator==(const Begin&) const = default;
};

struct Commit {
    std::uint8_t flags = 0;
    Lsn commit_lsn;  // equals Begin::final_lsn
    Lsn end_lsn;     // just past the commit record: what to confirm once the transaction is durable
    PgTimestamp commit_time = 0;
    bool operator==(const Commit&) const = default;
};

struct Origin {
    Lsn commit_lsn;  // of the commit on the origin server
    std::string name;
    bool operator==(const Origin&) const = default;
};

// pg_class.relreplident.
enum class ReplicaIdentity : char {
    kDefault = 'd',  // the primary key
    kNothing = 'n',
    kFull = 'f',   // every column
    kIndex = 'i',  // a chosen unique index
};

struct Column {
    bool is_key = false;  // part of the replica identity
    std::string name;
    Oid type_oid = 0;
    std::int32_t type_modifier = -1;
    bool operator==(const Column&) const = default;
};

// Sent before the first change of a relation in a session and again after its schema changed.
struct Relation {
    std::optional<Xid> xid;  // streamed transactions only (v2)
    Oid id = 0;
    std::string schema;  // empty for pg_catalog
    std::string name;
    ReplicaIdentity identity = ReplicaIdentity::kDefault;
    std::vector<Column> columns;
    bool operator==(const Relation&) const = default;
};

// Sent before a relation that uses a non-built-in type.
struct Type {
    std::optional<Xid> xid;
    Oid oid = 0;
    std::string schema;
    std::string name;
    bool operator==(const Type&) const = default;
};

enum class DatumKind : char {
    kNull = 'n',
    kUnchangedToast = 'u',  // a large out-of-line value that was not changed and not sent
    kText = 't',            // the type's text output form
    kBinary = 'b',          // the type's binary send form (binary 'true')
};

struct Datum {
    DatumKind kind = DatumKind::kNull;
    std::string data;  // for kText and kBinary
    bool operator==(const Datum&) const = default;
};

// One value per column of the relation, in the Relation message's column order.
using Tuple = std::vector<Datum>;

enum class OldTupleKind : char {
    kNone = 0,    // no old tuple sent
    kKey = 'K',   // only the replica identity columns are meaningful (others are null)
    kFull = 'O',  // the whole old row (REPLICA IDENTITY FULL)
};

struct Insert {
    std::optional<Xid> xid;
    Oid relation_id = 0;
    Tuple new_tuple;
    bool operator==(const Insert&) const = default;
};

struct Update {
    std::optional<Xid> xid;
    Oid relation_id = 0;
    OldTupleKind old_kind = OldTupleKind::kNone;
    Tuple old_tuple;  // empty when old_kind == kNone
    Tuple new_tuple;
    bool operator==(const Update&) const = default;
};

struct Delete {
    std::optional<Xid> xid;
    Oid relation_id = 0;
    OldTupleKind old_kind = OldTupleKind::kKey;  // kKey or kFull
    Tuple old_tuple;
    bool operator==(const Delete&) const = default;
};

struct Truncate {
    static constexpr std::uint8_t kCascade = 1;
    static constexpr std::uint8_t kRestartIdentity = 2;
    std::optional<Xid> xid;
    std::uint8_t options = 0;
    std::vector<Oid> relation_ids;
    bool operator==(const Truncate&) const = default;
};

// pg_logical_emit_message(); sent only with messages 'true'.
struct LogicalMessage {
    std::optional<Xid> xid;
    bool transactional = false;
    Lsn lsn;
    std::string prefix;
    std::string content;
    bool operator==(const LogicalMessage&) const = default;
};

// v2: a chunk of a large in-progress transaction follows, until StreamStop.
struct StreamStart {
    Xid xid = 0;
    bool first_segment = false;
    bool operator==(const StreamStart&) const = default;
};

struct StreamStop {
    bool operator==(const StreamStop&) const = default;
};

struct StreamCommit {
    Xid xid = 0;
    std::uint8_t flags = 0;
    Lsn commit_lsn;
    Lsn end_lsn;
    PgTimestamp commit_time = 0;
    bool operator==(const StreamCommit&) const = default;
};

// The streamed (sub)transaction `subxact_xid` of `xid` rolled back (equal xids: all of it).
struct StreamAbort {
    Xid xid = 0;
    Xid subxact_xid = 0;
    bool operator==(const StreamAbort&) const = default;
};

using Message = std::variant<Begin, Commit, Origin, Relation, Type, Insert, Update, Delete, Truncate, LogicalMessage,
                             StreamStart, StreamStop, StreamCommit, StreamAbort>;

// "Begin", "Insert", ...: for logs and errors.
[[nodiscard]] const char* message_name(const Message& message);

}  // namespace sluice::protocol::pgoutput
