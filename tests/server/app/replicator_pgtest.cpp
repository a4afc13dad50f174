// The oracle for the download path against a real Postgres: a seeded random workload (inserts,
// updates, deletes, rows moving between buckets, grants and revokes through list_shares) runs while
// the replicator snapshots and streams, across a replicator restart; then, for every user, the rows
// a client holds (reduced from bucket storage) equal the rules' queries run directly on the source.
#include <cstdio>
#include <thread>

#include <catch2/catch.hpp>
#include <pqxx/pqxx>

#include "migrations/migrations.h"
#include "server/app/replicator.h"
#include "server/storage/migrator.h"
#include "server/upload/uploader.h"
#include "tests/support/client_view.h"
#include "tests/support/cluster.h"
#include "tests/support/demo_oracle.h"
#include "tests/support/pg.h"

namespace {

// Databases and slot named after the test case: ctest runs the cases of this file in parallel.
struct Fixture {
    std::string name;
    std::string source = sluice::test::fresh_database(name + "_source");
    std::string storage = sluice::test::fresh_database(name + "_storage");
    std::shared_ptr<const sluice::config::rules::RuleSet> rules = sluice::test::demo_rules();

    explicit Fixture(std::string case_name) : name(std::move(case_name)) {
        sluice::test::create_demo_schema(source);
        pqxx::connection c(storage);
        REQUIRE(sluice::storage::migrate(c, sluice::migrations::embedded()).is_ok());
        REQUIRE(rules);
    }

    sluice::app::ReplicatorConfig config() const {
        sluice::app::ReplicatorConfig c;
        c.source_conninfo = source;
        c.storage_conninfo = storage;
        c.slot = name + "_slot";
        c.publication = "oracle_pub";
        c.rules = rules;
        c.snapshot_chunk_rows = 4;  // many chunks, so writes land while the snapshot is running
        c.max_chunk_changes = 5;    // larger transactions arrive in several chunks
        return c;
    }
};

// Runs a replicator on its own thread until destroyed.
class Running {
public:
    explicit Running(sluice::app::ReplicatorConfig config) : m_replicator(std::move(config)) {
        m_thread = std::thread([this] {
            m_status = m_replicator.run(m_stop);
            if (!m_status) {  // the test then waits in vain: say why
                std::fprintf(stderr, "the replicator stopped with an error: %s\n", m_status.to_string().c_str());
            }
        });
    }
    ~Running() { (void)stop(); }
    sluice::protocol::Status stop() {
        if (m_thread.joinable()) {
            m_stop = true;
            m_thread.join();
        }
        return m_status;
    }

private:
    sluice::app::Replicator m_replicator;
    std::atomic<bool> m_stop{false};
    sluice::protocol::Status m_status;
    std::thread m_thread;
};

// Waits until storage has a checkpoint covering the marker user's profile (written last).
void wait_for_marker(const Fixture& f, const std::string& marker) { REQUIRE(sluice::test::wait_for_marker(f.storage, marker)); }

void check_every_user(const Fixture& f) { CHECK(sluice::test::compare_every_user(*f.rules, f.storage, f.source) == ""); }

}  // namespace

TEST_CASE("random workload during snapshot and streaming, across a restart: every user holds what the rules say") {
    for (const unsigned seed : {1U, 2U, 3U}) {
        INFO("seed " << seed);
        Fixture f("oracle_random");
        sluice::test::DemoWorkload workload(f.source, seed);
        workload.run(40);  // before the slot exists: reaches storage through the snapshot
        {
            Running replicator(f.config());
            workload.run(150);  // races the snapshot, then streams
            workload.insert_user("marker1");
            wait_for_marker(f, "marker1");
            auto status = replicator.stop();
            INFO(status.to_string());
            REQUIRE(status.is_ok());
        }
        check_every_user(f);
        workload.run(100);  // while no replicator runs: the slot keeps the WAL
        {
            Running replicator(f.config());
            workload.run(100);
            workload.insert_user("marker2");
            wait_for_marker(f, "marker2");
        }
        check_every_user(f);
    }
}

