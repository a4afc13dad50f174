// Sync Streams end to end over a real WebSocket, against real Postgres and replication: a client
// subscribes to lists' todos with subscription parameters, receives only what the rules allow,
// sees a grant and a revoke through list_shares (a subquery's table) change its buckets, and
// subscribes and unsubscribes live without reconnecting. Then isolation under churn: random grants,
// revokes, moves and random subscriptions (to lists a user may or may not read); no client ever
// holds a todo outside its subscriptions and what it may read, and each round ends with every
// client equal to the rules' query run against Postgres.
#include <map>
#include <random>
#include <set>

#include <catch2/catch.hpp>
#include <pqxx/pqxx>

#include "protocol/wire/client_state.h"
#include "server/storage/pg_array.h"
#include "tests/server/http/stack.h"
#include "tests/server/http/test_client.h"
#include "tests/support/pg.h"

namespace {

using sluice::protocol::wire::ClientState;
using sluice::test::read_until;
using sluice::test::Stack;
using sluice::test::token_for;
using sluice::test::WsClient;

// The demo schema, read through streams: a profile for everyone, and a list's todos on demand for
// the lists a user owns or is shared.
const char* kStreams = R"(
config:
  edition: 3
with:
  readable_lists: SELECT id FROM lists WHERE owner_id = auth.user_id()
  shared_lists: SELECT list_id FROM list_shares WHERE user_id = auth.user_id()
streams:
  profile:
    auto_subscribe: true
    query: SELECT * FROM users WHERE id = auth.user_id()
  list_todos:
    priority: 2
    query: >
      SELECT * FROM todos WHERE list_id = subscription.parameter('list')
      AND (list_id IN readable_lists OR list_id IN shared_lists)
)";

template <typename Lists>
std::string subscriptions(const Lists& lists) {
    std::string out = R"({"include_defaults":true,"subscriptions":[)";
    bool first = true;
    for (const auto& list : lists) {
        out += (first ? "" : ",") + std::string(R"({"stream":"list_todos","parameters":{"list":")") + list + "\"}}";
        first = false;
    }
    return out + "]}";
}
std::string subscriptions(std::initializer_list<const char*> lists) { return subscriptions<>(lists); }

// The value of "key":"..." in a flat JSON object ("" when absent).
std::string json_field(const std::string& json, const std::string& key) {
    const auto at = json.find("\"" + key + "\":\"");
    if (at == std::string::npos) {
        return "";
    }
    const auto begin = at + key.size() + 4;
    return json.substr(begin, json.find('"', begin) - begin);
}

// One user's WebSocket client with a changing subscription set, read from the test thread.
class StreamsUser {
public:
    StreamsUser(std::uint16_t port, std::string user) : m_user(std::move(user)), m_ws(port, token_for(m_user)) {
        REQUIRE(m_ws.status() == 101);
        m_ws.send_text(R"({"type":"sync_request","buckets":[],"raw_data":true,"streams":)" + subscriptions(m_lists) + "}");
    }
    void subscribe(std::set<std::string> lists) {
        m_round_lists.insert(lists.begin(), lists.end());
        m_lists = std::move(lists);
        m_ws.send_text(R"({"type":"update_subscriptions","streams":)" + subscriptions(m_lists) + "}");
        m_answered = false;  // the answer is the next full checkpoint
    }
    void new_round() { m_round_lists = m_lists; }
    // Reads until the client shows `marker` as its profile's name, at a checkpoint that answers its
    // last subscription change; checks every checkpoint_complete on the way with `allowed` (the
    // todos the user may read in some state of this round).
    void catch_up(const std::string& marker, const std::set<std::string>& allowed, std::string& problems) {
        for (;;) {
            auto line = m_ws.next_message();
            REQUIRE(line.has_value());
            if (line->starts_with(R"({"checkpoint":)")) {
                m_answered = true;
            }
            auto status = m_client.apply_line(*line);
            INFO(*line);
            REQUIRE(status.is_ok());
            if (!line->starts_with(R"({"checkpoint_complete")")) {
                continue;
            }
            REQUIRE(m_client.last_outcome() == ClientState::Outcome::kApplied);
            for (const auto& [id, row] : todos()) {
                if (!allowed.contains(id)) {
                    problems += m_user + " holds todo " + id + ", which it may not read; ";
                }
                if (!m_round_lists.contains(json_field(row, "list_id"))) {
                    problems += m_user + " holds todo " + id + " of unsubscribed list " + json_field(row, "list_id") + "; ";
                }
            }
            if (m_answered && m_client.row("users", m_user) && json_field(*m_client.row("users", m_user), "name") == marker) {
                return;
            }
        }
    }
    [[nodiscard]] std::map<std::string, std::string> todos() const {
        std::map<std::string, std::string> out;
        if (auto it = m_client.tables().find("todos"); it != m_client.tables().end()) {
            out.insert(it->second.begin(), it->second.end());
        }
        return out;
    }
    [[nodiscard]] const std::set<std::string>& lists() const { return m_lists; }
    [[nodiscard]] const std::string& user() const { return m_user; }

private:
    std::string m_user;
    WsClient m_ws;
    ClientState m_client;
    std::set<std::string> m_lists;        // subscribed now
    std::set<std::string> m_round_lists;  // subscribed at some time this round
    bool m_answered = true;
};

}  // namespace

