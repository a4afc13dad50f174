// The official PowerSync Node SDK (@powersync/node, tests/sdk/package.json) syncing the demo schema
// (deploy/demo) from the real `sluice` binary over POST /sync/stream: the initial download, inserts,
// updates, deletes and grants arriving live, and resuming after sluice restarts (SIGTERM) without
// downloading again what the client already holds; token expiry and refresh, compacted buckets, bucket
// priorities, and local writes uploaded through POST /upload coming back to the writer and to another
// user. Every expectation is the rules' result computed on the source database, compared with the SDK's
// local SQLite; every wait polls with a deadline.

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>
#include <pqxx/pqxx>
#include <simdjson.h>

#include "tests/sdk/node_client.h"
#include "tests/support/jwt_signer.h"
#include "tests/support/pg.h"
#include "tests/support/process.h"

namespace fs = std::filesystem;
using sluice::test::NodeSdkClient;

namespace {

std::string read_file(const fs::path& path) {
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// The demo (deploy/demo: schema, rules) in databases of its own, and a sluice serving it on a fixed port.
struct DemoDeployment {
    std::string name;
    std::string source;
    std::string storage_db;
    fs::path dir;
    std::string config;
    std::uint16_t port = 0;
    sluice::test::TestKey key = sluice::test::TestKey::hmac("HS256", "sdk-test-secret", "k");

    // `rules`: the sync rules to serve; empty: deploy/demo/sync-rules.yaml.
    explicit DemoDeployment(std::string case_name, const std::string& rules = {}) : name(std::move(case_name)) {
        source = sluice::test::fresh_database(name + "_source");
        storage_db = "t_" + name + "_storage";  // as fresh_database names it, so drop_fresh_database finds it
        sluice::test::exec_sql(sluice::test::pg_uri(), "DROP DATABASE IF EXISTS " + storage_db + " WITH (FORCE)");
        const fs::path demo = fs::path(SLUICE_SOURCE_DIR) / "deploy" / "demo";
        sluice::test::exec_sql(source, read_file(demo / "schema.sql"));
        dir = fs::temp_directory_path() / ("sluice-sdk-" + name);
        fs::remove_all(dir);
        fs::create_directories(dir);
        if (rules.empty()) {
            fs::copy_file(demo / "sync-rules.yaml", dir / "sync-rules.yaml");
        } else {
            std::ofstream(dir / "sync-rules.yaml") << rules;
        }
        port = sluice::test::free_port();  // bound again after a restart, so the SDK's endpoint stays the same
        config = (dir / "sluice.yaml").string();
        std::ofstream(config) << "source:\n  uri: \"" << source << "\"\n  slot: " << name << "_slot\n  publication: "
                              << name << "_pub\n"
                              << "storage:\n  database: " << storage_db << "\n  create_database: true\n"
                              << "server:\n  listen_address: 127.0.0.1\n  port: " << port << "\n"
                              << "auth:\n  audience: [sdk-test]\n  keys:\n    - {kid: k, alg: HS256, secret: "
                              << key.secret() << "}\n"
                              << "logging:\n  level: info\n";
    }
    // Run after the sluice serving it has stopped (declare the deployment first, the process after it).
    ~DemoDeployment() {
        fs::remove_all(dir);
        try {
            sluice::test::drop_fresh_database(name + "_source");  // with its replication slot
            sluice::test::drop_fresh_database(name + "_storage");
        } catch (const std::exception& e) {
            WARN("could not drop the test databases of " << name << ": " << e.what());
        }
    }

    [[nodiscard]] std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port); }

    [[nodiscard]] std::string token(const std::string& user, std::int64_t lifetime_seconds = 3600) const {
        return sluice::test::mint_token(key, user, static_cast<std::int64_t>(std::time(nullptr)), lifetime_seconds,
                                        "sdk-test");
    }

