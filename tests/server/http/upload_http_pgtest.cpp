// Uploads through the real server (in-process replicator, listener, HTTP/WebSocket server and
// uploader, real Postgres): POST /upload, the write coming back in the sync stream of the uploader
// and of another user who shares the row, with write_checkpoint; write-checkpoint2.json and
// checkpoint-request; the WebSocket upload message; malformed and oversized uploads. The rules are
// the demo's (deploy/demo/sync-rules.yaml), write_rules included.
#include <atomic>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>
#include <pqxx/pqxx>

#include "migrations/migrations.h"
#include "protocol/wire/client_state.h"
#include "protocol/wire/request.h"
#include "server/app/replicator.h"
#include "server/auth/token_verifier.h"
#include "server/http/server.h"
#include "server/storage/checkpoint_listener.h"
#include "server/storage/migrator.h"
#include "server/upload/uploader.h"
#include "tests/server/http/test_client.h"
#include "tests/support/jwt_signer.h"
#include "tests/support/pg.h"

namespace {

using sluice::protocol::wire::ClientState;
using sluice::test::http_request;
using sluice::test::StreamClient;
using sluice::test::WsClient;

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

const sluice::test::TestKey& key() {
    static const auto k = sluice::test::TestKey::hmac("HS256", "test-secret-0123456789abcdef", "k1");
    return k;
}

std::string token_for(const std::string& user) {
    return sluice::test::mint_token(key(), user, unix_now(), 3600, "sluice-test");
}

struct Stack {
    std::string source;
    std::string storage;
    std::shared_ptr<const sluice::config::rules::RuleSet> rules;
    std::shared_ptr<sluice::sync::CheckpointHub> hub = std::make_shared<sluice::sync::CheckpointHub>();
    std::unique_ptr<sluice::app::Replicator> replicator;
    std::atomic<bool> stop{false};
    std::thread replicator_thread;
    std::unique_ptr<sluice::storage::CheckpointListener> listener;
    std::unique_ptr<sluice::http::Server> server;

    explicit Stack(const std::string& name) {
        source = sluice::test::fresh_database(name + "_src");
        storage = sluice::test::fresh_database(name + "_sto");
        const auto dir = std::string(SLUICE_SOURCE_DIR) + "/deploy/demo/";
        sluice::test::exec_sql(source, read_file(dir + "schema.sql"));
        sluice::test::exec_sql(source,
                               "DELETE FROM list_shares; DELETE FROM todos; DELETE FROM lists; DELETE FROM users;"
                               "INSERT INTO users VALUES ('u1','User 1'),('u2','User 2');"
                               "INSERT INTO lists (id, owner_id, name) VALUES ('l1','u1','Groceries'),('l2','u2','Work');"
                               "INSERT INTO list_shares VALUES ('l1','u2');"
                               "INSERT INTO todos (id, list_id, description) VALUES ('t1','l1','Milk'),('t2','l2','Report')");
        {
            pqxx::connection c(storage);
            REQUIRE(sluice::storage::migrate(c, sluice::migrations::embedded()).is_ok());
        }
        auto compiled = sluice::config::rules::RuleSet::compile(read_file(dir + "sync-rules.yaml"),
                                                                "sync-rules.yaml", {"1#"});
        REQUIRE(compiled.rules);
        rules = compiled.rules;
        sluice::app::ReplicatorConfig rc;
        rc.source_conninfo = source;
        rc.storage_conninfo = storage;
        rc.slot = name + "_slot";
        rc.publication = name + "_pub";
        rc.rules = rules;
        replicator = std::make_unique<sluice::app::Replicator>(rc);
        replicator_thread = std::thread([this] { (void)replicator->run(stop); });
        listener = std::make_unique<sluice::storage::CheckpointListener>(
            storage, [hub = hub](const sluice::storage::ActiveCheckpoint& c) { hub->publish(c.op_id); });

        sluice::config::AuthConfig auth;
        auth.audience = {"sluice-test"};
        auth.keys = {{"k1", "HS256", key().secret(), ""}};
        auth.leeway_seconds = 60;
        auth.max_lifetime_seconds = 86400;
        auto verifier = sluice::auth::TokenVerifier::create(auth, unix_now);
        REQUIRE(verifier);
        sluice::http::ServerDeps deps;
        deps.rules = std::make_shared<const sluice::sync::RulesSource>(rules);
        deps.verifier = std::move(verifier).value();
        deps.storage = sluice::sync::StoragePool::for_conninfo(storage);
        deps.hub = hub;
        sluice::upload::UploaderOptions uo;
        uo.source_conninfo = source;
        deps.uploader = sluice::upload::Uploader::create(uo, rules);
        sluice::http::ServerOptions options;
        options.port = 0;
        options.max_upload_ops = 3;
        options.max_message_bytes = 64 * 1024;
        auto started = sluice::http::Server::start(options, deps);
        REQUIRE(started);
        server = std::move(started).value();
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
        while (hub->latest() == 0) {
            REQUIRE(std::chrono::steady_clock::now() < deadline);
            std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polling a condition, with a deadline
        }
    }
    ~Stack() {
        server.reset();
        listener.reset();
        stop = true;
        replicator_thread.join();
    }
    [[nodiscard]] std::uint16_t port() const { return server->port(); }
};

std::string request_body(const ClientState& client, const std::string& client_id) {
    sluice::protocol::wire::SyncRequest request;
    request.buckets = client.bucket_requests();
    request.raw_data = true;
    request.client_id = client_id;
    std::string out;
    sluice::protocol::wire::encode_sync_request(out, request);
    return out;
}

template <typename Next, typename Done>
void read_until(Next next, ClientState& client, Done done) {
    for (;;) {
        auto line = next();
        REQUIRE(line.has_value());
        auto status = client.apply_line(*line);
        INFO(*line << " -> " << status.to_string());
        REQUIRE(status.is_ok());
        if (line->starts_with(R"({"checkpoint_complete")") && done()) {
            REQUIRE(client.last_outcome() == ClientState::Outcome::kApplied);
            return;
        }
    }
}

std::uint64_t number_after(const std::string& body, const std::string& key) {
    const std::regex pattern("\"" + key + "\":\"([0-9]+)\"");
    std::smatch m;
    INFO(body);
    REQUIRE(std::regex_search(body, m, pattern));
    return std::stoull(m[1]);
}

sluice::test::Headers json_headers(const std::string& user) {
    return {{"Authorization", "Bearer " + token_for(user)}, {"Content-Type", "application/json"}};
}

}  // namespace

