// WriteCheckpointStore: records write checkpoints in the storage database (sluice.write_checkpoints,
// see migrations/0002_write_checkpoints.sql): (user, client, number, source LSN), delivered to that
// client's sync stream once the replicating BucketWriter has passed the LSN. Used by the upload
// layer after a batch commits and for GET /write-checkpoint2.json.
//
// Thread-safe, with group commit: a call that finds no statement running writes its checkpoint at
// once; calls that arrive while one runs wait and are written together by the next statement (one
// connection, one round trip, one commit for all of them). Numbers are given in LSN order within
// a statement; across statements a client's numbers can run against LSN order, and the writer then
// delivers a number only once every lower undelivered number of that client is passed too.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "protocol/lsn.h"
#include "protocol/status.h"

namespace sluice::storage {

class WriteCheckpointStore {
public:
    [[nodiscard]] static protocol::Result<std::unique_ptr<WriteCheckpointStore>> open(const std::string& conninfo);
    ~WriteCheckpointStore();
    WriteCheckpointStore(const WriteCheckpointStore&) = delete;
    WriteCheckpointStore& operator=(const WriteCheckpointStore&) = delete;

    // Records a write checkpoint with a new server-assigned number (one sequence: numbers only grow)
    // at `lsn`, and returns the number.
    [[nodiscard]] protocol::Result<std::int64_t> create(const std::string& user_id, const std::string& client_id,
                                                        protocol::Lsn lsn);
    // Records a write checkpoint with the client's own number (POST /sync/checkpoint-request). A
    // number already recorded for this user and client is kept as it was.
    [[nodiscard]] protocol::Status record(const std::string& user_id, const std::string& client_id, std::int64_t number,
                                          protocol::Lsn lsn);

    struct Impl;

private:
    explicit WriteCheckpointStore(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> m_impl;
};

}  // namespace sluice::storage