    [[nodiscard]] std::string connect_command(const std::string& user, std::int64_t lifetime_seconds = 3600) const {
        return R"({"cmd":"connect","endpoint":")" + endpoint() + R"(","token":")" + token(user, lifetime_seconds) + "\"}";
    }

    [[nodiscard]] std::unique_ptr<sluice::test::ServiceProcess> start() const {
        auto process = std::make_unique<sluice::test::ServiceProcess>(
            std::vector<std::string>{sluice::test::sluice_binary(), "run", "-c", config});
        const bool ready = process->wait_for_notification("READY=1");
        INFO(process->output());
        REQUIRE(ready);
        return process;
    }

    void sql(const std::string& statements) const { sluice::test::exec_sql(source, statements); }

    // What the demo rules give `user`, straight from the source, as NodeSdkClient::rows() prints it.
    [[nodiscard]] std::string expected(const std::string& user, const std::string& table) const {
        const std::string lists = "(SELECT id FROM lists WHERE owner_id = $1 UNION SELECT list_id FROM list_shares WHERE user_id = $1)";
        std::string query;
        if (table == "todos") {
            query = "SELECT id || '|' || list_id || '|' || description || '|' || completed::int FROM todos "
                    "WHERE list_id IN " + lists + " ORDER BY id COLLATE \"C\"";
        } else if (table == "lists") {
            query = "SELECT id || '|' || owner_id || '|' || name FROM lists WHERE id IN " + lists +
                    " ORDER BY id COLLATE \"C\"";
        } else {
            query = "SELECT id || '|' || name FROM users WHERE id = $1";
        }
        pqxx::connection c(source);
        pqxx::nontransaction tx(c);
        std::string text;
        for (const auto& row : tx.exec_params(query, user)) {
            if (!text.empty()) {
                text.push_back('\n');
            }
            text += row[0].c_str();
        }
        return text;
    }
};

const char* const kTodosSql = "SELECT id, list_id, description, completed FROM todos ORDER BY id";
const char* const kListsSql = "SELECT id, owner_id, name FROM lists ORDER BY id";
const char* const kUsersSql = "SELECT id, name FROM users ORDER BY id";

// Waits until the client's todos, lists and users equal what the rules give `user` on the source.
void require_in_sync(NodeSdkClient& client, const DemoDeployment& d, const std::string& user, const char* step) {
    INFO(step);
    for (const auto& [table, sql] : {std::pair{"todos", kTodosSql}, {"lists", kListsSql}, {"users", kUsersSql}}) {
        std::string seen;
        const bool same = client.wait_for_rows(sql, [&, &table = table] { return d.expected(user, table); }, seen);
        INFO("table " << table << "\nexpected:\n" << d.expected(user, table) << "\nthe SDK has:\n" << seen
                      << "\nSDK log:\n" << client.log());
        REQUIRE(same);
    }
}

// The /sync/stream requests the client's proxy recorded: each one's status, the ops its data lines
// carried, and the `after` it sent per bucket.
struct StreamRecord {
    std::int64_t status = 0;
    std::int64_t ops = 0;
    std::map<std::string, std::string> after;  // bucket → after
};

std::vector<StreamRecord> recorded_streams(NodeSdkClient& client) {
    const auto reply = client.call(R"({"cmd":"streams"})");
    simdjson::dom::parser parser;
    std::vector<StreamRecord> out;
    for (auto stream : parser.parse(reply)["streams"].get_array()) {
        StreamRecord record;
        record.status = stream["status"].get_int64();
        record.ops = stream["ops"].get_int64();
        simdjson::dom::array buckets;
        if (stream["request"]["buckets"].get(buckets) == simdjson::SUCCESS) {
            for (auto bucket : buckets) {
                std::string_view name = bucket["name"].get_string();
                std::string_view after = bucket["after"].get_string();
                record.after[std::string(name)] = std::string(after);
            }
        }
        out.push_back(std::move(record));
    }
    return out;
}