TEST_CASE("a snapshot interrupted part-way resumes and converges") {
    Fixture f("oracle_interrupted");
    sluice::test::DemoWorkload workload(f.source, 7);
    workload.run(200);
    {
        // Stop the replicator as soon as it has copied some rows: the snapshot is left half done.
        sluice::app::Replicator replicator(f.config());
        std::atomic<bool> stop{false};
        std::thread t([&] { (void)replicator.run(stop); });
        while (replicator.stats().snapshot_rows.load() < 8) {
            std::this_thread::yield();
        }
        stop = true;
        t.join();
    }
    pqxx::connection store(f.storage);
    {
        pqxx::nontransaction tx(store);
        CHECK_FALSE(tx.exec1("SELECT EXISTS (SELECT FROM sluice.checkpoints)")[0].as<bool>());
    }
    workload.run(50);
    Running replicator(f.config());
    workload.run(50);
    workload.insert_user("marker");
    wait_for_marker(f, "marker");
    check_every_user(f);
}

TEST_CASE("a heartbeat advances the durable LSN while only unpublished tables change") {
    Fixture f("heartbeat");
    sluice::test::exec_sql(f.source, "CREATE TABLE unpublished (x int)");
    auto config = f.config();
    config.heartbeat_interval = std::chrono::seconds(1);
    Running replicator(config);
    sluice::test::DemoWorkload(f.source, 1).insert_user("marker");
    wait_for_marker(f, "marker");
    sluice::test::exec_sql(f.source, "INSERT INTO unpublished SELECT generate_series(1, 1000)");
    std::string target;
    {
        pqxx::connection c(f.source);
        pqxx::nontransaction tx(c);
        target = tx.exec1("SELECT pg_current_wal_lsn()::text")[0].as<std::string>();
    }
    pqxx::connection store(f.storage);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    bool passed = false;
    while (!passed && std::chrono::steady_clock::now() < deadline) {
        pqxx::nontransaction tx(store);
        passed = tx.exec_params1("SELECT durable_lsn >= $1::pg_lsn FROM sluice.replication_state", target)[0].as<bool>();
        if (!passed) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));  // polling a condition, with a deadline
        }
    }
    CHECK(passed);
}