TEST_CASE("POST /upload: the write comes back to the uploader with write_checkpoint, and to a user sharing the row") {
    Stack stack("up_http");
    ClientState alice;
    ClientState bob;
    StreamClient alice_stream(stack.port(), token_for("u1"), request_body(alice, "c1"));
    StreamClient bob_stream(stack.port(), token_for("u2"), request_body(bob, "c2"));
    REQUIRE(alice_stream.status() == 200);
    REQUIRE(bob_stream.status() == 200);
    auto alice_next = [&] { return alice_stream.next_line(); };
    auto bob_next = [&] { return bob_stream.next_line(); };
    read_until(alice_next, alice, [&] { return alice.row("todos", "t1").has_value(); });
    read_until(bob_next, bob, [&] { return bob.row("todos", "t1").has_value(); });

    const std::string upload = R"({"client_id":"c1","batch_id":"1","ops":[
        {"op_id":1,"op":"PUT","type":"todos","id":"t9","data":{"list_id":"l1","description":"Tea"}},
        {"op_id":2,"op":"PATCH","type":"todos","id":"t1","data":{"completed":true}}]})";
    const auto answer = http_request(stack.port(), "POST", "/upload", json_headers("u1"), upload);
    INFO(answer.body);
    REQUIRE(answer.status == 200);
    CHECK(answer.body.find(R"("status":"applied")") != std::string::npos);
    CHECK(answer.body.find(R"("replayed":false)") != std::string::npos);
    CHECK(answer.body.find(R"({"op_id":2,"status":"applied"})") != std::string::npos);
    const auto checkpoint = number_after(answer.body, "write_checkpoint");

    read_until(alice_next, alice, [&] {
        return alice.write_checkpoint().value_or(0) >= checkpoint && alice.row("todos", "t9").has_value();
    });
    CHECK(alice.row("todos", "t1")->find(R"("completed":1)") != std::string::npos);
    read_until(bob_next, bob, [&] { return bob.row("todos", "t9").has_value(); });
    CHECK_FALSE(bob.write_checkpoint().has_value());  // alice's write checkpoint is alice's

    // The same batch again: answered from the record, nothing applied twice.
    const auto again = http_request(stack.port(), "POST", "/upload", json_headers("u1"), upload);
    CHECK(again.status == 200);
    CHECK(again.body.find(R"("replayed":true)") != std::string::npos);

    // A write checkpoint without any write reaches the stream too (replication is nudged past it).
    const auto wc = http_request(stack.port(), "GET", "/write-checkpoint2.json?client_id=c1",
                                 {{"Authorization", "Bearer " + token_for("u1")}});
    REQUIRE(wc.status == 200);
    const auto second = number_after(wc.body, "write_checkpoint");
    CHECK(second > checkpoint);
    read_until(alice_next, alice, [&] { return alice.write_checkpoint().value_or(0) >= second; });

    const auto requested = http_request(stack.port(), "POST", "/sync/checkpoint-request", json_headers("u1"),
                                        R"({"client_id":"c1","checkpoint_request_id":")" +
                                            std::to_string(second + 100) + R"("})");
    REQUIRE(requested.status == 200);
    CHECK(number_after(requested.body, "checkpoint_request_id") == second + 100);
    read_until(alice_next, alice, [&] { return alice.write_checkpoint().value_or(0) == second + 100; });
    CHECK(alice.checksum_failures() == 0);
    CHECK(bob.checksum_failures() == 0);
}