std::int64_t ops_from(const std::vector<StreamRecord>& streams, std::size_t first) {
    std::int64_t total = 0;
    for (std::size_t i = first; i < streams.size(); ++i) {
        total += streams[i].ops;
    }
    return total;
}

// The client's own bucket positions (the SDK's ps_buckets table): bucket → last op_id applied.
std::map<std::string, std::string> client_positions(NodeSdkClient& client) {
    std::map<std::string, std::string> out;
    std::istringstream rows(client.rows("SELECT name, last_op FROM ps_buckets WHERE name != '$local' ORDER BY name"));
    for (std::string line; std::getline(rows, line);) {
        const auto bar = line.find('|');
        out[line.substr(0, bar)] = line.substr(bar + 1);
    }
    return out;
}

}  // namespace

TEST_CASE("PowerSync Node SDK: initial sync, live inserts, updates, deletes and grants, resume after restarts") {
    DemoDeployment d("sdk_live");
    // Enough rows that a full download is clearly different from a resume.
    d.sql("INSERT INTO todos (id, list_id, description) SELECT 'bulk' || g, 'groceries', 'item ' || g "
          "FROM generate_series(1, 300) g");
    auto sluice = d.start();

    NodeSdkClient alice("alice", (d.dir / "alice.db").string());
    alice.call(d.connect_command("alice"));
    require_in_sync(alice, d, "alice", "initial sync");
    const auto initial_ops = ops_from(recorded_streams(alice), 0);
    CHECK(initial_ops >= 300 + 3);
    WARN("initial download: " << initial_ops << " ops");

    d.sql("INSERT INTO todos (id, list_id, description) VALUES ('t10', 'groceries', 'Eggs')");
    require_in_sync(alice, d, "alice", "insert");
    d.sql("UPDATE todos SET description = 'Oat milk', completed = true WHERE id = 't1'");
    require_in_sync(alice, d, "alice", "update");
    d.sql("DELETE FROM todos WHERE id = 't2'");
    require_in_sync(alice, d, "alice", "delete");
    d.sql("INSERT INTO list_shares VALUES ('garage', 'alice')");  // bob's list becomes alice's too
    require_in_sync(alice, d, "alice", "grant");
    REQUIRE(alice.rows("SELECT id FROM todos WHERE id = 't3'") == "t3");
    d.sql("UPDATE lists SET name = 'Garage' WHERE id = 'garage'");
    require_in_sync(alice, d, "alice", "update in a granted list");
    d.sql("DELETE FROM list_shares WHERE list_id = 'garage'");
    require_in_sync(alice, d, "alice", "revoke");
    REQUIRE(alice.rows("SELECT id FROM todos WHERE id = 't3'").empty());

    // Everything live so far came as small increments on the first stream.
    auto streams = recorded_streams(alice);
    REQUIRE(streams.size() == 1);
    CHECK(streams[0].status == 200);

    for (int restart = 1; restart <= 2; ++restart) {
        INFO("restart " << restart);
        const auto before = client_positions(alice);
        REQUIRE(before.size() >= 2);
        const auto streams_before = recorded_streams(alice).size();

        sluice->send_signal(SIGTERM);
        REQUIRE(sluice->wait_exit() == 0);
        // Changes while sluice is down: one insert, one update, one delete in alice's list.
        const std::string id = "down" + std::to_string(restart);
        d.sql("INSERT INTO todos (id, list_id, description) VALUES ('" + id + "', 'groceries', 'while down')");
        d.sql("UPDATE todos SET description = 'changed while down " + id + "' WHERE id = 'bulk1'");
        d.sql("DELETE FROM todos WHERE id = 'bulk" + std::to_string(1 + restart) + "'");
        sluice = d.start();
        require_in_sync(alice, d, "alice", "caught up after the restart");

        streams = recorded_streams(alice);
        REQUIRE(streams.size() > streams_before);
        // The reconnecting streams asked for each bucket from the client's position, not from 0 ...
        bool resumed = false;
        for (std::size_t i = streams_before; i < streams.size(); ++i) {
            if (streams[i].status == 200) {
                CHECK(streams[i].after == before);
                resumed = true;
            }
        }
        CHECK(resumed);
        // ... and received exactly the three changes made while it was down, not the 300+ rows again.
        CHECK(ops_from(streams, streams_before) == 3);
        WARN("restart " << restart << ": resumed with " << ops_from(streams, streams_before) << " ops over "
                        << streams.size() - streams_before << " request(s) (initial download: " << initial_ops << ")");
    }

    // Live again after the restarts.
    d.sql("INSERT INTO todos (id, list_id, description) VALUES ('after', 'groceries', 'live again')");
    require_in_sync(alice, d, "alice", "live after the restarts");

    const auto status = alice.call(R"({"cmd":"status"})");
    INFO(status);
    CHECK(status.find("\"hasSynced\":true") != std::string::npos);
    CHECK(status.find("\"downloadError\":null") != std::string::npos);
    alice.close();
    sluice->send_signal(SIGTERM);
    CHECK(sluice->wait_exit() == 0);
}

