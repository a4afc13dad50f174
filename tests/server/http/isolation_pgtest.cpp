// Isolation under churn: 30 users, each with a live client (half over WebSocket, half over the HTTP
// stream), while a seeded random workload grants and revokes lists through list_shares, moves lists
// between owners and todos between lists. The workload records, inside each transaction before it
// commits, which rows every user may see in that state. At every checkpoint_complete each client
// applies, everything it holds must be visible to its user in some state of the current round (the
// states since every client last caught up), and every bucket it holds must be one its user may read.
// At the end of each round every client equals the demo rules' queries run against Postgres.
#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include <catch2/catch.hpp>
#include <pqxx/pqxx>

#include "protocol/wire/client_state.h"
#include "tests/server/http/stack.h"
#include "tests/server/http/test_client.h"
#include "tests/support/demo_oracle.h"
#include "tests/support/pg.h"

namespace {

using sluice::protocol::wire::ClientState;
using sluice::test::Stack;

constexpr int kUsers = 30;
constexpr int kLists = 20;
constexpr int kTodos = 60;
constexpr int kRounds = 8;
constexpr int kTransactionsPerRound = 25;

std::string user_name(int i) { return "u" + std::to_string(i); }

// What each user may see, as a union over the states of the current round.
class Visibility {
public:
    // Adds the state `tx` sees (call inside the workload's transaction, before it commits). With
    // Round::kNew, forgets the states before it first (a new round starts from this state).
    enum class Round : std::uint8_t { kSame, kNew };
    void add_state(pqxx::work& tx, Round round = Round::kSame) {
        auto rows = tx.exec(
            "WITH visible AS (SELECT u.id AS user_id, l.id AS list_id FROM users u JOIN lists l ON l.owner_id = u.id "
            "                 UNION SELECT user_id, list_id FROM list_shares) "
            "SELECT user_id, 'lists', list_id FROM visible "
            "UNION ALL SELECT v.user_id, 'todos', t.id FROM visible v JOIN todos t ON t.list_id = v.list_id "
            "UNION ALL SELECT id, 'users', id FROM users");
        std::lock_guard lock(m_mutex);
        if (round == Round::kNew) {
            m_users.clear();
        }
        for (const auto& r : rows) {
            auto& user = m_users[r[0].as<std::string>()];
            const auto table = r[1].as<std::string>();
            const auto id = r[2].as<std::string>();
            user.rows.emplace(table, id);
            if (table == "lists") {
                user.buckets.insert("1#user_lists[\"" + id + "\"]");
            }
        }
        for (auto& [name, user] : m_users) {
            user.buckets.insert("1#own_profile[\"" + name + "\"]");
        }
    }
    // "" when everything `client` holds is visible to `user` in some state of this round.
    std::string check(const std::string& user, const ClientState& client) const {
        std::lock_guard lock(m_mutex);
        std::string problems;
        auto it = m_users.find(user);
        for (const auto& [table, rows] : client.tables()) {
            for (const auto& [id, data] : rows) {
                if (it == m_users.end() || !it->second.rows.contains({table, id})) {
                    problems += user + " holds " + table + "/" + id + where(client, {table, id}) + "; ";
                }
            }
        }
        for (const auto& [bucket, state] : client.buckets()) {
            if (it == m_users.end() || !it->second.buckets.contains(bucket)) {
                problems += user + " holds bucket " + bucket + "; ";
            }
        }
        return problems;
    }

private:
    // " (in bucket B at op N, ...)": which of the client's buckets put the row there.
    static std::string where(const ClientState& client, const ClientState::RowId& row) {
        std::string out;
        for (const auto& [bucket, state] : client.buckets()) {
            if (auto found = state.rows.find(row); found != state.rows.end()) {
                for (const auto& [subkey, put] : found->second) {
                    out += (out.empty() ? " (in " : ", ") + bucket + " at op " + std::to_string(put.op_id);
                }
            }
        }
        return out.empty() ? out : out + ")";
    }
    struct User {
        std::set<std::pair<std::string, std::string>> rows;
        std::set<std::string> buckets;
    };
    mutable std::mutex m_mutex;
    std::map<std::string, User> m_users;
};

// One user's live client on its own thread. Assertions happen on the main thread: this records.
class Client {
public:
    Client(std::uint16_t port, int index, const Visibility& visibility)
        : m_port(port), m_user(user_name(index)), m_websocket(index % 2 == 0), m_visibility(visibility) {
        m_thread = std::thread([this] { run(); });
    }
    ~Client() {
        m_stop = true;
        m_thread.join();
    }
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    [[nodiscard]] int round_seen() const { return m_round_seen.load(); }
    [[nodiscard]] int checkpoints_checked() const { return m_checked.load(); }
    void reconnect() { m_reconnect = true; }
    [[nodiscard]] std::string problems() const {
        std::lock_guard lock(m_mutex);
        return m_problems;
    }
    [[nodiscard]] sluice::test::ClientRows rows() const {
        std::lock_guard lock(m_mutex);
        sluice::test::ClientRows out;
        for (const auto& [table, rows] : m_state.tables()) {
            for (const auto& [id, data] : rows) {
                out.emplace(std::pair(table, id), data);
            }
        }
        return out;
    }
    [[nodiscard]] const std::string& user() const { return m_user; }

private:
    void run() {
        while (!m_stop) {
            std::string body;
            {
                std::lock_guard lock(m_mutex);
                body = sluice::test::request_body(m_state);
            }
            m_reconnect = false;
            if (m_websocket) {
                sluice::test::WsClient ws(m_port, sluice::test::token_for(m_user));
                if (ws.status() != 101) {
                    record("WebSocket upgrade refused: " + std::to_string(ws.status()));
                    return;
                }
                ws.send_text(R"({"type":"sync_request",)" + body.substr(1));
                read([&] { return ws.next_message(std::chrono::seconds(1)); });
            } else {
                sluice::test::StreamClient stream(m_port, sluice::test::token_for(m_user), body);
                if (stream.status() != 200) {
                    record("stream refused: " + std::to_string(stream.status()));
                    return;
                }
                read([&] { return stream.next_line(std::chrono::seconds(1)); });
            }
        }
    }

