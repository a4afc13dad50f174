// BucketWriter: turns evaluated source-row changes into the bucket op log (PUT/REMOVE with
// checksums), keeps each row's current copy, placements and lookup entries, and commits checkpoints
// at source commit boundaries. Single writer: only the replicating process uses it.
//
// Use per batch of source transactions: prefetch(keys) → apply()/truncate() for each change, in
// source order → commit(lsn of the last commit). Nothing is visible before commit(); memory stays
// bounded because pending ops and rows are flushed into the open storage transactions every
// `flush_ops` ops. It holds two storage connections: ops go into sluice.op_chunks on the second, in
// parallel (bucket_writer.cpp says how a commit that fails half-way is undone).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "protocol/lsn.h"
#include "protocol/status.h"
#include "server/core/bucket_change.h"
#include "server/storage/write_checkpoints.h"

namespace sluice::storage {

struct WriterOptions {
    std::string slot_name = "sluice";  // replication_state row this writer advances
    std::size_t flush_ops = 20000;     // flush into the open transaction after this many ops
    std::int64_t rules_version = 1;    // the version whose rows, lookups and checkpoints it keeps
};

struct CommittedCheckpoint {
    std::int64_t op_id = 0;     // highest op_id visible at this checkpoint
    protocol::Lsn lsn;          // source LSN every change up to which is now durable
    std::size_t ops_written = 0;
};

// The replication progress kept with the op log (one row per slot).
struct ReplicationProgress {
    bool snapshot_done = false;
    protocol::Lsn durable_lsn;    // every change up to here is stored
    protocol::Lsn visible_from;   // checkpoints before this LSN are not shown to clients
};

// How far the initial copy of one table got (saved with each chunk, so a crash resumes there).
struct TableSnapshotProgress {
    std::string last_key;  // ordering key of the last row copied, as replication::copy_chunk gives it; "" before the first
    std::int64_t rows_done = 0;
    bool done = false;
};

enum class Visibility {
    kVisible,  // a checkpoint clients may see (once past visible_from)
    kHidden,   // a snapshot chunk: durable, but no checkpoint and no durable LSN yet
};

class BucketWriter {
public:
    [[nodiscard]] static protocol::Result<std::unique_ptr<BucketWriter>> open(const std::string& conninfo,
                                                                             WriterOptions options = {});
    ~BucketWriter();
    BucketWriter(const BucketWriter&) = delete;
    BucketWriter& operator=(const BucketWriter&) = delete;

    // Loads the stored state of these rows with one query (rows already known are skipped). Rows
    // in `absent` are known not to be stored, and are not looked up: the caller proves it (see
    // app/replicator.cpp, rows the source inserted while storage was in step with it).
    [[nodiscard]] protocol::Status prefetch(std::span<const core::RowKey> rows,
                                            std::span<const core::RowKey> absent = {});
    // The stored column values of a row as of the changes applied so far; nullopt when absent.
    [[nodiscard]] protocol::Result<std::optional<std::string>> stored_row(const core::RowKey& row);
    [[nodiscard]] protocol::Status apply(const core::EvaluatedChange& change);
    // Removes every stored row of `table` (REMOVE ops for all their placements).
    [[nodiscard]] protocol::Status truncate(const std::string& table);
    // A write checkpoint that a source transaction of the batch issued (see write_checkpoints.h);
    // the batch's commit() records it, delivered with the checkpoint it commits.
    void add_write_checkpoint(WriteCheckpoint checkpoint);
    // Flushes, records a checkpoint at `lsn` (if ops were written) and the durable LSN, commits and
    // notifies listeners (NOTIFY sluice_checkpoint). On failure nothing of the batch is kept.
    [[nodiscard]] protocol::Result<CommittedCheckpoint> commit(protocol::Lsn lsn,
                                                               Visibility visibility = Visibility::kVisible);

    // Snapshot bookkeeping; written in the open batch, so it commits with the chunk it describes.
    [[nodiscard]] protocol::Result<ReplicationProgress> progress();
    [[nodiscard]] protocol::Result<TableSnapshotProgress> table_progress(const std::string& table);
    [[nodiscard]] protocol::Status record_table_progress(const std::string& table, const TableSnapshotProgress& p,
                                                         std::int64_t rows_estimated);
    // Tables with stored rows.
    [[nodiscard]] protocol::Result<std::vector<std::string>> stored_tables();
    // Forgets snapshot progress and marks the snapshot not done (the slot is gone: snapshot again).
    [[nodiscard]] protocol::Status reset_snapshot();
    // Marks the snapshot done; checkpoints become visible once the stream reaches `visible_from`.
    [[nodiscard]] protocol::Status finish_snapshot(protocol::Lsn durable, protocol::Lsn visible_from);
    // Drops the open batch (after an error upstream).
    void rollback();

    // Makes this writer's rules version the active one, in one storage transaction with a checkpoint
    // at `lsn` (the durable LSN, between batches): the previously active version becomes 'retired',
    // and the checkpoint's op_id is above every op and checkpoint of any version, so the clients'
    // checkpoint ids keep growing across the switch. Returns that checkpoint.
    [[nodiscard]] protocol::Result<CommittedCheckpoint> activate(protocol::Lsn lsn);

    [[nodiscard]] std::int64_t last_op_id() const;
    [[nodiscard]] protocol::Lsn durable_lsn() const;
    // Storage is in step with the source from this LSN on (past a resumed snapshot's end).
    [[nodiscard]] protocol::Lsn visible_from() const;

    struct Impl;

private:
    explicit BucketWriter(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> m_impl;
};

// Subkey of a source row's ops: distinguishes rows of different tables with the same output id.
[[nodiscard]] std::string subkey_of(const core::RowKey& row);

}  // namespace sluice::storage