TEST_CASE("PowerSync Node SDK: two users see only their own buckets, and a shared list reaches both") {
    DemoDeployment d("sdk_users");
    auto sluice = d.start();
    NodeSdkClient alice("alice", (d.dir / "alice.db").string());
    NodeSdkClient bob("bob", (d.dir / "bob.db").string());
    alice.call(d.connect_command("alice"));
    bob.call(d.connect_command("bob"));
    require_in_sync(alice, d, "alice", "alice initial");
    require_in_sync(bob, d, "bob", "bob initial");
    CHECK(alice.rows("SELECT id FROM lists") == "groceries");
    CHECK(bob.rows("SELECT id FROM lists") == "garage");

    d.sql("INSERT INTO list_shares VALUES ('groceries', 'bob')");
    d.sql("INSERT INTO todos (id, list_id, description) VALUES ('shared', 'groceries', 'for both')");
    require_in_sync(alice, d, "alice", "alice after sharing");
    require_in_sync(bob, d, "bob", "bob after sharing");
    CHECK(bob.rows("SELECT id FROM todos WHERE id = 'shared'") == "shared");
    CHECK(alice.rows("SELECT id FROM todos WHERE id = 't3'").empty());
    alice.close();
    bob.close();
}

TEST_CASE("PowerSync Node SDK: a token expiring mid-stream is replaced through fetchCredentials and syncing goes on") {
    DemoDeployment d("sdk_token");
    auto sluice = d.start();
    NodeSdkClient alice("alice", (d.dir / "alice.db").string());
    alice.call(d.connect_command("alice", 8));  // sluice ends the stream when this token expires
    require_in_sync(alice, d, "alice", "initial sync with a short-lived token");
    alice.call(R"({"cmd":"token","token":")" + d.token("alice") + "\"}");

    // The SDK reconnects with the fresh token once the first one has expired.
    std::vector<StreamRecord> streams;
    auto accepted = [&] {
        return std::count_if(streams.begin(), streams.end(), [](const StreamRecord& s) { return s.status == 200; });
    };
    const bool reconnected = sluice::test::eventually([&] {
        streams = recorded_streams(alice);
        return accepted() >= 2;
    }, 120);
    INFO("SDK log:\n" << alice.log());
    REQUIRE(reconnected);
    d.sql("INSERT INTO todos (id, list_id, description) VALUES ('t10', 'groceries', 'after the new token')");
    require_in_sync(alice, d, "alice", "live with the new token");
    alice.close();
}

