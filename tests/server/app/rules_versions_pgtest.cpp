// Rules-version switching against a real Postgres (server/app/rules_versions.h): the rules change
// while a random workload keeps writing; the new version is built beside the old one, switched to,
// and the old one cleaned up. A client session following along moves from the old bucket ids to the
// new ones without losing rows, and the new version's storage equals a fresh build of its rules.
#include <atomic>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>
#include <pqxx/pqxx>

#include "migrations/migrations.h"
#include "protocol/wire/client_state.h"
#include "server/app/rules_versions.h"
#include "server/storage/bucket_reader.h"
#include "server/storage/compactor.h"
#include "server/storage/migrator.h"
#include "server/sync/sync_session.h"
#include "tests/support/demo_oracle.h"
#include "tests/support/pg.h"
#include "tests/support/storage_compare.h"

namespace {

using sluice::app::RulesVersions;
using sluice::app::RulesVersionsConfig;

// The demo rules with the same visible rows, in other buckets: owned and shared lists apart.
constexpr const char* kSplitRules = R"(bucket_definitions:
  owned_lists:
    parameters: SELECT id AS list_id FROM lists WHERE lists.owner_id = request.user_id()
    data:
      - SELECT * FROM lists WHERE lists.id = bucket.list_id
      - SELECT * FROM todos WHERE todos.list_id = bucket.list_id
  shared_lists:
    parameters: SELECT list_id FROM list_shares WHERE list_shares.user_id = request.user_id()
    data:
      - SELECT * FROM lists WHERE lists.id = bucket.list_id
      - SELECT * FROM todos WHERE todos.list_id = bucket.list_id
  own_profile:
    parameters: SELECT request.user_id() AS user_id
    data:
      - SELECT id, name FROM users WHERE users.id = bucket.user_id
)";

