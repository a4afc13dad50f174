// The oracle for the download path against a real Postgres: a seeded random workload (inserts,
// updates, deletes, rows moving between buckets, grants and revokes through list_shares) runs while
// the replicator snapshots and streams, across a replicator restart; then, for every user, the rows
// a client holds (reduced from bucket storage) equal the rules' queries run directly on the source.
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>
#include <pqxx/pqxx>

#include "config/rules/json.h"
#include "migrations/migrations.h"
#include "server/app/replicator.h"
#include "server/storage/migrator.h"
#include "tests/support/client_view.h"
#include "tests/support/pg.h"

namespace {

using Rows = std::map<std::pair<std::string, std::string>, std::string>;

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

const std::vector<std::string> kUsers{"u0", "u1", "u2", "u3", "u4", "u5"};

// The demo rules' queries, run directly against the source: what user `u` must hold.
Rows oracle(pqxx::connection& source, const std::string& u) {
    pqxx::read_transaction tx(source);
    Rows rows;
    const std::string visible =
        "SELECT id FROM lists WHERE owner_id = $1 UNION SELECT list_id FROM list_shares WHERE user_id = $1";
    for (const auto& r : tx.exec_params("SELECT id, name || '|' || owner_id FROM lists WHERE id IN (" + visible + ")", u)) {
        rows[{"lists", r[0].as<std::string>()}] = r[1].as<std::string>();
    }
    for (const auto& r : tx.exec_params(
             "SELECT id, description || '|' || list_id FROM todos WHERE list_id IN (" + visible + ")", u)) {
        rows[{"todos", r[0].as<std::string>()}] = r[1].as<std::string>();
    }
    for (const auto& r : tx.exec_params("SELECT id, name FROM users WHERE id = $1", u)) {
        rows[{"users", r[0].as<std::string>()}] = r[1].as<std::string>();
    }
    return rows;
}

// The same fields, from the client's rows.
Rows project(const sluice::test::ClientRows& client) {
    Rows rows;
    for (const auto& [key, data] : client) {
        std::string error;
        auto row = sluice::config::rules::json_object_to_row(data, &error);
        REQUIRE(row.has_value());
        auto text = [&](const char* column) {
            const auto* v = row->find(column);
            return v != nullptr && v->to_text() ? *v->to_text() : std::string("<null>");
        };
        if (key.first == "lists") {
            rows[key] = text("name") + "|" + text("owner_id");
        } else if (key.first == "todos") {
            rows[key] = text("description") + "|" + text("list_id");
        } else {
            rows[key] = text("name");
        }
    }
    return rows;
}

// Random writes to the demo schema; every statement is valid whatever state the tables are in.
class Workload {
public:
    Workload(std::string uri, unsigned seed) : m_connection(uri), m_random(seed) {}

    void run(int transactions) {
        for (int t = 0; t < transactions; ++t) {
            pqxx::work tx(m_connection);
            const int statements = pick(1, 4);
            for (int s = 0; s < statements; ++s) {
                one(tx);
            }
            tx.commit();
        }
    }

    void insert_user(const std::string& id) {
        pqxx::work tx(m_connection);
        tx.exec_params0("INSERT INTO users (id, name) VALUES ($1, $1)", id);
        tx.commit();
    }

private:
    int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(m_random); }
    std::string user() { return kUsers[static_cast<std::size_t>(pick(0, static_cast<int>(kUsers.size()) - 1))]; }
    std::string list() { return "l" + std::to_string(pick(0, 12)); }
    std::string todo() { return "t" + std::to_string(pick(0, 40)); }

