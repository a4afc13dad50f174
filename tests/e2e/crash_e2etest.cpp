// Crash safety of the real `sluice` binary: killed with SIGKILL in the middle of the initial snapshot,
// in the middle of streaming a random workload, during a large write burst, and during and after a
// rules-version switch, then restarted; once it has caught up, every user's rows in bucket storage
// equal the rules' queries run on the source (nothing lost, nothing twice, no row left in a bucket it
// moved out of), and storage equals a rebuild from scratch.
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <pqxx/pqxx>

#include "tests/support/cluster.h"
#include "tests/support/demo_oracle.h"
#include "tests/support/pg.h"
#include "tests/support/process.h"
#include "tests/support/storage_compare.h"

namespace fs = std::filesystem;

namespace {

std::string suffixed(const std::string& name, const char* suffix) {
    std::string out = name;
    out.append(suffix);
    return out;
}

struct Deployment {
    std::string name;
    std::string source;
    std::string storage_db;
    std::string storage;
    fs::path dir;
    std::string config;

    // A fresh source database with the demo schema, or `existing_source` as it is.
    explicit Deployment(const std::string& case_name, const std::string& existing_source = "") : name(case_name) {
        source = existing_source.empty() ? sluice::test::fresh_database(suffixed(name, "_source")) : existing_source;
        storage_db = suffixed(suffixed("t_", name.c_str()), "_storage");
        dir = fs::temp_directory_path() / suffixed("sluice-crash-", name.c_str());
        sluice::test::exec_sql(sluice::test::pg_uri(), "DROP DATABASE IF EXISTS " + storage_db + " WITH (FORCE)");
        storage = sluice::test::with_database(sluice::test::pg_uri(), storage_db);
        if (existing_source.empty()) {
            sluice::test::create_demo_schema(source);
        }
        fs::remove_all(dir);
        fs::create_directories(dir);
        fs::copy_file(fs::path(SLUICE_SOURCE_DIR) / "deploy" / "demo" / "sync-rules.yaml", dir / "sync-rules.yaml");
        config = (dir / "sluice.yaml").string();
        std::ofstream(config) << "source:\n  uri: \"" << source << "\"\n  slot: " << name
                              << "_slot\n  publication: " << name << "_pub\n  snapshot_chunk_rows: 20\n"
                              << "storage:\n  database: " << storage_db << "\n  create_database: true\n"
                              << "server:\n  listen_address: 127.0.0.1\n  port: 0\n"
                              << "auth:\n  audience: [t]\n  keys:\n    - {kid: k, alg: HS256, secret: s}\n"
                              << "logging:\n  level: warn\n";
    }
    ~Deployment() { fs::remove_all(dir); }

    std::unique_ptr<sluice::test::ServiceProcess> start() const {
        auto process = std::make_unique<sluice::test::ServiceProcess>(
            std::vector<std::string>{sluice::test::sluice_binary(), "run", "-c", config});
        const bool ready = process->wait_for_notification("READY=1");
        INFO(process->output());
        REQUIRE(ready);
        return process;
    }

