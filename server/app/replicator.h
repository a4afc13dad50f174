// Replicator: the download path wired together. Sets up the publication and slot, copies every table
// the rules use (the initial snapshot: chunked, resumable, hidden from clients until it has converged
// with the stream), then streams source transactions through the router into bucket storage, batching
// several small transactions per storage commit and confirming an LSN only after that commit.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "config/rules/rule_set.h"
#include "config/sluice_config.h"
#include "protocol/lsn.h"
#include "protocol/status.h"

namespace sluice::storage {
class BucketWriter;
}

namespace sluice::app {

struct ReplicatorStats;

struct ReplicatorConfig {
    std::string source_conninfo;
    std::string storage_conninfo;
    std::string slot = "sluice";
    std::string publication = "sluice";
    config::PublicationMode publication_mode = config::PublicationMode::kManaged;
    std::shared_ptr<const config::rules::RuleSet> rules;  // compiled with the version's bucket-id prefix
    std::int64_t rules_version = 1;                       // whose storage rows it writes
    // Set while the version is being built (server/app/rules_versions.h): called on the replication
    // thread, between storage commits, once the snapshot is done and the stream has committed past a
    // marker written when it ended (the version has caught up). It switches the version to active
    // (BucketWriter::activate) and returns an error to end this run (the next run calls it again).
    std::function<protocol::Status(storage::BucketWriter& writer, protocol::Lsn durable)> on_caught_up;
    // Counters to add to (shared by the replicators of several rules versions); null: its own.
    std::shared_ptr<ReplicatorStats> stats;
    std::size_t snapshot_chunk_rows = 10000;
    std::size_t batch_changes = 20000;  // source changes per storage commit at most (whole transactions)
    std::size_t max_chunk_changes = 10000;  // larger source transactions are handed on in chunks
    // While no published change arrives, write a logical message this often so the slot (and the
    // WAL it retains) advances even when only unpublished tables are busy.
    std::chrono::seconds heartbeat_interval{60};
};

struct ReplicatorStats {
    std::atomic<std::uint64_t> snapshot_rows{0};
    std::atomic<std::uint64_t> transactions{0};
    std::atomic<std::uint64_t> changes{0};
    std::atomic<std::uint64_t> ops{0};
    std::atomic<std::uint64_t> checkpoints{0};  // storage commits that made a new checkpoint
    std::atomic<std::uint64_t> durable_lsn{0};
};

class Replicator {
public:
    explicit Replicator(ReplicatorConfig config);

    // Snapshot (when not done) then streaming, on the calling thread, until `stop` becomes true or an
    // error occurs. Safe to call again after an error: it resumes from what storage holds.
    [[nodiscard]] protocol::Status run(const std::atomic<bool>& stop);

    [[nodiscard]] const ReplicatorStats& stats() const { return m_stats; }

private:
    ReplicatorConfig m_config;
    std::shared_ptr<ReplicatorStats> m_stats_owner;
    ReplicatorStats& m_stats;  // *m_stats_owner
};

}  // namespace sluice::app