TEST_CASE("an invalidated slot is recreated and every table snapshotted again, without stale rows or lost write checkpoints") {
    sluice::test::ScratchCluster cluster({.port = 25464, .extra_conf = "max_slot_wal_keep_size = 1MB"});
    const auto source = sluice::test::with_database(cluster.uri(), "postgres");
    sluice::test::exec_sql(cluster.uri(), "CREATE DATABASE store");
    const auto storage = sluice::test::with_database(cluster.uri(), "store");
    sluice::test::create_demo_schema(source);
    {
        pqxx::connection c(storage);
        REQUIRE(sluice::storage::migrate(c, sluice::migrations::embedded()).is_ok());
    }
    const auto rules = sluice::test::demo_rules();
    sluice::app::ReplicatorConfig config;
    config.source_conninfo = source;
    config.storage_conninfo = storage;
    config.slot = "lost_slot";
    config.publication = "lost_pub";
    config.rules = rules;
    sluice::test::DemoWorkload workload(source, 21);
    workload.run(100);
    {
        Running replicator(config);
        workload.insert_user("marker1");
        REQUIRE(sluice::test::wait_for_marker(storage, "marker1"));
    }
    workload.run(200);  // deletes and moves the old slot will never deliver
    // Write checkpoints whose messages only the old slot would have delivered: an upload's, and one
    // of its own.
    const auto write_rules = sluice::config::rules::RuleSet::compile(
        "bucket_definitions:\n  global:\n    data:\n      - SELECT * FROM users\n"
        "write_rules:\n  users:\n    insert: true\n",
        "write-rules.yaml");
    REQUIRE(write_rules.rules);
    sluice::upload::UploaderOptions upload_options;
    upload_options.source_conninfo = source;
    upload_options.storage_conninfo = storage;
    auto uploader = sluice::upload::Uploader::create(upload_options, write_rules.rules);
    sluice::protocol::wire::UploadBatch batch;
    batch.client_id = "laptop";
    batch.batch_id = "b1";
    auto& put = batch.ops.emplace_back();
    put.table = "users";
    put.id = "writer";
    put.data.emplace_back("name", sluice::protocol::wire::CrudValue{sluice::protocol::wire::CrudValue::Kind::kString, "W"});
    const auto uploaded = uploader->upload({"alice", R"({"sub":"alice"})", 4102444800}, batch);
    REQUIRE(uploaded);
    REQUIRE(uploaded->result.outcome == sluice::protocol::wire::BatchOutcome::kApplied);
    const auto own = uploader->create_write_checkpoint("bob", "phone");
    REQUIRE(own);
    // Write WAL until Postgres gives up on the idle slot.
    pqxx::connection admin(source);
    bool lost = false;
    for (int round = 0; round < 50 && !lost; ++round) {
        pqxx::nontransaction tx(admin);
        tx.exec("CREATE TABLE IF NOT EXISTS ballast (x text); INSERT INTO ballast SELECT repeat('x', 200) FROM "
                "generate_series(1, 20000); SELECT pg_switch_wal(); CHECKPOINT;");
        lost = tx.exec1("SELECT wal_status = 'lost' FROM pg_replication_slots WHERE slot_name = 'lost_slot'")[0]
                   .as<bool>();
    }
    REQUIRE(lost);
    Running replicator(config);
    workload.run(50);
    workload.insert_user("marker2");
    REQUIRE(sluice::test::wait_for_marker(storage, "marker2"));
    CHECK(sluice::test::compare_every_user(*rules, storage, source) == "");
    // Both write checkpoints are delivered, at checkpoints that hold their writes.
    const auto delivered = [&](const std::string& user, const std::string& client) {
        pqxx::connection c(storage);
        return pqxx::nontransaction(c)
            .exec_params1("SELECT coalesce(max(checkpoint), 0) FROM sluice.write_checkpoints "
                          "WHERE user_id = $1 AND client_id = $2 AND op_id IS NOT NULL",
                          user, client)[0]
            .as<std::int64_t>();
    };
    CHECK(delivered("alice", "laptop") == uploaded->write_checkpoint);
    CHECK(delivered("bob", "phone") == own.value());
}

TEST_CASE("schema changes while streaming: added, changed and dropped columns reach the buckets") {
    Fixture f("schema_change");
    sluice::test::DemoWorkload workload(f.source, 31);
    workload.run(60);
    Running replicator(f.config());
    workload.insert_user("marker1");
    wait_for_marker(f, "marker1");
    sluice::test::exec_sql(f.source,
                           "ALTER TABLE todos ADD COLUMN priority int NOT NULL DEFAULT 2; "
                           "UPDATE todos SET priority = 7; "
                           "ALTER TABLE lists ALTER COLUMN name TYPE varchar(200); "
                           "UPDATE lists SET name = name || '!'; "
                           "ALTER TABLE todos DROP COLUMN completed");
    // Out-of-line (TOAST) values that later updates leave unchanged: pgoutput sends them as 'u', and
    // the stored copy fills them in.
    sluice::test::exec_sql(f.source,
                           "UPDATE todos SET description = (SELECT string_agg(md5(random()::text || g), '') "
                           "FROM generate_series(1, 400) g) WHERE id IN (SELECT id FROM todos ORDER BY id LIMIT 5)");
    sluice::test::exec_sql(f.source, "UPDATE todos SET priority = priority + 1");
    workload.insert_user("marker_toast");
    wait_for_marker(f, "marker_toast");
    check_every_user(f);
    workload.run(60);  // more writes under the new schema
    workload.insert_user("marker2");
    wait_for_marker(f, "marker2");
    check_every_user(f);
    {
        pqxx::connection c(f.source);
        pqxx::nontransaction tx(c);
        CHECK(tx.exec1("SELECT count(*) FROM todos WHERE length(description) > 10000")[0].as<int>() > 0);
    }
    // TRUNCATE removes every row of the table from every bucket.
    sluice::test::exec_sql(f.source, "TRUNCATE list_shares");
    workload.run(20);
    workload.insert_user("marker3");
    wait_for_marker(f, "marker3");
    check_every_user(f);
    // The output rows follow the new columns (the rules select *).
    auto reader = sluice::storage::BucketReader::open(f.storage).value();
    for (const auto& user : sluice::test::kDemoUsers) {
        for (const auto& [key, data] : sluice::test::client_view(*f.rules, *reader, user)) {
            if (key.first == "todos") {
                INFO(data);
                CHECK(data.find("\"priority\":") != std::string::npos);
                CHECK(data.find("\"completed\"") == std::string::npos);
            }
        }
    }
}

