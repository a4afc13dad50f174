// Write checkpoints travel through replication. Whoever issues one (the upload layer, for a batch
// it committed or for GET /write-checkpoint2.json and POST /sync/checkpoint-request) writes a
// transactional logical message on the SOURCE with the checkpoint's (user, client, number), in the
// transaction that the checkpoint must follow or in one of its own. The replicating BucketWriter
// finds the message in that transaction and records the checkpoint in sluice.write_checkpoints with
// the op_id of the checkpoint it commits the transaction in (migrations/0003_write_checkpoints.sql);
// a session reports a client's highest number recorded at or below the checkpoint it sends. So a
// write checkpoint is delivered exactly when replication has passed the commit that issued it, with
// no storage write on the upload path and no wait for a WAL position.
//
// A lost slot (Postgres invalidated it, or it was dropped) takes undecoded messages with it, and
// their clients would wait for them until their next write checkpoint. Two records cover them:
// - an upload's record in the source keeps its number (sluice.uploads.write_checkpoint, in the
//   batch's transaction): the replicator reads each client's highest under its snapshot
//   (kSnapshotWriteCheckpointsSql) and delivers them with the snapshot, whose data holds their
//   batches;
// - a checkpoint of its own carries no data, only "every write of the client committed before
//   this WAL position": it is also recorded in storage, pending at that position
//   (kRecordIssuedWriteCheckpointSql). Its message takes the row over; a writer that loads pending
//   rows (at start, as after a slot loss) delivers it once its stream has passed the position.
//
// This header owns the message's format: both sides use it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::storage {

inline constexpr std::string_view kWriteCheckpointPrefix = "sluice_write_checkpoint";

struct WriteCheckpoint {
    std::string user_id;
    std::string client_id;
    std::int64_t number = 0;
    bool operator==(const WriteCheckpoint&) const = default;
};

// SQL for the message's content: the three arguments are SQL expressions (parameters such as "$1",
// or a column) for the user id (text), client id (text) and number (bigint).
[[nodiscard]] std::string write_checkpoint_content_sql(std::string_view user, std::string_view client,
                                                       std::string_view number);
// SQL that emits the message with that content in the current transaction; its value is the
// message's LSN.
[[nodiscard]] std::string emit_write_checkpoint_sql(std::string_view user, std::string_view client,
                                                    std::string_view number);

// On the source, in the snapshot's transaction: (user_id, client_id, number as text), each client's
// highest number recorded by an upload. Run it only when kUploadCheckpointsReadableSql answers
// true: sluice.uploads may be missing, lack the column (uploads are off, or an older Sluice made
// it) or be unreadable, and a failed statement would abort the snapshot.
extern const std::string kUploadCheckpointsReadableSql;
extern const std::string kSnapshotWriteCheckpointsSql;

// On storage: records a checkpoint of its own as pending, $1 user, $2 client, $3 number, $4 the
// source's WAL position (pg_lsn text) when it was issued. Nothing when that checkpoint, or a later
// one of the client, is delivered already.
extern const std::string kRecordIssuedWriteCheckpointSql;

// The checkpoint a message with kWriteCheckpointPrefix carries; nullopt when the content is not one
// (a message some other program wrote under the same prefix).
[[nodiscard]] std::optional<WriteCheckpoint> parse_write_checkpoint_message(std::string_view content);

}  // namespace sluice::storage