    template <typename Next>
    void read(Next next) {
        while (!m_stop && !m_reconnect) {
            auto line = next();
            if (!line) {
                continue;  // a quiet second (or the end of the stream: the next read says so again)
            }
            std::lock_guard lock(m_mutex);
            if (auto status = m_state.apply_line(*line); !status) {
                m_problems += m_user + ": " + status.to_string() + " for " + line->substr(0, 200) + "\n";
                return;
            }
            if (!line->starts_with(R"({"checkpoint_complete")")) {
                continue;
            }
            if (m_state.last_outcome() != ClientState::Outcome::kApplied) {
                m_problems += m_user + ": checksum mismatch\n";
                continue;
            }
            m_problems += m_visibility.check(m_user, m_state);
            ++m_checked;
            if (auto row = m_state.row("users", m_user)) {
                if (auto at = row->find("round-"); at != std::string::npos) {
                    m_round_seen = std::atoi(row->c_str() + at + 6);
                }
            }
        }
    }

    void record(const std::string& problem) {
        std::lock_guard lock(m_mutex);
        m_problems += m_user + ": " + problem + "\n";
    }

    std::uint16_t m_port;
    std::string m_user;
    bool m_websocket;
    const Visibility& m_visibility;
    mutable std::mutex m_mutex;  // guards m_state and m_problems: the client thread and the test thread
    ClientState m_state;
    std::string m_problems;
    std::atomic<int> m_round_seen{-1};
    std::atomic<int> m_checked{0};
    std::atomic<bool> m_stop{false};
    std::atomic<bool> m_reconnect{false};
    std::thread m_thread;
};

// One random statement of the workload.
void random_statement(pqxx::work& tx, std::mt19937& random, int& counter) {
    auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(random); };
    const auto user = user_name(pick(0, kUsers - 1));
    const auto list = "L" + std::to_string(pick(0, kLists - 1));
    const auto todo = "T" + std::to_string(pick(0, kTodos - 1));
    const auto word = "w" + std::to_string(counter++);
    switch (pick(0, 9)) {
        case 0:
        case 1:
        case 2:  // grant
            tx.exec_params0("INSERT INTO list_shares (list_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING", list,
                            user);
            break;
        case 3:
        case 4:  // revoke one, or every share of a list
            if (pick(0, 3) == 0) {
                tx.exec_params0("DELETE FROM list_shares WHERE list_id = $1", list);
            } else {
                tx.exec_params0(
                    "DELETE FROM list_shares WHERE ctid = (SELECT ctid FROM list_shares WHERE user_id = $1 LIMIT 1)",
                    user);
            }
            break;
        case 5:  // a list changes owner: its todos move to the new owner's view
            tx.exec_params0("UPDATE lists SET owner_id = $2, name = $3 WHERE id = $1", list, user, word);
            break;
        case 6:
        case 7:
            tx.exec_params0(
                "INSERT INTO todos (id, list_id, description) VALUES ($1, $2, $3) "
                "ON CONFLICT (id) DO UPDATE SET description = excluded.description",
                todo, list, word);
            break;
        case 8:  // a todo moves to another list
            tx.exec_params0("UPDATE todos SET list_id = $2 WHERE id = $1", todo, list);
            break;
        case 9:
            tx.exec_params0("DELETE FROM todos WHERE id = $1", todo);
            break;
    }
}