TEST_CASE("replica identity switched between DEFAULT and FULL while streaming keeps every row's identity") {
    Fixture f("identity_switch");
    sluice::test::exec_sql(f.source, "ALTER TABLE list_shares REPLICA IDENTITY FULL");  // snapshotted under FULL
    sluice::test::DemoWorkload workload(f.source, 51);
    workload.run(80);
    Running replicator(f.config());
    workload.run(40);
    workload.insert_user("marker1");
    wait_for_marker(f, "marker1");
    sluice::test::exec_sql(f.source, "ALTER TABLE todos REPLICA IDENTITY FULL; ALTER TABLE lists REPLICA IDENTITY FULL");
    workload.run(120);
    workload.insert_user("marker2");
    wait_for_marker(f, "marker2");
    check_every_user(f);
    sluice::test::exec_sql(f.source,
                           "ALTER TABLE todos REPLICA IDENTITY DEFAULT; ALTER TABLE list_shares REPLICA IDENTITY DEFAULT");
    workload.run(120);
    workload.insert_user("marker3");
    wait_for_marker(f, "marker3");
    check_every_user(f);
}

// Inserted rows are written without looking them up when storage is in step with the source (see
// TransactionApplier::apply); a key that goes and comes back within one batch must still be found.
TEST_CASE("a key deleted and inserted again, and a table truncated and refilled, in one batch are stored once") {
    Fixture f("reinsert");
    Running replicator(f.config());
    sluice::test::exec_sql(f.source, R"SQL(
        INSERT INTO todos (id, list_id, description) VALUES ('rx1', 'groceries', 'Milk'), ('rx2', 'groceries', 'Eggs');
        INSERT INTO list_shares (list_id, user_id) VALUES ('garage', 'alice');
    )SQL");
    sluice::test::DemoWorkload workload(f.source, 7);
    workload.insert_user("marker1");
    wait_for_marker(f, "marker1");
    // Each in one source transaction, so each lands in one storage batch.
    sluice::test::exec_sql(f.source, R"SQL(
        BEGIN;
        DELETE FROM todos WHERE id = 'rx1';
        INSERT INTO todos (id, list_id, description) VALUES ('rx1', 'garage', 'Oil');
        DELETE FROM list_shares WHERE list_id = 'garage' AND user_id = 'alice';
        INSERT INTO list_shares (list_id, user_id) VALUES ('garage', 'alice');
        COMMIT;
        BEGIN;
        TRUNCATE list_shares;
        INSERT INTO list_shares (list_id, user_id) VALUES ('garage', 'alice');
        COMMIT;
        BEGIN;
        UPDATE todos SET id = 'rx3' WHERE id = 'rx2';
        INSERT INTO todos (id, list_id, description) VALUES ('rx2', 'groceries', 'Bread');
        COMMIT;
    )SQL");
    workload.insert_user("marker2");
    wait_for_marker(f, "marker2");
    check_every_user(f);
}