TEST_CASE("Sync Streams over WebSocket: subscribe, receive, grant and revoke through a subquery, unsubscribe") {
    Stack stack("streams_ws", {}, kStreams);
    sluice::test::exec_sql(stack.source, "INSERT INTO todos (id, list_id, description) VALUES ('t3','l2','Slides')");
    WsClient ws(stack.port(), token_for("u2"));
    REQUIRE(ws.status() == 101);
    // u2 asks for l1 (u1's: not allowed yet) and its own l2.
    ws.send_text(R"({"type":"sync_request","buckets":[],"raw_data":true,"streams":)" + subscriptions({"l1", "l2"}) + "}");
    ClientState client;
    auto next = [&] { return ws.next_message(); };
    auto lines = read_until(next, client, [&] { return client.row("todos", "t3").has_value(); });
    CHECK(lines.front().find(R"("streams":[{"name":"profile","is_default":true,"errors":[]},{"name":"list_todos")") !=
          std::string::npos);
    CHECK(lines.front().find(R"("subscriptions":[{"sub":1}])") != std::string::npos);
    CHECK(client.row("users", "u2"));
    CHECK(client.row("todos", "t2"));
    CHECK_FALSE(client.row("todos", "t1"));  // a subscription only narrows what the rules allow

    // A share of l1 with u2 changes a subquery's rows: the l1 subscription now brings t1.
    sluice::test::exec_sql(stack.source, "INSERT INTO list_shares (list_id, user_id) VALUES ('l1', 'u2')");
    (void)read_until(next, client, [&] { return client.row("todos", "t1").has_value(); });

    // Unsubscribe from l2 without reconnecting: a full checkpoint without its bucket.
    ws.send_text(R"({"type":"update_subscriptions","streams":)" + subscriptions({"l1"}) + "}");
    lines = read_until(next, client, [&] { return !client.row("todos", "t2").has_value(); });
    CHECK(lines.front().starts_with(R"({"checkpoint":)"));
    CHECK_FALSE(client.row("todos", "t3"));
    CHECK(client.row("todos", "t1"));

    // The share is revoked: the l1 bucket goes at the next checkpoint.
    sluice::test::exec_sql(stack.source, "DELETE FROM list_shares WHERE list_id = 'l1' AND user_id = 'u2'");
    (void)read_until(next, client, [&] { return !client.row("todos", "t1").has_value(); });
    CHECK(client.row("users", "u2"));

    // Subscribe to l2 again: its rows come back; live changes to it arrive as usual.
    ws.send_text(R"({"type":"update_subscriptions","streams":)" + subscriptions({"l1", "l2"}) + "}");
    (void)read_until(next, client, [&] { return client.row("todos", "t2").has_value() && client.row("todos", "t3"); });
    sluice::test::exec_sql(stack.source, "UPDATE todos SET description = 'Slides v2' WHERE id = 't3'");
    (void)read_until(next, client, [&] { return client.row("todos", "t3")->find("Slides v2") != std::string::npos; });
    CHECK_FALSE(client.row("todos", "t1"));
    CHECK(client.checksum_failures() == 0);
}

TEST_CASE("Sync Streams over the HTTP stream: subscriptions in the request, errors in the checkpoint") {
    Stack stack("streams_http", {}, kStreams);
    sluice::test::StreamClient stream(
        stack.port(), token_for("u1"),
        R"({"raw_data":true,"streams":{"include_defaults":false,"subscriptions":[{"stream":"list_todos","parameters":{"list":"l1"}},{"stream":"nope"}]}})");
    REQUIRE(stream.status() == 200);
    ClientState client;
    auto lines = read_until([&] { return stream.next_line(); }, client, [&] { return client.row("todos", "t1").has_value(); });
    CHECK(lines.front().find(R"({"name":"nope","is_default":false,"errors":[{"subscription":1,)") != std::string::npos);
    CHECK_FALSE(client.row("users", "u1"));  // include_defaults false: no profile
    CHECK_FALSE(client.row("todos", "t2"));
}