    void one(pqxx::work& tx) {
        const auto word = "w" + std::to_string(m_counter++);
        switch (pick(0, 10)) {
            case 0:
                tx.exec_params0("INSERT INTO lists (id, owner_id, name) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                                list(), user(), word);
                break;
            case 1:  // moves the list (and its todos) to another owner's bucket
                tx.exec_params0("UPDATE lists SET owner_id = $2 WHERE id = $1", list(), user());
                break;
            case 2:
                tx.exec_params0("UPDATE lists SET name = $2 WHERE id = $1", list(), word);
                break;
            case 3:
            case 4:
                tx.exec_params0(
                    "INSERT INTO todos (id, list_id, description) SELECT $1, id, $3 FROM lists WHERE id = $2 "
                    "ON CONFLICT (id) DO UPDATE SET description = excluded.description",
                    todo(), list(), word);
                break;
            case 5:  // moves a todo between lists
                tx.exec_params0("UPDATE todos SET list_id = l.id FROM lists l WHERE todos.id = $1 AND l.id = $2",
                                todo(), list());
                break;
            case 6:
                tx.exec_params0("DELETE FROM todos WHERE id = $1", todo());
                break;
            case 7:
                if (pick(0, 3) == 0) {
                    tx.exec_params0("DELETE FROM lists WHERE id = $1", list());  // cascades to todos and shares
                }
                break;
            case 8:  // grant
                tx.exec_params0(
                    "INSERT INTO list_shares (list_id, user_id) SELECT id, $2 FROM lists WHERE id = $1 "
                    "ON CONFLICT DO NOTHING",
                    list(), user());
                break;
            case 9:  // revoke
                tx.exec_params0("DELETE FROM list_shares WHERE list_id = $1 AND user_id = $2", list(), user());
                break;
            case 10:  // a transaction larger than a chunk
                tx.exec_params0("UPDATE todos SET description = description || $1", word.substr(0, 2));
                break;
        }
    }

    pqxx::connection m_connection;
    std::mt19937 m_random;
    int m_counter = 0;
};

struct Fixture {
    std::string source = sluice::test::fresh_database("oracle_source");
    std::string storage = sluice::test::fresh_database("oracle_storage");
    std::shared_ptr<const sluice::config::rules::RuleSet> rules;

    Fixture() {
        const auto dir = std::string(SLUICE_SOURCE_DIR) + "/deploy/demo/";
        sluice::test::exec_sql(source, read_file(dir + "schema.sql"));
        for (const auto& u : kUsers) {
            sluice::test::exec_sql(source, "INSERT INTO users VALUES ('" + u + "', '" + u + "') ON CONFLICT DO NOTHING");
        }
        pqxx::connection c(storage);
        REQUIRE(sluice::storage::migrate(c, sluice::migrations::embedded()).is_ok());
        auto compiled = sluice::config::rules::RuleSet::compile(read_file(dir + "sync-rules.yaml"), "sync-rules.yaml",
                                                                {"1#"});
        REQUIRE(compiled.rules);
        rules = compiled.rules;
    }

    sluice::app::ReplicatorConfig config() const {
        sluice::app::ReplicatorConfig c;
        c.source_conninfo = source;
        c.storage_conninfo = storage;
        c.slot = "oracle_slot";
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
        m_thread = std::thread([this] { m_status = m_replicator.run(m_stop); });
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
void wait_for_marker(const std::string& storage, const std::string& marker) {
    auto reader = sluice::storage::BucketReader::open(storage).value();
    const auto bucket = "1#own_profile[\"" + marker + "\"]";
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (std::chrono::steady_clock::now() < deadline) {
        auto checkpoint = reader->latest_checkpoint();
        if (checkpoint && checkpoint.value()) {
            auto ops = reader->read_ops(bucket, 0, checkpoint.value()->op_id, 1);
            if (ops && !ops.value().empty()) {
                return;
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling a condition, with a deadline
    }
    FAIL("storage never caught up with marker " << marker);
}

void check_every_user(const Fixture& f) {
    auto reader = sluice::storage::BucketReader::open(f.storage).value();
    pqxx::connection source(f.source);
    for (const auto& u : kUsers) {
        INFO("user " << u);
        const auto expected = oracle(source, u);
        const auto actual = project(sluice::test::client_view(*f.rules, *reader, u));
        CHECK(actual == expected);
    }
}

}  // namespace

TEST_CASE("random workload during snapshot and streaming, across a restart: every user holds what the rules say") {
    for (const unsigned seed : {1U, 2U, 3U}) {
        INFO("seed " << seed);
        Fixture f;
        Workload workload(f.source, seed);
        workload.run(40);  // before the slot exists: reaches storage through the snapshot
        {
            Running replicator(f.config());
            workload.run(150);  // races the snapshot, then streams
            workload.insert_user("marker1");
            wait_for_marker(f.storage, "marker1");
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
            wait_for_marker(f.storage, "marker2");
        }
        check_every_user(f);
    }
}

TEST_CASE("a snapshot interrupted part-way resumes and converges") {
    Fixture f;
    Workload workload(f.source, 7);
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
    wait_for_marker(f.storage, "marker");
    check_every_user(f);
}

TEST_CASE("a heartbeat advances the durable LSN while only unpublished tables change") {
    Fixture f;
    sluice::test::exec_sql(f.source, "CREATE TABLE unpublished (x int)");
    auto config = f.config();
    config.heartbeat_interval = std::chrono::seconds(1);
    Running replicator(config);
    Workload(f.source, 1).insert_user("marker");
    wait_for_marker(f.storage, "marker");
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