TEST_CASE("PowerSync Node SDK: compacted buckets (MOVE ops) download with valid checksums, and live clients keep syncing") {
    DemoDeployment d("sdk_compact");
    auto sluice = d.start();
    NodeSdkClient alice("alice", (d.dir / "alice.db").string());
    alice.call(d.connect_command("alice"));
    require_in_sync(alice, d, "alice", "initial sync");
    for (int i = 0; i < 20; ++i) {
        d.sql("UPDATE todos SET description = 'Milk, take " + std::to_string(i) + "' WHERE id = 't1'");
    }
    d.sql("DELETE FROM todos WHERE id = 't2'");
    require_in_sync(alice, d, "alice", "after 20 updates of one row");

    const auto compact = sluice::test::run_command({sluice::test::sluice_binary(), "compact", "-c", d.config});
    INFO(compact.output);
    REQUIRE(compact.exit_code == 0);
    CHECK(compact.output.find(" 0 op(s) superseded") == std::string::npos);

    // A new client downloads the compacted buckets (MOVEs in place of superseded PUTs) and applies them:
    // the SDK applies a checkpoint only when its checksums add up.
    NodeSdkClient fresh("alice-2", (d.dir / "alice2.db").string());
    fresh.call(d.connect_command("alice"));
    require_in_sync(fresh, d, "alice", "a new client after compaction");
    // The client that was connected throughout keeps going.
    d.sql("UPDATE todos SET description = 'Milk, final' WHERE id = 't1'");
    require_in_sync(alice, d, "alice", "the live client after compaction");
    require_in_sync(fresh, d, "alice", "the new client, live");
    const auto fresh_ops = ops_from(recorded_streams(fresh), 0);
    const auto alice_ops = ops_from(recorded_streams(alice), 0);
    WARN("after compaction a new client downloaded " << fresh_ops << " ops; the client connected throughout got "
                                                      << alice_ops);
    alice.close();
    fresh.close();
}

TEST_CASE("PowerSync Node SDK: with bucket priorities, partial_checkpoint_complete lines are taken and the client stays in sync") {
    // The demo rules with the profile at priority 1 (lists and todos stay at the default 3).
    std::string rules = read_file(fs::path(SLUICE_SOURCE_DIR) / "deploy" / "demo" / "sync-rules.yaml");
    const std::string profile = "  own_profile:\n";
    const auto at = rules.find(profile);
    REQUIRE(at != std::string::npos);
    rules.insert(at + profile.size(), "    priority: 1\n");
    DemoDeployment d("sdk_priority", rules);
    auto sluice = d.start();
    NodeSdkClient alice("alice", (d.dir / "alice.db").string());
    alice.call(d.connect_command("alice"));
    require_in_sync(alice, d, "alice", "initial sync with priorities");
    d.sql("UPDATE users SET name = 'Alice A.' WHERE id = 'alice'");
    d.sql("INSERT INTO todos (id, list_id, description) VALUES ('t10', 'groceries', 'Eggs')");
    require_in_sync(alice, d, "alice", "live changes in both priorities");

    // (The SDK keeps per-priority progress only until the full checkpoint completes, so the test does
    // not look at it; that the lines came and the client converged is what it checks.)
    const auto status = alice.call(R"({"cmd":"status"})");
    INFO(status);
    CHECK(status.find(R"("downloadError":null)") != std::string::npos);
    const auto streams = alice.call(R"({"cmd":"streams"})");
    INFO(streams);
    CHECK(streams.find(R"("partial_checkpoint_complete":)") != std::string::npos);
    alice.close();
}