TEST_CASE("Sync Streams isolation: random grants, revokes, moves and subscriptions, nothing outside them, ever") {
    constexpr int kUsers = 8;
    constexpr int kLists = 6;
    constexpr int kTodos = 24;
    constexpr int kRounds = 6;
    Stack stack("streams_iso", {}, kStreams);
    pqxx::connection source(stack.source);
    std::mt19937 random(20261127);
    auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(random); };
    auto user = [](int i) { return "s" + std::to_string(i); };
    auto list = [](int i) { return "sl" + std::to_string(i); };
    {
        pqxx::work tx(source);
        for (int u = 0; u < kUsers; ++u) {
            tx.exec_params0("INSERT INTO users (id, name) VALUES ($1, 'round-0')", user(u));
        }
        for (int l = 0; l < kLists; ++l) {
            tx.exec_params0("INSERT INTO lists (id, owner_id, name) VALUES ($1, $2, $1)", list(l), user(l % kUsers));
        }
        for (int t = 0; t < kTodos; ++t) {
            tx.exec_params0("INSERT INTO todos (id, list_id, description) VALUES ($1, $2, 'first')",
                            "st" + std::to_string(t), list(t % kLists));
        }
        tx.commit();
    }
    // Per user, the todos it may read in some state of the current round (recorded inside each
    // transaction, before it commits).
    std::map<std::string, std::set<std::string>> allowed;
    auto record_state = [&](pqxx::work& tx) {
        for (const auto& r : tx.exec(
                 "SELECT v.user_id, t.id FROM (SELECT owner_id AS user_id, id AS list_id FROM lists "
                 "UNION SELECT user_id, list_id FROM list_shares) v JOIN todos t ON t.list_id = v.list_id")) {
            allowed[r[0].as<std::string>()].insert(r[1].as<std::string>());
        }
    };
    std::vector<std::unique_ptr<StreamsUser>> users;
    for (int u = 0; u < kUsers; ++u) {
        users.push_back(std::make_unique<StreamsUser>(stack.port(), user(u)));
    }
    std::string problems;
    std::size_t held_total = 0;  // the comparisons below are about something
    for (int round = 1; round <= kRounds; ++round) {
        INFO("round " << round);
        allowed.clear();
        {
            pqxx::work tx(source);
            record_state(tx);
        }
        for (auto& u : users) {
            u->new_round();
            if (pick(0, 1) == 0) {  // a random subset of the lists, readable or not
                std::set<std::string> lists;
                for (int l = 0; l < kLists; ++l) {
                    if (pick(0, 2) == 0) {
                        lists.insert(list(l));
                    }
                }
                u->subscribe(std::move(lists));
            }
        }
        for (int t = 0; t < 20; ++t) {
            pqxx::work tx(source);
            const auto u = user(pick(0, kUsers - 1));
            const auto l = list(pick(0, kLists - 1));
            const auto todo = "st" + std::to_string(pick(0, kTodos - 1));
            switch (pick(0, 4)) {
                case 0:
                case 1:
                    tx.exec_params0("INSERT INTO list_shares VALUES ($1, $2) ON CONFLICT DO NOTHING", l, u);
                    break;
                case 2:
                    tx.exec_params0("DELETE FROM list_shares WHERE list_id = $1", l);
                    break;
                case 3:
                    tx.exec_params0("UPDATE lists SET owner_id = $2 WHERE id = $1", l, u);
                    break;
                default:
                    tx.exec_params0("UPDATE todos SET list_id = $2, description = $3 WHERE id = $1", todo, l,
                                    "moved in round " + std::to_string(round));
            }
            record_state(tx);
            tx.commit();
        }
        const auto marker = "round-" + std::to_string(round);
        {
            pqxx::work tx(source);
            tx.exec_params0("UPDATE users SET name = $1", marker);
            record_state(tx);
            tx.commit();
        }
        for (auto& u : users) {
            u->catch_up(marker, allowed[u->user()], problems);
        }
        INFO(problems);
        REQUIRE(problems.empty());
        // Caught up: each client holds exactly the todos of its subscribed lists that it may read.
        for (auto& u : users) {
            std::vector<std::string> lists(u->lists().begin(), u->lists().end());
            std::map<std::string, std::string> expected;
            pqxx::work tx(source);
            for (const auto& r : tx.exec_params(
                     "SELECT t.id, t.description FROM todos t WHERE t.list_id = ANY($2::text[]) AND "
                     "(t.list_id IN (SELECT id FROM lists WHERE owner_id = $1) OR "
                     " t.list_id IN (SELECT list_id FROM list_shares WHERE user_id = $1))",
                     u->user(), sluice::storage::to_pg_array(lists))) {
                expected[r[0].as<std::string>()] = r[1].as<std::string>();
            }
            std::map<std::string, std::string> held;
            for (const auto& [id, row] : u->todos()) {
                held[id] = json_field(row, "description");
            }
            INFO(u->user() << " subscribed to " << lists.size() << " list(s)");
            CHECK(held == expected);
            held_total += held.size();
        }
    }
    CHECK(held_total > kUsers);
}
