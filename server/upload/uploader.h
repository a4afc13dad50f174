// Uploader: applies clients' upload batches to the SOURCE database exactly once, under the sync
// rules' write_rules, and hands out write checkpoints. Spec: protocol/README.md ("Uploads", "Write
// checkpoints"); invariant 6 of README.md.
//
// One batch = one source transaction, sent as pipelined prepared statements over raw libpq
// (detail/pipeline.h): a retried batch finds its (client_id, batch_id) record in sluice.uploads in
// the first round trip and is answered from it; otherwise every op's old row is read with
// SELECT … FOR UPDATE and checked against write_rules (table, operation, condition over old/new row
// and the request, allowed columns), the write runs (as uploads.apply_as_role with the token's
// claims, when set), and the record with the batch's result is inserted just before COMMIT. A
// concurrent request of the same batch waits on the record's key, fails on it, rolls back and is
// answered from the committed record. Transient failures (deadlock, serialization failure, lost
// connection, even during COMMIT) run the batch again, bounded: a committed first attempt is found
// by the retry's record check.
//
// The batch's write checkpoint is issued in its own transaction, with the record: the WAL position,
// read under an advisory lock on the client (so a client's batches are numbered in commit order),
// and a transactional logical message that carries it through replication to storage
// (server/storage/write_checkpoints.h). No storage write and no extra round trip on this path.
// Blocking: call it on worker threads, never on an I/O thread. Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "config/rules/rule_set.h"
#include "config/sluice_config.h"
#include "protocol/status.h"
#include "protocol/wire/upload.h"
#include "server/auth/token_verifier.h"

namespace sluice::upload {

struct UploaderOptions {
    std::string source_conninfo;
    // Storage, where checkpoints of their own are also recorded pending, for a lost slot (see
    // storage/write_checkpoints.h). Empty: not recorded (tests of the upload path alone).
    std::string storage_conninfo;
    config::BatchPolicy policy = config::BatchPolicy::kAllOrNothing;
    std::string apply_as_role;  // empty: the source user, no RLS role
    int max_attempts = 5;
    std::chrono::milliseconds retry_backoff{20};  // doubled per attempt, with jitter
    std::chrono::hours record_retention{168};
};

// The uploads section of sluice.yaml, with the source connection string.
[[nodiscard]] UploaderOptions options_from_config(const config::Config& config);

// Test hooks: called with the source backend's pid at these points of a batch's transaction.
enum class HookPoint {
    kBeforeCommit,  // the ops are checked (the last one's write may be queued); record and COMMIT not sent
    kAfterCommit,   // COMMIT succeeded, the answer is not yet returned
};
using UploadHook = std::function<void(HookPoint point, int backend_pid)>;

struct UploadAnswer {
    protocol::wire::UploadResult result;
    std::int64_t write_checkpoint = 0;
    bool replayed = false;  // answered from the record of an earlier attempt or request
};

struct UploaderStats {
    std::atomic<std::uint64_t> batches{0};  // batches answered (including replays)
    std::atomic<std::uint64_t> replays{0};
    std::atomic<std::uint64_t> ops_applied{0};
    std::atomic<std::uint64_t> ops_rejected{0};
    std::atomic<std::uint64_t> retries{0};   // attempts run again after a transient failure
    std::atomic<std::uint64_t> failures{0};  // batches answered with an error (nothing applied)
};

class Uploader {
public:
    [[nodiscard]] static std::shared_ptr<Uploader> create(UploaderOptions options,
                                                          std::shared_ptr<const config::rules::RuleSet> rules,
                                                          UploadHook hook = {});
    ~Uploader();  // stops the background thread
    Uploader(const Uploader&) = delete;
    Uploader& operator=(const Uploader&) = delete;

    // Creates schema sluice and table sluice.uploads in the source database when missing (the
    // record must live in the source transaction), when the rules have write_rules. Idempotent;
    // upload() runs it once if needed. SL6014 when it cannot.
    [[nodiscard]] protocol::Status prepare();

    // Applies one batch for `user`. `batch.client_id` empty: the user id is the client id. Errors
    // (nothing applied, nothing recorded): SL6009 the source kept failing, SL6010 the batch id is
    // another user's, SL6014, SL5015 when the rules have no write_rules.
    [[nodiscard]] protocol::Result<UploadAnswer> upload(const auth::VerifiedToken& user,
                                                        const protocol::wire::UploadBatch& batch);

    // GET /write-checkpoint2.json: a new write checkpoint, issued in a source transaction of its own
    // (delivered once replication has passed everything committed before this call). Works without
    // write_rules too: it writes nothing to the source but a logical message.
    [[nodiscard]] protocol::Result<std::int64_t> create_write_checkpoint(const std::string& user_id,
                                                                         const std::string& client_id);
    // POST /sync/checkpoint-request: the same with the client's own number. A repeated number is
    // recorded once.
    [[nodiscard]] protocol::Status request_write_checkpoint(const std::string& user_id, const std::string& client_id,
                                                            std::int64_t number);

    [[nodiscard]] const UploaderStats& stats() const;

    struct Impl;

private:
    explicit Uploader(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> m_impl;
};

}  // namespace sluice::upload
