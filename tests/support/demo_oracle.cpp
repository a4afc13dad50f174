// The demo oracle (see demo_oracle.h).
#include "tests/support/demo_oracle.h"

#include <chrono>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include <pqxx/pqxx>

#include "config/rules/json.h"
#include "server/storage/bucket_reader.h"
#include "tests/support/client_view.h"
#include "tests/support/pg.h"

namespace sluice::test {

const std::vector<std::string> kDemoUsers{"u0", "u1", "u2", "u3", "u4", "u5"};

namespace {

using Rows = std::map<std::pair<std::string, std::string>, std::string>;

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

std::string demo_file(const std::string& name) { return read_file(std::string(SLUICE_SOURCE_DIR) + "/deploy/demo/" + name); }

int pick_in(std::mt19937& random, int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(random); }
std::string list(std::mt19937& r) { return "l" + std::to_string(pick_in(r, 0, 12)); }
std::string todo(std::mt19937& r) { return "t" + std::to_string(pick_in(r, 0, 40)); }

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
        if (!row) {
            rows[key] = "<undecodable: " + error + ">";
            continue;
        }
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

}  // namespace

OracleRows rules_rows(pqxx::connection& source, const std::string& user) { return oracle(source, user); }

OracleRows project_rows(const ClientRows& client) { return project(client); }

std::string compare_rows(const std::string& u, const OracleRows& expected, const OracleRows& actual) {
    std::string differences;
    for (const auto& [key, value] : expected) {
        auto it = actual.find(key);
        if (it == actual.end()) {
            differences += u + " lacks " + key.first + "/" + key.second + "\n";
        } else if (it->second != value) {
            differences += u + " has " + key.first + "/" + key.second + " = " + it->second + ", expected " + value + "\n";
        }
    }
    for (const auto& [key, value] : actual) {
        if (!expected.contains(key)) {
            differences += u + " holds " + key.first + "/" + key.second + " outside its buckets\n";
        }
    }
    return differences;
}

void create_demo_schema(const std::string& source_uri) {
    exec_sql(source_uri, demo_file("schema.sql"));
    for (const auto& u : kDemoUsers) {
        exec_sql(source_uri, "INSERT INTO users VALUES ('" + u + "', '" + u + "') ON CONFLICT DO NOTHING");
    }
}

std::shared_ptr<const config::rules::RuleSet> demo_rules() {
    return config::rules::RuleSet::compile(demo_file("sync-rules.yaml"), "sync-rules.yaml", {"1#"}).rules;
}

DemoWorkload::DemoWorkload(const std::string& uri, unsigned seed) : DemoWorkload(uri, seed, kDemoUsers) {}

DemoWorkload::DemoWorkload(const std::string& uri, unsigned seed, std::vector<std::string> users)
    : m_connection(uri), m_random(seed), m_users(std::move(users)) {}

int DemoWorkload::pick(int lo, int hi) { return pick_in(m_random, lo, hi); }

std::string DemoWorkload::user() {
    return m_users[static_cast<std::size_t>(pick(0, static_cast<int>(m_users.size()) - 1))];
}

void DemoWorkload::run(int transactions) {
    for (int t = 0; t < transactions; ++t) {
        pqxx::work tx(m_connection);
        const int statements = pick(1, 4);
        for (int s = 0; s < statements; ++s) {
            one(tx);
        }
        tx.commit();
    }
}

void DemoWorkload::insert_user(const std::string& id) {
    pqxx::work tx(m_connection);
    tx.exec_params0("INSERT INTO users (id, name) VALUES ($1, $1)", id);
    tx.commit();
}

void DemoWorkload::one(pqxx::work& tx) {
    const auto word = "w" + std::to_string(m_counter++);
    switch (pick(0, 10)) {
        case 0:
            tx.exec_params0("INSERT INTO lists (id, owner_id, name) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                            list(m_random), user(), word);
            break;
        case 1:  // moves the list (and its todos) to another owner's bucket
            tx.exec_params0("UPDATE lists SET owner_id = $2 WHERE id = $1", list(m_random), user());
            break;
        case 2:
            tx.exec_params0("UPDATE lists SET name = $2 WHERE id = $1", list(m_random), word);
            break;
        case 3:
        case 4:
            tx.exec_params0(
                "INSERT INTO todos (id, list_id, description) SELECT $1, id, $3 FROM lists WHERE id = $2 "
                "ON CONFLICT (id) DO UPDATE SET description = excluded.description",
                todo(m_random), list(m_random), word);
            break;
        case 5:  // moves a todo between lists
            tx.exec_params0("UPDATE todos SET list_id = l.id FROM lists l WHERE todos.id = $1 AND l.id = $2",
                            todo(m_random), list(m_random));
            break;
        case 6:
            tx.exec_params0("DELETE FROM todos WHERE id = $1", todo(m_random));
            break;
        case 7:
            if (pick(0, 3) == 0) {
                tx.exec_params0("DELETE FROM lists WHERE id = $1", list(m_random));  // cascades to todos and shares
            }
            break;
        case 8:  // grant
            tx.exec_params0(
                "INSERT INTO list_shares (list_id, user_id) SELECT id, $2 FROM lists WHERE id = $1 "
                "ON CONFLICT DO NOTHING",
                list(m_random), user());
            break;
        case 9:  // revoke
            tx.exec_params0("DELETE FROM list_shares WHERE list_id = $1 AND user_id = $2", list(m_random), user());
            break;
        case 10:  // a transaction larger than a chunk
            tx.exec_params0("UPDATE todos SET description = description || $1", word.substr(0, 2));
            break;
    }
}


bool wait_for_marker(const std::string& storage_uri, const std::string& marker, int seconds,
                     const std::string& profile_bucket) {
    auto reader = storage::BucketReader::open(storage_uri);
    if (!reader) {
        return false;
    }
    const auto bucket = profile_bucket + "[\"" + marker + "\"]";
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (std::chrono::steady_clock::now() < deadline) {
        auto checkpoint = reader.value()->latest_checkpoint();
        if (checkpoint && checkpoint.value()) {
            auto ops = reader.value()->read_ops(bucket, 0, checkpoint.value()->op_id, 1);
            if (ops && !ops.value().empty()) {
                return true;
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling a condition, with a deadline
    }
    return false;
}

std::string compare_every_user(const config::rules::RuleSet& rules, const std::string& storage_uri,
                               const std::string& source_uri) {
    auto reader = storage::BucketReader::open(storage_uri);
    if (!reader) {
        return reader.status().to_string();
    }
    pqxx::connection source(source_uri);
    std::string differences;
    for (const auto& u : kDemoUsers) {
        differences += compare_rows(u, oracle(source, u), project(client_view(rules, *reader.value(), u)));
    }
    return differences;
}

std::string compare_client(const protocol::wire::ClientState& client, const std::string& source_uri,
                           const std::string& user) {
    ClientRows rows;
    for (const auto& [type, table] : client.tables()) {
        for (const auto& [id, data] : table) {
            rows[{type, id}] = data;
        }
    }
    pqxx::connection source(source_uri);
    return compare_rows(user, oracle(source, user), project(rows));
}

}  // namespace sluice::test