std::string demo_rules_text() {
    std::string path = SLUICE_SOURCE_DIR;
    path.append("/deploy/demo/sync-rules.yaml");
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

std::string migrated(const std::string& name) {
    const auto uri = sluice::test::fresh_database(name);
    pqxx::connection c(uri);
    REQUIRE(sluice::storage::migrate(c, sluice::migrations::embedded()).is_ok());
    return uri;
}

RulesVersionsConfig versions_config(const std::string& source, const std::string& storage, const std::string& name) {
    RulesVersionsConfig config;
    auto& rc = config.replicator;
    rc.source_conninfo = source;
    rc.storage_conninfo = storage;
    rc.slot = name + "_slot";
    rc.publication = name + "_pub";
    rc.snapshot_chunk_rows = 2;  // many chunks: writes land while the new version's snapshot runs
    rc.max_chunk_changes = 5;
    config.cleanup_grace = std::chrono::seconds(10);  // far longer than the test client needs to finish a checkpoint
    return config;
}

bool query_true(const std::string& uri, const std::string& sql) {
    pqxx::connection c(uri);
    pqxx::nontransaction tx(c);
    auto r = tx.exec(sql);
    return !r.empty() && !r[0][0].is_null() && r[0][0].as<bool>();
}

// Polls (deadline: two minutes) until `sql` is true.
bool query_true_within(const std::string& uri, const std::string& sql) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (std::chrono::steady_clock::now() < deadline) {
        if (query_true(uri, sql)) {
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling a condition, with a deadline
    }
    return false;
}

// One user's client: a SyncSession on real storage, its lines applied to the client model.
struct Client {
    std::shared_ptr<sluice::sync::RulesSource> rules;
    std::shared_ptr<sluice::sync::CheckpointHub> hub;
    std::unique_ptr<sluice::sync::SyncSession> session;
    std::unique_ptr<sluice::sync::SyncStorage> storage;
    sluice::protocol::wire::ClientState state;
    std::uint64_t applied = 0;
    int applied_count = 0;
    bool lost_profile = false;  // the user's own profile row, in both versions' buckets, went missing

    Client(std::shared_ptr<sluice::sync::RulesSource> r, std::shared_ptr<sluice::sync::CheckpointHub> h,
           const std::string& storage_uri, const std::string& user)
        : rules(std::move(r)), hub(std::move(h)) {
        sluice::auth::VerifiedToken token{user, R"({"sub":")" + user + R"("})", 4'000'000'000};
        auto created = sluice::sync::SyncSession::create(rules, token, {}, {}, 0);
        REQUIRE(created);
        session = std::move(created).value();
        auto reader = sluice::storage::BucketReader::open(storage_uri);
        REQUIRE(reader);
        storage = std::make_unique<sluice::sync::ReaderStorage>(std::move(reader).value());
    }

    // Produces and applies every line up to the hub's latest checkpoint.
    void pump() {
        const auto latest = hub->latest();
        std::vector<std::string> out;
        while (session->has_work(latest)) {
            out.clear();
            auto status = session->step(*storage, latest, out);
            INFO(status.to_string());
            REQUIRE(status.is_ok());
            for (const auto& line : out) {
                auto applied_line = state.apply_line(line);
                INFO(line << ": " << applied_line.to_string());
                REQUIRE(applied_line.is_ok());
                if (state.applied_checkpoint() && *state.applied_checkpoint() != applied) {
                    applied = *state.applied_checkpoint();
                    ++applied_count;
                    lost_profile = lost_profile || (applied_count > 1 && !state.row("users", session->user_id()));
                }
            }
        }
    }

    // Every bucket the client holds has this prefix.
    bool all_buckets(const std::string& prefix) const {
        if (state.buckets().empty()) {
            return false;
        }
        for (const auto& [name, bucket] : state.buckets()) {
            if (!name.starts_with(prefix)) {
                return false;
            }
        }
        return !state.checkpoint_pending();
    }
};

// Pumps the client until `done` holds (deadline: two minutes).
template <typename F>
bool pump_until(Client& client, F done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (std::chrono::steady_clock::now() < deadline) {
        client.pump();
        if (done()) {
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polling a condition, with a deadline
    }
    return false;
}

}  // namespace

TEST_CASE("a rules version switch while writes continue: clients move to the new buckets, the new version equals "
          "a fresh build, the old one is cleaned up") {
    const std::string name = "rv_switch";
    const auto source = sluice::test::fresh_database(name + "_source");
    const auto storage = migrated(name + "_storage");
    sluice::test::create_demo_schema(source);
    sluice::test::DemoWorkload workload(source, 21);
    workload.run(60);
    // Enough rows that the new version's snapshot takes many chunks, with writes landing meanwhile.
    sluice::test::exec_sql(source, "INSERT INTO lists VALUES ('big1', 'u1', 'big one'), ('big2', 'u2', 'big two'); "
                                   "INSERT INTO list_shares VALUES ('big2', 'u1'); "
                                   "INSERT INTO todos (id, list_id, description) "
                                   "SELECT 'bulk' || g, 'big' || (1 + g % 2), 'item ' || g "
                                   "FROM generate_series(1, 600) g");

    auto started = RulesVersions::start(versions_config(source, storage, name), demo_rules_text(), "demo.yaml");
    INFO(started.status().to_string());
    REQUIRE(started);
    auto versions = std::move(started).value();
    CHECK(versions->active_version() == 1);
    CHECK(versions->building_version() == 0);

    // Serving, as `sluice run` wires it.
    auto rules = std::make_shared<sluice::sync::RulesSource>();
    auto hub = std::make_shared<sluice::sync::CheckpointHub>();
    sluice::storage::CheckpointListener listener(storage, sluice::app::serve_active_version(rules, hub, nullptr),
                                                 std::chrono::milliseconds(200));
    Client client(rules, hub, storage, "u1");
    REQUIRE(pump_until(client, [&] { return client.all_buckets("1#"); }));

    // Writes continue through the build, the switch and the cleanup.
    std::atomic<bool> stop_writes{false};
    std::atomic<int> writes{0};
    std::thread writer([&] {
        sluice::test::DemoWorkload w(source, 22);
        pqxx::connection c(source);
        std::mt19937 random(23);
        while (!stop_writes.load()) {
            w.run(2);
            // Bulk rows move between the big lists (and so between buckets of both versions), and
            // the share of big2 comes and goes.
            const auto id = std::uniform_int_distribution<int>(1, 600)(random);
            pqxx::work tx(c);
            tx.exec_params0("UPDATE todos SET list_id = CASE list_id WHEN 'big1' THEN 'big2' ELSE 'big1' END, "
                            "description = description || '.' WHERE id = $1",
                            "bulk" + std::to_string(id));
            if (id % 10 == 0) {
                tx.exec0(id % 20 == 0 ? "DELETE FROM list_shares WHERE list_id = 'big2' AND user_id = 'u1'"
                                      : "INSERT INTO list_shares VALUES ('big2', 'u1') ON CONFLICT DO NOTHING");
            }
            tx.commit();
            ++writes;
        }
    });
    const int writes_before_build = writes.load();
    auto reloaded = versions->reload(kSplitRules, "split.yaml");
    INFO(reloaded.to_string());
    REQUIRE(reloaded.is_ok());
    CHECK(versions->building_version() == 2);
    CHECK(versions->active_version() == 1);
    REQUIRE(pump_until(client, [&] { return versions->active_version() == 2; }));
    CHECK(writes.load() > writes_before_build);
    // The client's next checkpoints drop the old buckets and bring the new ones.
    REQUIRE(pump_until(client, [&] { return client.all_buckets("2#"); }));
    CHECK(client.state.bucket_requests().size() >= 2);
    stop_writes = true;
    writer.join();

    workload.insert_user("marker");
    REQUIRE(sluice::test::wait_for_marker(storage, "marker", 120, "2#own_profile"));
    // The checkpoint with the marker, from storage: the hub may not have heard of it yet (the
    // listener's notification can lag under load), and a target from it could be older.
    auto reader = sluice::storage::BucketReader::open(storage);
    REQUIRE(reader);
    auto newest = reader.value()->latest_checkpoint();
    REQUIRE(newest);
    REQUIRE(newest.value());
    const auto target = newest.value()->op_id;
    REQUIRE(pump_until(client, [&] { return client.applied >= static_cast<std::uint64_t>(target); }));
    CHECK(client.state.checksum_failures() == 0);
    CHECK_FALSE(client.lost_profile);
    CHECK(sluice::test::compare_client(client.state, source, "u1") == "");

    // Every user, from storage; then the same rules built from scratch store the same.
    auto split = sluice::config::rules::RuleSet::compile(kSplitRules, "split.yaml", {"2#"});
    REQUIRE(split.rules);
    CHECK(sluice::test::compare_every_user(*split.rules, storage, source) == "");
    const auto fresh = migrated(name + "_fresh");
    {
        auto fresh_versions =
            RulesVersions::start(versions_config(source, fresh, name + "_fresh"), kSplitRules, "split.yaml");
        REQUIRE(fresh_versions);
        REQUIRE(sluice::test::wait_for_marker(fresh, "marker", 120, "1#own_profile"));
    }
    CHECK(sluice::test::compare_storage(storage, 2, fresh, 1) == "");

    // The old version's storage, slot and publication go once the grace period is over.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (!query_true(storage, "SELECT cleaned_at IS NOT NULL FROM sluice.rules_versions WHERE id = 1") &&
           std::chrono::steady_clock::now() < deadline) {
        client.pump();
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling a condition, with a deadline
    }
    CHECK(query_true(storage,
                     "SELECT state = 'retired' AND cleaned_at IS NOT NULL FROM sluice.rules_versions WHERE id = 1"));
    CHECK(query_true(storage, "SELECT state = 'active' FROM sluice.rules_versions WHERE id = 2"));
    CHECK(query_true(storage, "SELECT NOT EXISTS (SELECT FROM sluice.ops WHERE bucket LIKE '1#%') AND "
                              "NOT EXISTS (SELECT FROM sluice.buckets WHERE bucket LIKE '1#%') AND "
                              "NOT EXISTS (SELECT FROM sluice.current_rows WHERE rules_version = 1) AND "
                              "NOT EXISTS (SELECT FROM sluice.parameter_lookups WHERE rules_version = 1) AND "
                              "NOT EXISTS (SELECT FROM sluice.checkpoints WHERE rules_version = 1) AND "
                              "NOT EXISTS (SELECT FROM sluice.replication_state WHERE rules_version = 1)"));
    CHECK(query_true(source,
                     "SELECT NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = 'rv_switch_slot')"));
    CHECK(query_true(source, "SELECT NOT EXISTS (SELECT FROM pg_publication WHERE pubname = 'rv_switch_pub')"));
    CHECK(query_true(source, "SELECT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = 'rv_switch_slot_v2')"));

    // Compacting the new version (up to its own checkpoints) keeps what every client reduces to.
    pqxx::connection c(storage);
    auto compacted = sluice::storage::compact(c);
    INFO(compacted.status().to_string());
    REQUIRE(compacted.is_ok());
    CHECK(compacted->buckets > 0);
    CHECK(compacted->moved + compacted->cleared > 0);
    CHECK(sluice::test::compare_storage(storage, 2, fresh, 1) == "");
    CHECK(sluice::test::compare_every_user(*split.rules, storage, source) == "");
    versions.reset();
    sluice::test::drop_replication_slots(source);
}

TEST_CASE("a restart during a build resumes it, rules changed again abandon it, after a switch the old version is "
          "cleaned up at start") {
    const std::string name = "rv_restart";
    const auto source = sluice::test::fresh_database(name + "_source");
    const auto storage = migrated(name + "_storage");
    sluice::test::create_demo_schema(source);
    sluice::test::DemoWorkload workload(source, 31);
    workload.run(200);
    auto config = versions_config(source, storage, name);
    config.replicator.snapshot_chunk_rows = 2;  // a slow build to stop part-way
    config.cleanup_grace = std::chrono::hours(1);  // cleanup only at the next start
    {
        auto v = RulesVersions::start(config, demo_rules_text(), "demo.yaml");
        REQUIRE(v);
        workload.insert_user("m1");
        REQUIRE(sluice::test::wait_for_marker(storage, "m1", 120, "1#own_profile"));
    }
    // A build of other rules, stopped part-way; then the rules change again: that build is abandoned.
    std::string other = kSplitRules;
    other.append("  everything_u0:\n    data:\n      - SELECT * FROM users WHERE id = 'u0'\n");
    {
        auto v = RulesVersions::start(config, other, "other.yaml");
        REQUIRE(v);
        CHECK(v.value()->building_version() == 2);
        REQUIRE(query_true_within(storage, "SELECT sum(rows_done) > 0 FROM sluice.snapshot_progress "
                                           "WHERE slot_name = 'rv_restart_slot_v2'"));
    }
    CHECK(query_true(storage, "SELECT NOT EXISTS (SELECT FROM sluice.replication_state "
                              "WHERE slot_name = 'rv_restart_slot_v2' AND snapshot_done)"));
    workload.run(30);
    {
        auto v = RulesVersions::start(config, kSplitRules, "split.yaml");
        REQUIRE(v);
        CHECK(v.value()->building_version() == 3);
        CHECK(query_true(storage, "SELECT state = 'retired' FROM sluice.rules_versions WHERE id = 2"));
        // Stopped part-way again, then resumed by the next start with the same rules.
        REQUIRE(query_true_within(storage, "SELECT sum(rows_done) > 0 FROM sluice.snapshot_progress "
                                           "WHERE slot_name = 'rv_restart_slot_v3'"));
    }
    workload.run(30);
    {
        auto v = RulesVersions::start(config, kSplitRules, "split.yaml");
        REQUIRE(v);
        CHECK(v.value()->building_version() == 3);
        REQUIRE(query_true_within(storage, "SELECT state = 'active' FROM sluice.rules_versions WHERE id = 3"));
        CHECK(v.value()->active_version() == 3);
        CHECK(query_true_within(storage, "SELECT cleaned_at IS NOT NULL FROM sluice.rules_versions WHERE id = 2"));
    }
    // Version 1 is retired but not cleaned (the grace period outlasted that run): the next start does it.
    CHECK(query_true(storage,
                     "SELECT state = 'retired' AND cleaned_at IS NULL FROM sluice.rules_versions WHERE id = 1"));
    config.cleanup_grace = std::chrono::seconds(0);
    auto v = RulesVersions::start(config, kSplitRules, "split.yaml");
    REQUIRE(v);
    CHECK(v.value()->building_version() == 0);
    REQUIRE(query_true_within(storage, "SELECT cleaned_at IS NOT NULL FROM sluice.rules_versions WHERE id = 1"));
    CHECK(query_true(storage, "SELECT NOT EXISTS (SELECT FROM sluice.ops WHERE bucket NOT LIKE '3#%')"));
    CHECK(query_true(source, "SELECT NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name IN "
                             "('rv_restart_slot', 'rv_restart_slot_v2'))"));
    workload.insert_user("m2");
    REQUIRE(sluice::test::wait_for_marker(storage, "m2", 120, "3#own_profile"));
    auto split = sluice::config::rules::RuleSet::compile(kSplitRules, "split.yaml", {"3#"});
    REQUIRE(split.rules);
    CHECK(sluice::test::compare_every_user(*split.rules, storage, source) == "");
    v.value().reset();
    sluice::test::drop_replication_slots(source);
}