TEST_CASE("PowerSync Node SDK: local writes go up through POST /upload and come back to the writer and to a user sharing the list") {
    // Both ways the SDK learns that its write is back: GET /write-checkpoint2.json (its default) and
    // POST /sync/checkpoint-request.
    const std::string mode = GENERATE(as<std::string>{}, "legacy", "requests");
    INFO("checkpointMode " << mode);
    DemoDeployment d("sdk_upload_" + mode);
    // The server stamps every description it stores, so the server's version of a row differs from the
    // writer's optimistic local one: seeing the stamp locally means the write came back through sync.
    d.sql("CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
          "IF NEW.description NOT LIKE '% [saved]' THEN NEW.description := NEW.description || ' [saved]'; END IF; "
          "RETURN NEW; END $$; "
          "CREATE TRIGGER stamp BEFORE INSERT OR UPDATE ON todos FOR EACH ROW EXECUTE FUNCTION stamp()");
    d.sql("INSERT INTO list_shares VALUES ('groceries', 'bob')");
    auto sluice = d.start();
    NodeSdkClient alice("alice", (d.dir / "alice.db").string());
    NodeSdkClient bob("bob", (d.dir / "bob.db").string());
    for (const auto& [client, user] : {std::pair{&alice, "alice"}, {&bob, "bob"}}) {
        auto command = d.connect_command(user);
        command.insert(command.size() - 1, R"(,"checkpointMode":")" + mode + "\"");
        client->call(command);
    }
    require_in_sync(alice, d, "alice", "alice initial");
    require_in_sync(bob, d, "bob", "bob initial");

    // An update, an insert and a delete in one local transaction each, as an app writes them.
    alice.call(R"js({"cmd":"execute","sql":"UPDATE todos SET description = 'Whole milk', completed = 1 WHERE id = 't1'"})js");
    alice.call(R"js({"cmd":"execute","sql":"INSERT INTO todos (id, list_id, description, completed, created_at) VALUES ('up1', 'groceries', 'Butter', 0, '2026-01-02 03:04:05+00')"})js");
    alice.call(R"js({"cmd":"execute","sql":"DELETE FROM todos WHERE id = 't2'"})js");
    // The writer sees its own writes at once (local, not yet confirmed).
    CHECK(alice.rows("SELECT description, completed FROM todos WHERE id = 't1'") == "Whole milk|1");

    // They reach Postgres ...
    const std::string applied = "SELECT string_agg(id || '|' || description || '|' || completed::int, ',' ORDER BY id) "
                                "FROM todos WHERE id IN ('t1', 't2', 'up1')";
    const std::string want = "t1|Whole milk [saved]|1,up1|Butter [saved]|0";
    std::string source_rows;
    const bool reached = sluice::test::eventually([&] {
        pqxx::connection c(d.source);
        source_rows = pqxx::nontransaction(c).exec1(applied)[0].c_str();
        return source_rows == want;
    }, 120);
    INFO("uploads: " << alice.call(R"({"cmd":"uploads"})") << "\nalice's log:\n" << alice.log());
    REQUIRE(reached);
    // ... and come back: the writer's local rows become the server's (stamped) ones, and so do the other user's.
    require_in_sync(alice, d, "alice", "the writer after its upload");
    require_in_sync(bob, d, "bob", "the other user after alice's upload");
    CHECK(alice.rows("SELECT count(*) FROM ps_crud") == "0");

    // Every batch was answered 200 and applied in full.
    const auto uploads = alice.call(R"({"cmd":"uploads"})");
    simdjson::dom::parser parser;
    int batches = 0;
    for (auto upload : parser.parse(uploads)["uploads"].get_array()) {
        INFO(uploads);
        CHECK(upload["status"].get_int64().value() == 200);
        std::string_view status;
        CHECK(upload["response"]["data"]["status"].get(status) == simdjson::SUCCESS);
        CHECK(status == "applied");
        ++batches;
    }
    CHECK(batches >= 1);
    // The writer asked for its write checkpoint the way its mode says.
    const auto requests = alice.call(R"({"cmd":"requests"})");
    INFO(requests);
    if (mode == "legacy") {
        CHECK(requests.find("\"GET /write-checkpoint2.json\":") != std::string::npos);
    } else {
        CHECK(requests.find("\"POST /sync/checkpoint-request\":") != std::string::npos);
    }
    alice.close();
    bob.close();
    sluice->send_signal(SIGTERM);
    CHECK(sluice->wait_exit() == 0);
}