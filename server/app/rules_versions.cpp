// Sync-rules versions: build in the background, switch, clean up (see rules_versions.h).
#include "server/app/rules_versions.h"

#include <algorithm>

#include <fmt/format.h>

#include "server/core/log.h"
#include "server/replication/pg_connection.h"
#include "server/replication/replication_setup.h"
#include "server/replication/wal_stream.h"
#include "server/storage/bucket_writer.h"
#include "server/storage/database.h"

namespace sluice::app {

using protocol::ErrorCode;
using protocol::Status;
using storage::StoredRulesVersion;
using storage::VersionState;

namespace {

const core::Logger kLog("rules");

constexpr std::size_t kMaxSlotName = 63;

std::string versioned_name(const std::string& base, std::int64_t id) {
    if (id == 1) {
        return base;
    }
    const auto suffix = fmt::format("_v{}", id);
    return base.substr(0, kMaxSlotName - suffix.size()) + suffix;
}

}  // namespace

// Runs one version's Replicator until destroyed, restarting it with backoff after errors (a lost
// connection, a Postgres restart): every run resumes from what storage holds.
class ReplicatorThread {
public:
    explicit ReplicatorThread(ReplicatorConfig config) : m_replicator(std::move(config)) {
        m_thread = std::thread([this] { loop(); });
    }
    ~ReplicatorThread() {
        {
            std::lock_guard lock(m_mutex);
            m_stop = true;
        }
        m_wake.notify_all();
        m_thread.join();
    }
    ReplicatorThread(const ReplicatorThread&) = delete;
    ReplicatorThread& operator=(const ReplicatorThread&) = delete;

private:
    void loop() {
        auto backoff = std::chrono::milliseconds(500);
        while (!m_stop.load()) {
            auto status = m_replicator.run(m_stop);
            if (m_stop.load()) {
                return;
            }
            kLog.error("replication stopped: {}; restarting in {} ms", status.to_string(), backoff.count());
            std::unique_lock lock(m_mutex);
            m_wake.wait_for(lock, backoff, [this] { return m_stop.load(); });
            backoff = std::min(backoff * 2, std::chrono::milliseconds(30'000));
        }
    }

    Replicator m_replicator;
    std::atomic<bool> m_stop{false};  // set by the owner's thread, read by the replicator thread
    std::mutex m_mutex;               // with m_wake: interrupts the backoff wait
    std::condition_variable m_wake;
    std::thread m_thread;
};

RulesVersions::RulesVersions(RulesVersionsConfig config) : m_config(std::move(config)) {}

protocol::Result<std::unique_ptr<RulesVersions>> RulesVersions::start(RulesVersionsConfig config,
                                                                      const std::string& rules_text,
                                                                      const std::string& rules_file) {
    std::unique_ptr<RulesVersions> versions(new RulesVersions(std::move(config)));
    if (auto status = versions->decide(rules_text, rules_file); !status) {
        return status;
    }
    versions->m_cleanup_thread = std::thread([v = versions.get()] { v->cleanup_loop(); });
    return versions;
}

RulesVersions::~RulesVersions() {
    std::unique_ptr<ReplicatorThread> building;
    std::unique_ptr<ReplicatorThread> active;
    {
        std::lock_guard lock(m_mutex);
        m_stopping = true;
        building = std::move(m_building_thread);
        active = std::move(m_active_thread);
    }
    m_wake.notify_all();
    building.reset();  // joins outside the lock: a switch in progress takes it
    active.reset();
    {
        std::lock_guard lock(m_mutex);
        active = std::move(m_active_thread);  // a switch that finished meanwhile moved the build here
    }
    active.reset();
    if (m_cleanup_thread.joinable()) {
        m_cleanup_thread.join();
    }
}

StoredRulesVersion RulesVersions::next_version(std::int64_t id, const std::string& text) const {
    const auto& base = m_config.replicator;
    StoredRulesVersion v;
    v.id = id;
    v.content = text;
    v.state = id == 1 ? VersionState::kActive : VersionState::kBuilding;
    v.slot_name = versioned_name(base.slot, id);
    v.publication = base.publication_mode == config::PublicationMode::kManaged ? versioned_name(base.publication, id)
                                                                               : base.publication;
    return v;
}

protocol::Result<ReplicatorConfig> RulesVersions::replicator_config(const StoredRulesVersion& version,
                                                                    const std::string& rules_file) const {
    auto compiled = config::rules::RuleSet::compile(version.content, rules_file,
                                                    {fmt::format("{}#", version.id)});
    if (!compiled.rules) {
        std::string errors;
        for (const auto& d : compiled.diagnostics) {
            errors += "\n  " + d.to_string();
        }
        return Status(ErrorCode::kRulesSyntax,
                      fmt::format("rules version {} does not compile; fix the rules file:{}", version.id, errors));
    }
    ReplicatorConfig rc = m_config.replicator;
    rc.rules = compiled.rules;
    rc.rules_version = version.id;
    rc.slot = version.slot_name;
    rc.publication = version.publication.empty() ? rc.publication : version.publication;
    rc.on_caught_up = nullptr;
    rc.stats = m_stats;
    return rc;
}

// Called with no thread running (start) or with the build stopped (reload), under no lock.
Status RulesVersions::decide(const std::string& rules_text, const std::string& rules_file) {
    auto connection = storage::connect_storage(m_config.replicator.storage_conninfo, storage::CreateDatabase::kNo);
    if (!connection) {
        return connection.status();
    }
    auto listed = storage::list_rules_versions(*connection.value());
    if (!listed) {
        return listed.status();
    }
    const auto& all = listed.value();
    std::optional<StoredRulesVersion> active;
    std::optional<StoredRulesVersion> building;
    std::int64_t highest = 0;
    for (const auto& v : all) {
        highest = std::max(highest, v.id);
        if (v.state == VersionState::kActive) {
            active = v;
        } else if (v.state == VersionState::kBuilding) {
            building = v;
        } else if (!v.cleaned) {
            schedule_cleanup(v, std::chrono::steady_clock::now());  // retired before a crash or restart
        }
    }
    if (!active) {
        auto first = next_version(highest + 1, rules_text);
        first.state = VersionState::kActive;
        if (auto status = storage::add_rules_version(*connection.value(), first); !status) {
            return status;
        }
        kLog.info("rules version {} recorded and active (slot {})", first.id, first.slot_name);
        active = first;
        highest = first.id;
    }
    if (building && building->content != rules_text) {
        kLog.info("rules version {} is abandoned before it was finished: the rules changed again", building->id);
        if (auto status = storage::retire_rules_version(*connection.value(), building->id); !status) {
            return status;
        }
        building->state = VersionState::kRetired;
        schedule_cleanup(*building, std::chrono::steady_clock::now());
        building.reset();
    }
    if (!building && active->content != rules_text) {
        building = next_version(highest + 1, rules_text);
        if (auto status = storage::add_rules_version(*connection.value(), *building); !status) {
            return status;
        }
        highest = building->id;
        kLog.info("the rules differ from active version {}: building version {} in the background (slot {})",
                  active->id, building->id, building->slot_name);
    } else if (building) {
        kLog.info("resuming the build of rules version {} (slot {})", building->id, building->slot_name);
    }

    std::unique_ptr<ReplicatorThread> start_active;
    std::unique_ptr<ReplicatorThread> start_building;
    {
        std::lock_guard lock(m_mutex);
        if (m_active.id > active->id) {
            return Status::ok();  // a build switched while this read storage: the state here is newer
        }
        if (!m_active_thread || m_active.id != active->id) {
            auto rc = replicator_config(*active, "sluice.rules_versions (active version)");
            if (!rc) {
                return rc.status();
            }
            start_active = std::make_unique<ReplicatorThread>(std::move(rc).value());
        }
        if (building && (!m_building_thread || m_building.id != building->id)) {
            auto rc = replicator_config(*building, rules_file);
            if (!rc) {
                return rc.status();
            }
            rc->on_caught_up = [this, id = building->id](storage::BucketWriter& writer, protocol::Lsn durable) {
                return on_caught_up(id, writer, durable);
            };
            start_building = std::make_unique<ReplicatorThread>(std::move(rc).value());
        }
        m_highest_id = highest;
        m_active = *active;
        if (start_active) {
            m_active_thread = std::move(start_active);
        }
        m_building = building.value_or(StoredRulesVersion{});
        if (start_building) {
            m_building_thread = std::move(start_building);
        }
    }
    return Status::ok();
}

Status RulesVersions::reload(const std::string& rules_text, const std::string& rules_file) {
    std::unique_ptr<ReplicatorThread> stopped;
    {
        std::lock_guard lock(m_mutex);
        if (m_building.id != 0 && m_building.content != rules_text) {
            stopped = std::move(m_building_thread);  // abandoned: decide() retires it
        }
    }
    stopped.reset();
    return decide(rules_text, rules_file);
}

Status RulesVersions::on_caught_up(std::int64_t version, storage::BucketWriter& writer, protocol::Lsn durable) {
    std::unique_ptr<ReplicatorThread> old_thread;
    StoredRulesVersion old;
    {
        std::lock_guard lock(m_mutex);
        if (m_active.id == version) {
            return Status::ok();  // already switched (this is a later run of the same Replicator)
        }
        if (m_stopping || m_building.id != version) {
            return {ErrorCode::kInternal, fmt::format("rules version {} is no longer being built", version)};
        }
        old_thread = std::move(m_active_thread);
        old = m_active;
    }
    kLog.info("rules version {} has caught up at {}: stopping version {} and switching", version, durable.to_string(),
              old.id);
    old_thread.reset();  // its batch in progress is committed or dropped; nothing of it is written after this
    auto activated = writer.activate(durable);
    std::lock_guard lock(m_mutex);
    if (!activated) {
        // Still the old version's storage is active: it replicates again, and the switch is retried.
        if (!m_stopping) {
            auto rc = replicator_config(old, "sluice.rules_versions (active version)");
            if (rc) {
                m_active_thread = std::make_unique<ReplicatorThread>(std::move(rc).value());
            }
        }
        return activated.status();
    }
    kLog.info("rules version {} is active from checkpoint {}; version {} is retired", version, activated->op_id,
              old.id);
    old.state = VersionState::kRetired;
    m_active = m_building;
    m_active.state = VersionState::kActive;
    m_building = StoredRulesVersion{};
    m_active_thread = std::move(m_building_thread);  // this very thread: moved, not destroyed
    m_cleanups.push_back({old, std::chrono::steady_clock::now() + m_config.cleanup_grace});
    m_wake.notify_all();
    return Status::ok();
}

void RulesVersions::schedule_cleanup(StoredRulesVersion version, std::chrono::steady_clock::time_point due) {
    std::lock_guard lock(m_mutex);
    m_cleanups.push_back({std::move(version), due});
    m_wake.notify_all();
}

void RulesVersions::cleanup_loop() {
    std::unique_lock lock(m_mutex);
    while (!m_stopping) {
        if (m_cleanups.empty()) {
            m_wake.wait(lock);
            continue;
        }
        auto next = std::min_element(m_cleanups.begin(), m_cleanups.end(),
                                     [](const Cleanup& a, const Cleanup& b) { return a.due < b.due; });
        if (next->due > std::chrono::steady_clock::now()) {
            m_wake.wait_until(lock, next->due);
            continue;
        }
        auto job = *next;
        m_cleanups.erase(next);
        lock.unlock();
        auto status = clean(job.version);
        lock.lock();
        if (!status) {
            kLog.warn("cleaning up rules version {} failed: {}; retrying in 30 s", job.version.id, status.to_string());
            m_cleanups.push_back({job.version, std::chrono::steady_clock::now() + std::chrono::seconds(30)});
        }
    }
}

Status RulesVersions::clean(const StoredRulesVersion& version) {
    const auto& base = m_config.replicator;
    auto source = replication::PgConnection::open(base.source_conninfo, replication::ConnectionKind::kRegular, 10);
    if (!source) {
        return source.status();
    }
    // The slot first: it holds WAL on the source. The walsender of a Replicator that just stopped may
    // hold it for a moment: wait a little for that, else the drop fails and is retried later.
    const auto slot = replication::quote_literal(version.slot_name);
    for (int i = 0; i < 40; ++i) {
        auto in_use = source.value().query("SELECT active FROM pg_replication_slots WHERE slot_name = " + slot);
        if (!in_use) {
            return in_use.status();
        }
        if (in_use.value().empty() || in_use.value()[0][0].value_or("f") != "t") {
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    auto dropped = source.value().query("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE "
                                        "slot_name = " + slot);
    if (!dropped) {
        return dropped.status();
    }
    std::string active_publication;
    {
        std::lock_guard lock(m_mutex);
        active_publication = m_active.publication;
    }
    if (base.publication_mode == config::PublicationMode::kManaged && !version.publication.empty() &&
        version.publication != active_publication) {
        auto pub = source.value().query("DROP PUBLICATION IF EXISTS " + replication::quote_identifier(version.publication));
        if (!pub) {
            return pub.status();
        }
    }
    auto connection = storage::connect_storage(base.storage_conninfo, storage::CreateDatabase::kNo);
    if (!connection) {
        return connection.status();
    }
    auto removed = storage::remove_rules_version_storage(*connection.value(), version);
    if (!removed) {
        return removed.status();
    }
    kLog.info("rules version {} cleaned up: slot {} dropped, {} storage row(s) deleted", version.id,
              version.slot_name, removed.value());
    return Status::ok();
}

storage::CheckpointListener::Callback serve_active_version(std::shared_ptr<sync::RulesSource> rules,
                                                           std::shared_ptr<sync::CheckpointHub> hub,
                                                           std::shared_ptr<const config::rules::RuleSet> fallback) {
    return [rules = std::move(rules), hub = std::move(hub),
            fallback = std::move(fallback)](const storage::ActiveCheckpoint& checkpoint) {
        if (checkpoint.rules_content) {
            auto compiled = config::rules::RuleSet::compile(
                *checkpoint.rules_content, fmt::format("sluice.rules_versions (version {})", checkpoint.rules_version),
                {fmt::format("{}#", checkpoint.rules_version)});
            if (!compiled.rules) {
                kLog.error("the active rules version {} does not compile; still serving the previous one",
                           checkpoint.rules_version);
                return;
            }
            kLog.info("serving rules version {} from checkpoint {}", checkpoint.rules_version,
                      checkpoint.rules_from_op_id);
            rules->activate({checkpoint.rules_version, checkpoint.rules_from_op_id, compiled.rules});
        } else if (rules->empty() && fallback) {
            rules->activate({1, 0, fallback});
        }
        if (checkpoint.op_id > 0) {
            hub->publish(checkpoint.op_id);
        }
    };
}

std::int64_t RulesVersions::active_version() const {
    std::lock_guard lock(m_mutex);
    return m_active.id;
}

std::int64_t RulesVersions::building_version() const {
    std::lock_guard lock(m_mutex);
    return m_building.id;
}

}  // namespace sluice::app