    // Polls storage (with a deadline) until `sql` returns true.
    bool wait_until(const std::string& sql) const {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
        while (std::chrono::steady_clock::now() < deadline) {
            try {
                pqxx::connection c(storage);
                pqxx::nontransaction tx(c);
                auto r = tx.exec(sql);
                if (!r.empty() && !r[0][0].is_null() && r[0][0].as<bool>()) {
                    return true;
                }
            } catch (const std::exception&) {
                // storage not created or migrated yet
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polling a condition, with a deadline
        }
        return false;
    }
};

}  // namespace

TEST_CASE("SIGKILL during the initial snapshot, restart: storage converges to the source") {
    Deployment d("crash_snapshot");
    sluice::test::DemoWorkload workload(d.source, 11);
    workload.run(300);
    sluice::test::exec_sql(d.source,
                           "INSERT INTO lists VALUES ('big', 'u1', 'big list') ON CONFLICT DO NOTHING; "
                           "INSERT INTO todos (id, list_id, description) "
                           "SELECT 'bulk' || g, 'big', 'item ' || g FROM generate_series(1, 3000) g");
    {
        auto sluice = d.start();
        // Some chunks are stored, the snapshot is not finished: kill it there.
        REQUIRE(d.wait_until("SELECT sum(rows_done) > 0 FROM sluice.snapshot_progress"));
        sluice->send_signal(SIGKILL);
        CHECK(sluice->wait_exit() == 128 + SIGKILL);
    }
    {
        pqxx::connection c(d.storage);
        pqxx::nontransaction tx(c);
        CHECK_FALSE(tx.exec1("SELECT EXISTS (SELECT FROM sluice.replication_state WHERE snapshot_done)")[0].as<bool>());
    }
    workload.run(100);  // changes while it is down
    auto sluice = d.start();
    workload.run(100);
    workload.insert_user("marker");
    REQUIRE(sluice::test::wait_for_marker(d.storage, "marker"));
    CHECK(sluice::test::compare_every_user(*sluice::test::demo_rules(), d.storage, d.source) == "");
}

TEST_CASE("SIGKILL while streaming a random workload, restart: storage converges to the source") {
    Deployment d("crash_stream");
    sluice::test::DemoWorkload workload(d.source, 12);
    auto sluice = d.start();
    REQUIRE(d.wait_until("SELECT snapshot_done FROM sluice.replication_state"));
    for (int round = 0; round < 3; ++round) {
        std::int64_t stored = 0;
        {
            pqxx::connection c(d.storage);
            stored = pqxx::nontransaction(c).exec1("SELECT COALESCE(max(op_id), 0) FROM sluice.ops")[0].as<std::int64_t>();
        }
        // Writes race the replicator; once some of this round's are stored, it dies wherever it is.
        std::thread writer([&] { workload.run(150); });
        REQUIRE(d.wait_until("SELECT max(op_id) > " + std::to_string(stored + 20) + " FROM sluice.ops"));
        sluice->send_signal(SIGKILL);
        CHECK(sluice->wait_exit() == 128 + SIGKILL);
        writer.join();
        sluice = d.start();
    }
    workload.insert_user("marker");
    REQUIRE(sluice::test::wait_for_marker(d.storage, "marker"));
    CHECK(sluice::test::compare_every_user(*sluice::test::demo_rules(), d.storage, d.source) == "");
    sluice->send_signal(SIGTERM);
    CHECK(sluice->wait_exit() == 0);
}

TEST_CASE("SIGKILL during a large write burst, restart: storage equals a rebuild from scratch") {
    Deployment d("crash_burst");
    sluice::test::DemoWorkload workload(d.source, 13);
    workload.run(100);
    auto sluice = d.start();
    REQUIRE(d.wait_until("SELECT snapshot_done FROM sluice.replication_state"));
    // The burst: large transactions (inserts, then moves of every burst row to another list and so
    // to other buckets) racing many small ones.
    sluice::test::exec_sql(d.source, "INSERT INTO lists VALUES ('burst1', 'u2', 'b1'), ('burst2', 'u3', 'b2') "
                                     "ON CONFLICT DO NOTHING");
    // Each large statement first takes a table lock that waits for the small writers and holds them
    // off: a large UPDATE and the workload's every-todo UPDATE would otherwise deadlock.
    const std::string lock = "LOCK TABLE todos IN SHARE ROW EXCLUSIVE MODE; ";
    std::thread large([&] {
        for (int i = 0; i < 4; ++i) {
            sluice::test::exec_sql(d.source, lock + fmt::format("INSERT INTO todos (id, list_id, description) SELECT "
                                                                "'burst{}_' || g, 'burst1', 'item ' || g FROM "
                                                                "generate_series(1, 5000) g",
                                                                i));
        }
        sluice::test::exec_sql(d.source, lock + "UPDATE todos SET list_id = 'burst2' WHERE list_id = 'burst1'");
        sluice::test::exec_sql(d.source, lock + "DELETE FROM todos WHERE id LIKE 'burst0_%'");
    });
    std::thread small([&] { workload.run(300); });
    // Killed once part of the burst is stored, with the rest in flight.
    REQUIRE(d.wait_until("SELECT count(*) >= 5000 FROM sluice.current_rows WHERE row_key LIKE '%burst%'"));
    sluice->send_signal(SIGKILL);
    CHECK(sluice->wait_exit() == 128 + SIGKILL);
    sluice = d.start();
    large.join();
    small.join();
    workload.insert_user("marker");
    REQUIRE(sluice::test::wait_for_marker(d.storage, "marker"));
    CHECK(sluice::test::compare_every_user(*sluice::test::demo_rules(), d.storage, d.source) == "");
    sluice->send_signal(SIGTERM);
    CHECK(sluice->wait_exit() == 0);

    // The same source replicated from scratch into another storage holds the same.
    Deployment rebuild("crash_burst_rebuild", d.source);
    auto fresh = rebuild.start();
    REQUIRE(sluice::test::wait_for_marker(rebuild.storage, "marker"));
    CHECK(sluice::test::compare_storage(d.storage, 1, rebuild.storage, 1) == "");
    fresh->send_signal(SIGTERM);
    CHECK(fresh->wait_exit() == 0);
    sluice::test::drop_replication_slots(d.source);
}

TEST_CASE("rules changed (SIGHUP): SIGKILL during the new version's build and after the switch, restart: it "
          "switches, cleans up the old version and converges") {
    Deployment d("crash_rules");
    sluice::test::DemoWorkload workload(d.source, 14);
    workload.run(300);
    // Enough rows that the new version's snapshot takes many chunks: it is killed in the middle.
    sluice::test::exec_sql(d.source,
                           "INSERT INTO lists VALUES ('big', 'u1', 'big list') ON CONFLICT DO NOTHING; "
                           "INSERT INTO todos (id, list_id, description) "
                           "SELECT 'bulk' || g, 'big', 'item ' || g FROM generate_series(1, 3000) g");
    auto sluice = d.start();
    workload.insert_user("m1");
    REQUIRE(sluice::test::wait_for_marker(d.storage, "m1"));
    // The same rows, in other buckets: the demo's definitions renamed.
    std::string rules;
    {
        std::ifstream in(d.dir / "sync-rules.yaml");
        std::ostringstream text;
        text << in.rdbuf();
        rules = text.str();
    }
    for (const auto& [from, to] : {std::pair<std::string, std::string>{"user_lists:", "lists_of_user:"},
                                   {"own_profile:", "profile:"}}) {
        rules.replace(rules.find(from), from.size(), to);
    }
    std::ofstream(d.dir / "sync-rules.yaml") << rules;
    sluice->send_signal(SIGHUP);
    REQUIRE(d.wait_until("SELECT EXISTS (SELECT FROM sluice.snapshot_progress WHERE slot_name = 'crash_rules_slot_v2' "
                         "AND rows_done > 0)"));
    std::thread writer([&] { workload.run(100); });
    sluice->send_signal(SIGKILL);
    CHECK(sluice->wait_exit() == 128 + SIGKILL);
    {
        pqxx::connection c(d.storage);
        pqxx::nontransaction tx(c);
        CHECK(tx.exec1("SELECT state = 'building' FROM sluice.rules_versions WHERE id = 2")[0].as<bool>());
    }
    sluice = d.start();  // resumes the build: the file holds the new rules
    REQUIRE(d.wait_until("SELECT state = 'active' FROM sluice.rules_versions WHERE id = 2"));
    sluice->send_signal(SIGKILL);  // well within the cleanup grace period
    CHECK(sluice->wait_exit() == 128 + SIGKILL);
    writer.join();
    {
        pqxx::connection c(d.storage);
        pqxx::nontransaction tx(c);
        CHECK(tx.exec1("SELECT state = 'retired' FROM sluice.rules_versions WHERE id = 1")[0].as<bool>());
    }
    sluice = d.start();  // finishes the cleanup
    REQUIRE(d.wait_until("SELECT cleaned_at IS NOT NULL FROM sluice.rules_versions WHERE id = 1"));
    CHECK(d.wait_until("SELECT NOT EXISTS (SELECT FROM sluice.ops WHERE bucket NOT LIKE '2#%')"));
    workload.run(50);
    workload.insert_user("m2");
    REQUIRE(sluice::test::wait_for_marker(d.storage, "m2", 120, "2#profile"));
    auto compiled = sluice::config::rules::RuleSet::compile(rules, "sync-rules.yaml", {"2#"});
    REQUIRE(compiled.rules);
    CHECK(sluice::test::compare_every_user(*compiled.rules, d.storage, d.source) == "");
    sluice->send_signal(SIGTERM);
    CHECK(sluice->wait_exit() == 0);
    sluice::test::drop_replication_slots(d.source);
}

TEST_CASE("Postgres restarts under a running sluice: it reconnects and converges") {
    sluice::test::ScratchCluster cluster({.port = 25465});
    const auto source = sluice::test::with_database(cluster.uri(), "postgres");
    const auto storage = sluice::test::with_database(cluster.uri(), "restart_store");
    sluice::test::create_demo_schema(source);
    const fs::path dir = fs::temp_directory_path() / "sluice-pg-restart";
    fs::remove_all(dir);
    fs::create_directories(dir);
    fs::copy_file(fs::path(SLUICE_SOURCE_DIR) / "deploy" / "demo" / "sync-rules.yaml", dir / "sync-rules.yaml");
    const auto config = (dir / "sluice.yaml").string();
    std::ofstream(config) << "source:\n  uri: \"" << source << "\"\n  slot: restart_slot\n"
                          << "storage:\n  database: restart_store\n  create_database: true\n"
                          << "server:\n  listen_address: 127.0.0.1\n  port: 0\n"
                          << "auth:\n  audience: [t]\n  keys:\n    - {kid: k, alg: HS256, secret: s}\n"
                          << "logging:\n  level: warn\n";
    sluice::test::ServiceProcess sluice({sluice::test::sluice_binary(), "run", "-c", config});
    REQUIRE(sluice.wait_for_notification("READY=1"));
    {
        sluice::test::DemoWorkload workload(source, 41);
        workload.run(100);
        workload.insert_user("marker1");
        REQUIRE(sluice::test::wait_for_marker(storage, "marker1"));
        workload.run(50);  // some of these may be in flight when Postgres goes down
    }
    cluster.restart();
    sluice::test::DemoWorkload workload(source, 42);
    workload.run(100);
    workload.insert_user("marker2");
    REQUIRE(sluice::test::wait_for_marker(storage, "marker2"));
    CHECK(sluice::test::compare_every_user(*sluice::test::demo_rules(), storage, source) == "");
    sluice.send_signal(SIGTERM);
    CHECK(sluice.wait_exit() == 0);
    fs::remove_all(dir);
}
