// The real `sluice` binary: version and help, `check` reporting every mistake with its position,
// `migrate` run twice and concurrently, `run` becoming ready and stopping on SIGTERM, and refusing
// a source without wal_level=logical.
#include <csignal>
#include <filesystem>
#include <fstream>
#include <thread>

#include <catch2/catch.hpp>
#include <pqxx/pqxx>

#include "tests/support/cluster.h"
#include "tests/support/pg.h"
#include "tests/support/process.h"

namespace fs = std::filesystem;
using sluice::test::run_command;
using sluice::test::sluice_binary;

namespace {

// A scratch folder holding a config and a rules file for one test case.
class ConfigDir {
public:
    explicit ConfigDir(const std::string& name) : m_dir(fs::temp_directory_path() / ("sluice-e2e-" + name)) {
        fs::remove_all(m_dir);
        fs::create_directories(m_dir);
        write("sync-rules.yaml", "bucket_definitions:\n  global:\n    data:\n      - SELECT * FROM lists\n");
    }
    ~ConfigDir() { fs::remove_all(m_dir); }

    std::string write(const std::string& file, const std::string& text) const {
        std::ofstream(m_dir / file) << text;
        return (m_dir / file).string();
    }
    // A valid sluice.yaml for the given source and storage database name.
    std::string config(const std::string& source_uri, const std::string& storage_db) const {
        return write("sluice.yaml", "source:\n  uri: \"" + source_uri + "\"\n  slot: e2e_" + storage_db +
                                        "\nstorage:\n  database: " + storage_db +
                                        "\n  create_database: true\nserver:\n  port: 0\n");
    }

private:
    fs::path m_dir;
};

std::string data_file(const std::string& name) { return std::string(SLUICE_SOURCE_DIR) + "/tests/data/" + name; }

void drop_database(const std::string& name) {
    sluice::test::exec_sql(sluice::test::pg_uri(), "DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
}

}  // namespace

TEST_CASE("sluice version and help") {
    auto version = run_command({sluice_binary(), "version"});
    CHECK(version.exit_code == 0);
    CHECK(version.output.starts_with("sluice 0.1.0 (storage schema "));
    for (const char* command : {"run", "check", "migrate"}) {
        auto help = run_command({sluice_binary(), command, "--help"});
        CHECK(help.exit_code == 0);
        CHECK(help.output.starts_with(std::string("sluice ") + command + " -c <sluice.yaml>"));
    }
    auto top = run_command({sluice_binary(), "--help"});
    CHECK(top.exit_code == 0);
    auto unknown = run_command({sluice_binary(), "frobnicate"});
    CHECK(unknown.exit_code == 2);
    CHECK(unknown.output.starts_with("sluice: unknown command 'frobnicate'"));
    auto bad_option = run_command({sluice_binary(), "check", "--nope"});
    CHECK(bad_option.exit_code == 2);
}

TEST_CASE("sluice check prints every mistake with its position") {
    const auto file = data_file("config/three_mistakes.yaml");
    auto result = run_command({sluice_binary(), "check", "-c", file});
    CHECK(result.exit_code == 1);
    CHECK(result.output ==
          file + ":5:3: error: server.prot: unknown key 'prot'; did you mean 'port'? (keys allowed here: "
                 "listen_address, port, tls, cors_origins, demo_page) [SL1003]\n" +
              file + ":8:10: error: logging.level: got 'verbose'; expected one of: trace, debug, info, warn, error "
                     "[SL1004]\n" +
              file + ":10:31: error: limits.max_buckets_per_connection: 0 is out of range; expected an integer from "
                     "1 to 1000000 [SL1005]\n");
}

TEST_CASE("sluice check: an unreadable config, a missing rules file, and a valid pair") {
    auto missing = run_command({sluice_binary(), "check", "-c", "/nonexistent/sluice.yaml"});
    CHECK(missing.exit_code == 1);
    CHECK(missing.output.find("/nonexistent/sluice.yaml: error: cannot read the config file") == 0);

    ConfigDir dir("check");
    const auto config = dir.write("sluice.yaml", "source:\n  uri: postgresql://db/app\nsync_rules:\n  path: nope.yaml\n");
    auto no_rules = run_command({sluice_binary(), "check", "-c", config});
    CHECK(no_rules.exit_code == 1);
    CHECK(no_rules.output.find("nope.yaml: error: sync_rules.path: cannot read the sync-rules file") !=
          std::string::npos);

    const auto good = dir.write("good.yaml", "source:\n  uri: postgresql://db/app\n");
    auto ok = run_command({sluice_binary(), "check", "-c", good});
    INFO(ok.output);
    CHECK(ok.exit_code == 0);

    dir.write("sync-rules.yaml", "bucket_definitions:\n  global:\n    data: [\n");
    auto bad_rules = run_command({sluice_binary(), "check", "-c", good});
    CHECK(bad_rules.exit_code == 1);
    CHECK(bad_rules.output.find("sync-rules.yaml:") != std::string::npos);
}

TEST_CASE("sluice migrate twice, and two at once") {
    drop_database("e2e_migrate");
    ConfigDir dir("migrate");
    const auto config = dir.config(sluice::test::pg_uri(), "e2e_migrate");
    // Two processes at once on a database that does not exist yet: both succeed.
    sluice::test::CommandResult first;
    sluice::test::CommandResult second;
    std::thread a([&] { first = run_command({sluice_binary(), "migrate", "-c", config}); });
    std::thread b([&] { second = run_command({sluice_binary(), "migrate", "-c", config}); });
    a.join();
    b.join();
    INFO(first.output << second.output);
    CHECK(first.exit_code == 0);
    CHECK(second.exit_code == 0);
    auto again = run_command({sluice_binary(), "migrate", "-c", config});
    INFO(again.output);
    CHECK(again.exit_code == 0);
    pqxx::connection c(sluice::test::with_database(sluice::test::pg_uri(), "e2e_migrate"));
    pqxx::nontransaction tx(c);
    CHECK(tx.exec1("SELECT count(*) FROM sluice.schema_migrations")[0].as<int>() >= 1);
    // Compaction on demand: two PUTs of one row, the older becomes a MOVE.
    tx.exec0("INSERT INTO sluice.op_chunks VALUES ('global[]', 1, 2, 2, 10, "
             "'[[1,1,\"t\",\"a\",\"s\",\"{}\",5],[2,1,\"t\",\"a\",\"s\",\"{}\",5]]'); "
             "INSERT INTO sluice.buckets VALUES ('global[]', 2, 10, 2, 0); INSERT INTO sluice.checkpoints (op_id, lsn) VALUES (2, '0/1')");
    auto compacted = run_command({sluice_binary(), "compact", "-c", config});
    INFO(compacted.output);
    CHECK(compacted.exit_code == 0);
    CHECK(compacted.output.find("compacted 1 bucket(s): 1 op(s) superseded") != std::string::npos);
    CHECK(tx.exec1("SELECT op FROM sluice.ops WHERE op_id = 1")[0].as<int>() == 3);
}

TEST_CASE("sluice run becomes ready and stops cleanly on SIGTERM") {
    drop_database("e2e_run");
    ConfigDir dir("run");
    const auto config = dir.config(sluice::test::pg_uri(), "e2e_run");
    sluice::test::ServiceProcess sluice({sluice_binary(), "run", "-c", config});
    const bool ready = sluice.wait_for_notification("READY=1");
    INFO(sluice.output());
    REQUIRE(ready);
    sluice.send_signal(SIGTERM);
    CHECK(sluice.wait_exit() == 0);
}

TEST_CASE("sluice run refuses a source without wal_level=logical, saying how to fix it") {
    sluice::test::ScratchCluster cluster({.port = 25463, .wal_level = "replica"});
    ConfigDir dir("replica");
    const auto config = dir.config(cluster.uri(), "e2e_replica");
    auto result = run_command({sluice_binary(), "run", "-c", config});
    CHECK(result.exit_code == 1);
    CHECK(result.output.find("SL3003: the source Postgres has wal_level = 'replica', but logical replication needs "
                             "'logical': set wal_level = logical in postgresql.conf") != std::string::npos);
}