TEST_CASE("POST /upload: malformed, oversized and unauthorised uploads get clear errors") {
    Stack stack("up_http_bad");
    auto post = [&](const std::string& body, sluice::test::Headers headers) {
        return http_request(stack.port(), "POST", "/upload", headers, body);
    };
    const auto invalid = post("{not json", json_headers("u1"));
    CHECK(invalid.status == 400);
    CHECK(invalid.body.find("SL5003") != std::string::npos);
    const auto wrong_op = post(R"({"batch_id":"b","ops":[{"op":"UPSERT","type":"todos","id":"x"}]})", json_headers("u1"));
    CHECK(wrong_op.status == 400);
    CHECK(wrong_op.body.find(R"('ops[0].op' must be PUT, PATCH or DELETE)") != std::string::npos);
    const auto no_batch = post(R"({"ops":[]})", json_headers("u1"));
    CHECK(no_batch.body.find("SL5004") != std::string::npos);
    std::string four = R"({"batch_id":"b","ops":[)";
    for (int i = 0; i < 4; ++i) {
        four += std::string(i == 0 ? "" : ",") + R"({"op":"DELETE","type":"todos","id":"x"})";
    }
    const auto too_many = post(four + "]}", json_headers("u1"));
    CHECK(too_many.status == 413);
    CHECK(too_many.body.find("SL6001") != std::string::npos);
    const auto too_large = post(R"({"batch_id":"b","ops":[],"pad":")" + std::string(70 * 1024, 'x') + "\"}",
                                json_headers("u1"));
    CHECK(too_large.status == 413);
    CHECK(too_large.body.find("SL5002") != std::string::npos);
    const auto no_token = post(R"({"batch_id":"b","ops":[]})", {{"Content-Type", "application/json"}});
    CHECK(no_token.status == 401);
    const auto text = post(R"({"batch_id":"b","ops":[]})",
                           {{"Authorization", "Bearer " + token_for("u1")}, {"Content-Type", "text/plain"}});
    CHECK(text.status == 415);
    const auto no_client = http_request(stack.port(), "GET", "/write-checkpoint2.json",
                                        {{"Authorization", "Bearer " + token_for("u1")}});
    CHECK(no_client.status == 400);
    // A client id the database could not hold as given (a NUL would cut it short), or too long.
    for (const std::string& bad : {std::string("c%00x"), std::string(257, 'c')}) {
        const auto refused = http_request(stack.port(), "GET", "/write-checkpoint2.json?client_id=" + bad,
                                          {{"Authorization", "Bearer " + token_for("u1")}});
        INFO(bad.substr(0, 10));
        CHECK(refused.status == 400);
        CHECK(refused.body.find("SL5004") != std::string::npos);
        CHECK(refused.body.find("without NUL characters") != std::string::npos);
    }
}

TEST_CASE("WebSocket upload: upload_ack with a write checkpoint, then the stream carries it, upload_error for a rejected batch") {
    Stack stack("up_ws");
    WsClient ws(stack.port(), token_for("u1"));
    REQUIRE(ws.status() == 101);
    ws.send_text(R"({"type":"upload","upload_id":"early","batch":[]})");
    auto early = ws.next_message();
    REQUIRE(early);
    CHECK(early->find(R"("code":"SL6011")") != std::string::npos);  // no client id yet

    ws.send_text(R"({"type":"sync_request","buckets":[],"raw_data":true,"client_id":"c3"})");
    ClientState client;
    auto next = [&] { return ws.next_message(); };
    read_until(next, client, [&] { return client.row("todos", "t1").has_value(); });

    ws.send_text(R"({"type":"upload","upload_id":"u-1","batch":[{"op_id":7,"op":"PUT","type":"todos","id":"t8","data":{"list_id":"l1","description":"Jam"}}]})");
    std::optional<std::string> ack;
    do {
        ack = ws.next_message();
        REQUIRE(ack);
        REQUIRE(client.apply_line(*ack).is_ok());
    } while (!ack->starts_with(R"({"upload_ack":)"));
    CHECK(ack->find(R"("upload_id":"u-1","status":"applied")") != std::string::npos);
    const auto checkpoint = number_after(*ack, "write_checkpoint");
    read_until(next, client, [&] {
        return client.write_checkpoint().value_or(0) >= checkpoint && client.row("todos", "t8").has_value();
    });

    ws.send_text(R"({"type":"upload","upload_id":"u-2","batch":[{"op_id":8,"op":"PUT","type":"todos","id":"t7","data":{"list_id":"l1","description":""}}]})");
    std::optional<std::string> error;
    do {
        error = ws.next_message();
        REQUIRE(error);
    } while (!error->starts_with(R"({"upload_error":)"));
    CHECK(error->find(R"("upload_id":"u-2","code":"SL6003")") != std::string::npos);
    CHECK(error->find(R"("op_id":8)") != std::string::npos);
}
