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

// The checkpoint a message with kWriteCheckpointPrefix carries; nullopt when the content is not one
// (a message some other program wrote under the same prefix).
[[nodiscard]] std::optional<WriteCheckpoint> parse_write_checkpoint_message(std::string_view content);

}  // namespace sluice::storage