// For a failure message: the op log of every row a problem names ("holds todos/T20").
std::string storage_history(const std::string& storage_uri, const std::string& problems) {
    std::string out;
    pqxx::connection storage(storage_uri);
    pqxx::nontransaction tx(storage);
    for (std::size_t at = problems.find(" holds "); at != std::string::npos; at = problems.find(" holds ", at + 1)) {
        const auto slash = problems.find('/', at);
        const auto end = problems.find_first_of(" ;", slash);
        if (slash == std::string::npos || end == std::string::npos) {
            break;
        }
        const auto id = problems.substr(slash + 1, end - slash - 1);
        out += "ops of " + id + ":\n";
        for (const auto& r : tx.exec_params("SELECT bucket, op_id, op, coalesce(data, '') FROM sluice.ops "
                                            "WHERE object_id = $1 ORDER BY op_id",
                                            id)) {
            out += "  " + r[0].as<std::string>() + " op " + r[1].as<std::string>() + " kind " +
                   r[2].as<std::string>() + " " + r[3].as<std::string>() + "\n";
        }
    }
    return out;
}

}  // namespace

TEST_CASE("Isolation: 30 users, random grants and revokes - no client ever holds a row outside its buckets") {
    Stack stack("isolation");
    std::mt19937 random(20261127);
    int counter = 0;
    Visibility visibility;
    pqxx::connection source(stack.source);
    {
        pqxx::work tx(source);
        for (int u = 0; u < kUsers; ++u) {
            tx.exec_params0("INSERT INTO users (id, name) VALUES ($1, 'round-0') ON CONFLICT (id) DO UPDATE SET name = 'round-0'",
                            user_name(u));
        }
        for (int l = 0; l < kLists; ++l) {
            tx.exec_params0("INSERT INTO lists (id, owner_id, name) VALUES ($1, $2, $1)", "L" + std::to_string(l),
                            user_name(l % kUsers));
        }
        for (int t = 0; t < kTodos; t += 2) {
            tx.exec_params0("INSERT INTO todos (id, list_id, description) VALUES ($1, $2, 'first')",
                            "T" + std::to_string(t), "L" + std::to_string(t % kLists));
        }
        visibility.add_state(tx);
        tx.commit();
    }

    std::vector<std::unique_ptr<Client>> clients;
    for (int u = 0; u < kUsers; ++u) {
        clients.push_back(std::make_unique<Client>(stack.port(), u, visibility));
    }
    auto all_reached = [&](int round) {
        for (const auto& c : clients) {
            if (c->round_seen() < round || !c->problems().empty()) {
                return false;
            }
        }
        return true;
    };
    auto problems = [&] {
        std::string out;
        for (const auto& c : clients) {
            out += c->problems();
        }
        return out;
    };
    Stack::wait_until([&] { return all_reached(0) || !problems().empty(); }, "every client's first checkpoint");
    REQUIRE(problems() == "");  // the comparison prints what each client found

    for (int round = 1; round <= kRounds; ++round) {
        INFO("round " << round);
        if (round == kRounds / 2) {
            for (auto& c : clients) {
                c->reconnect();  // resume from what each holds, mid-test
            }
        }
        for (int t = 0; t < kTransactionsPerRound; ++t) {
            pqxx::work tx(source);
            const int statements = std::uniform_int_distribution<int>(1, 3)(random);
            for (int s = 0; s < statements; ++s) {
                random_statement(tx, random, counter);
            }
            visibility.add_state(tx);
            tx.commit();
        }
        {
            // The round's marker: every user's profile names it; a client that shows it has caught up.
            pqxx::work tx(source);
            tx.exec_params0("UPDATE users SET name = $1", "round-" + std::to_string(round));
            visibility.add_state(tx);
            tx.commit();
        }
        Stack::wait_until([&] { return all_reached(round) || !problems().empty(); }, "every client to catch up");
        INFO(storage_history(stack.storage, problems()));
        REQUIRE(problems() == "");  // the comparison prints what each client found
        // Caught up and quiet: every client equals the rules' queries, exactly.
        std::string differences;
        for (const auto& c : clients) {
            differences += sluice::test::compare_rows(c->user(), sluice::test::rules_rows(source, c->user()),
                                                      sluice::test::project_rows(c->rows()));
        }
        INFO(differences);
        CHECK(differences.empty());
        // The next round's states start from this one.
        pqxx::work tx(source);
        visibility.add_state(tx, Visibility::Round::kNew);
        tx.commit();
    }
    int checked = 0;
    for (const auto& c : clients) {
        checked += c->checkpoints_checked();
    }
    CHECK(checked >= kUsers * kRounds);
    CHECK(problems().empty());
    CHECK(stack.server->stats().auth_failures.load() == 0);
}
