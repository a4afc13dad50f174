// `sluice explain -c` against a real Postgres: the replicator fills the live lookup index from the
// demo schema, then the real binary prints a user's buckets with a list_shares grant resolved through
// that index (and, offline, without it); revoking the grant removes the bucket.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>
#include <pqxx/pqxx>

#include "config/rules/rule_set.h"
#include "migrations/migrations.h"
#include "server/app/replicator.h"
#include "server/storage/bucket_reader.h"
#include "server/storage/migrator.h"
#include "tests/support/pg.h"
#include "tests/support/process.h"

namespace fs = std::filesystem;
namespace rules = sluice::config::rules;

namespace {

const std::string kDemo = std::string(SLUICE_SOURCE_DIR) + "/deploy/demo/";

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// The lookup key the rules give a list_shares row of `user`: what the replicator stores.
std::string share_key(const rules::RuleSet& rs, const std::string& list, const std::string& user) {
    rules::ParameterEvaluation pe;
    rs.evaluate_parameter_row({"public", "list_shares"},
                              rules::Row{{"list_id", rules::Value::text(list)}, {"user_id", rules::Value::text(user)}},
                              pe);
    REQUIRE(pe.entries.size() == 1);
    return pe.entries[0].key;
}

// Polls the live index until `key` has (or no longer has) entries; a deadline guards a stuck replicator.
void wait_for_lookup(const std::string& storage, const std::string& key, bool present) {
    auto reader = sluice::storage::BucketReader::open(storage).value();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (std::chrono::steady_clock::now() < deadline) {
        const std::vector<std::string> keys{key};
        auto found = reader->lookup(keys);
        REQUIRE(found.is_ok());
        if (found.value().at(0).empty() != present) {
            return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling a condition, with a deadline
    }
    FAIL("the live lookup index never " << (present ? "got" : "dropped") << " " << key);
}

}  // namespace

TEST_CASE("sluice explain -c resolves a list_shares grant through the live lookup index") {
    const auto source = sluice::test::fresh_database("explain_live_source");
    const auto storage = sluice::test::fresh_database("explain_live_storage");
    sluice::test::exec_sql(source, read_file(kDemo + "schema.sql"));
    sluice::test::exec_sql(source, "INSERT INTO list_shares (list_id, user_id) VALUES ('groceries', 'bob')");
    {
        pqxx::connection c(storage);
        REQUIRE(sluice::storage::migrate(c, sluice::migrations::embedded()).is_ok());
    }
    auto compiled = rules::RuleSet::compile(read_file(kDemo + "sync-rules.yaml"), "sync-rules.yaml", {"1#"});
    REQUIRE(compiled.rules);
    const auto key = share_key(*compiled.rules, "groceries", "bob");

    sluice::app::ReplicatorConfig rc;
    rc.source_conninfo = source;
    rc.storage_conninfo = storage;
    rc.slot = "explain_live_slot";
    rc.publication = "explain_live_pub";
    rc.rules = compiled.rules;
    sluice::app::Replicator replicator(rc);
    std::atomic<bool> stop{false};
    sluice::protocol::Status status;
    std::thread thread([&] { status = replicator.run(stop); });
    struct Join {
        std::atomic<bool>& stop;
        std::thread& thread;
        ~Join() {
            stop = true;
            if (thread.joinable()) {
                thread.join();
            }
        }
    } join{stop, thread};

    wait_for_lookup(storage, key, true);

    const fs::path dir = fs::temp_directory_path() / "sluice-explain-live";
    fs::remove_all(dir);
    fs::create_directories(dir);
    const auto config = (dir / "sluice.yaml").string();
    std::ofstream(config) << "source:\n  uri: \"" << source << "\"\n  slot: explain_live_cli\nstorage:\n  uri: \""
                          << storage << "\"\nserver:\n  port: 0\nsync_rules:\n  path: " << kDemo
                          << "sync-rules.yaml\n";
    const std::string claims = R"({"sub":"bob"})";

    const auto binary = sluice::test::sluice_binary();
    const auto live = sluice::test::run_command({binary, "explain", "-c", config, "--claims", claims});
    INFO(live.output);
    CHECK(live.exit_code == 0);
    CHECK(live.output == "user bob: 3 buckets (lookups from the live index in storage)\n"
                         "  1#own_profile[\"bob\"]  priority 3  <- own_profile parameters[0] from the request\n"
                         "  1#user_lists[\"garage\"]  priority 3  <- user_lists parameters[0] via lookup "
                         "user_lists/0/0[\"bob\"]\n"
                         "  1#user_lists[\"groceries\"]  priority 3  <- user_lists parameters[1] via lookup " +
                             key + "\n");

    const auto json = sluice::test::run_command({binary, "explain", "-c", config, "--json", "--claims", claims});
    CHECK(json.exit_code == 0);
    CHECK(json.output.starts_with(R"({"user_id":"bob","lookups":"live","buckets":[)"));
    CHECK(json.output.find(R"("bucket":"1#user_lists[\"groceries\"]")") != std::string::npos);

    // Offline, the same rules know no share: only what the request itself gives.
    const auto offline =
        sluice::test::run_command({binary, "explain", "--rules", kDemo + "sync-rules.yaml", "--claims", claims});
    CHECK(offline.exit_code == 0);
    CHECK(offline.output == "user bob: 1 bucket\n"
                            "  own_profile[\"bob\"]  priority 3  <- own_profile parameters[0] from the request\n");

    // Revoking the grant reaches the live index, and explain follows it.
    sluice::test::exec_sql(source, "DELETE FROM list_shares WHERE list_id = 'groceries' AND user_id = 'bob'");
    wait_for_lookup(storage, key, false);
    const auto revoked = sluice::test::run_command({binary, "explain", "-c", config, "--claims", claims});
    CHECK(revoked.exit_code == 0);
    CHECK(revoked.output.find("groceries") == std::string::npos);
    CHECK(revoked.output.starts_with("user bob: 2 buckets (lookups from the live index in storage)\n"));

    stop = true;
    thread.join();
    CHECK(status.is_ok());
    fs::remove_all(dir);
}
