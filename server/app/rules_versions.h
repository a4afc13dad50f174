// RulesVersions: which sync-rules version the replicator runs, and the switch to changed rules
// without a pause for clients (issue 4, "New rules version").
//
// Design
// ------
// Every rules text Sluice has run is a row of sluice.rules_versions (migrations/0002): version N
// has bucket ids prefixed "N#", its own replication slot ("<source.slot>_vN"; version 1 uses
// source.slot) and, when Sluice manages the publication, its own publication ("<name>_vN"), and
// its rows, lookup entries and checkpoints are stored under N. Exactly one version is 'active':
// clients are served from it.
//
//   start (or SIGHUP) with rules text T:
//     no version recorded     -> record T as version 1, active (the first start; storage written
//                                before migration 0002 is version 1's)
//     active's text == T      -> run it; a leftover build of other rules is abandoned
//     a build of T exists     -> run the active version and resume that build
//     otherwise               -> abandon any other build; record T as version max+1, 'building'
//   building: a second Replicator (own thread, own slot, own snapshot) fills the new version's
//     buckets while the active version's Replicator carries on replicating and clients are served.
//   caught up: the build's snapshot is done and its stream has committed past a marker written
//     when it ended. Then, on the build's thread, between two of its storage commits: stop the
//     active Replicator (it commits or drops its batch) and call BucketWriter::activate: one storage
//     transaction makes the new version 'active' and the old one 'retired', with a checkpoint S above
//     every op id written so far. The build's Replicator carries on as the active one.
//   serving, in every process (server/sync/rules_source.h): the checkpoint listener reports S with
//     the new rules text; sessions resolve checkpoints >= S with the new rules, so their next
//     checkpoint_diff removes the old buckets and adds the new ones (clients download the new
//     buckets; rows in both keep their data).
//   cleanup: after a grace period (sessions finishing a checkpoint of the old version), drop the
//     retired version's slot and publication, delete its storage (storage::remove_rules_version_
//     storage), set cleaned_at. Abandoned builds are cleaned up the same way, at once.
//
// Crash safety: each step ends in a committed state the next start resumes from. A crash during the
// build resumes it (the Replicator resumes a snapshot from storage, hidden until it has converged);
// before the activation commit the old version is still active and simply runs again; after it, the
// next start finds the retired, uncleaned version and cleans it up.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "protocol/status.h"
#include "server/app/replicator.h"
#include "server/storage/checkpoint_listener.h"
#include "server/storage/rules_versions.h"
#include "server/sync/checkpoint_hub.h"
#include "server/sync/rules_source.h"

namespace sluice::app {

class ReplicatorThread;

struct RulesVersionsConfig {
    // Source, storage and tuning for every version's Replicator; slot and publication are the base
    // names (version 1's); rules, rules_version and on_caught_up are filled per version.
    ReplicatorConfig replicator;
    // How long a retired version's storage stays after the switch, for sessions still finishing a
    // checkpoint of it.
    std::chrono::milliseconds cleanup_grace{std::chrono::seconds(30)};
};

class RulesVersions {
public:
    // Records the versions as above and starts replication (and a build when `rules_text` differs
    // from the active version). `rules_file` names the text in diagnostics.
    [[nodiscard]] static protocol::Result<std::unique_ptr<RulesVersions>> start(RulesVersionsConfig config,
                                                                             const std::string& rules_text,
                                                                             const std::string& rules_file);
    ~RulesVersions();  // stops every thread (a batch in progress is committed or dropped)
    RulesVersions(const RulesVersions&) = delete;
    RulesVersions& operator=(const RulesVersions&) = delete;

    // SIGHUP: the rules file changed (already checked to compile). Starts, keeps or abandons a build.
    [[nodiscard]] protocol::Status reload(const std::string& rules_text, const std::string& rules_file);

    // The version clients are served from (it changes when a build switches).
    [[nodiscard]] std::int64_t active_version() const;
    // The version being built; 0 when none.
    [[nodiscard]] std::int64_t building_version() const;
    // Counters of every version's replicator (durable_lsn: the active version's).
    [[nodiscard]] const ReplicatorStats& stats() const { return *m_stats; }

private:
    struct Cleanup {
        storage::StoredRulesVersion version;
        std::chrono::steady_clock::time_point due;
    };

    explicit RulesVersions(RulesVersionsConfig config);

    protocol::Status decide(const std::string& rules_text, const std::string& rules_file);
    protocol::Result<ReplicatorConfig> replicator_config(const storage::StoredRulesVersion& version,
                                                         const std::string& rules_file) const;
    protocol::Status on_caught_up(std::int64_t version, storage::BucketWriter& writer, protocol::Lsn durable);
    void schedule_cleanup(storage::StoredRulesVersion version, std::chrono::steady_clock::time_point due);
    void cleanup_loop();
    protocol::Status clean(const storage::StoredRulesVersion& version);
    storage::StoredRulesVersion next_version(std::int64_t id, const std::string& text) const;

    RulesVersionsConfig m_config;
    std::shared_ptr<ReplicatorStats> m_stats = std::make_shared<ReplicatorStats>();
    mutable std::mutex m_mutex;  // guards everything below; taken by the owner, the build's replication thread
                                 // (at the switch) and the cleanup thread
    std::condition_variable m_wake;  // wakes the cleanup thread
    bool m_stopping = false;
    storage::StoredRulesVersion m_active;
    storage::StoredRulesVersion m_building;  // id 0: none
    std::unique_ptr<ReplicatorThread> m_active_thread;
    std::unique_ptr<ReplicatorThread> m_building_thread;
    std::vector<Cleanup> m_cleanups;
    std::int64_t m_highest_id = 0;  // the highest version id recorded
    std::thread m_cleanup_thread;
};

// The serving side, for the checkpoint listener of every serving process: a newly active version's
// rules (compiled from the text storage records) go into `rules` before any of its checkpoints go to
// `hub`; `fallback` serves when storage records no version.
[[nodiscard]] storage::CheckpointListener::Callback serve_active_version(
    std::shared_ptr<sync::RulesSource> rules, std::shared_ptr<sync::CheckpointHub> hub,
    std::shared_ptr<const config::rules::RuleSet> fallback);

}  // namespace sluice::app
