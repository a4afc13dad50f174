// The real server over loopback against a real Postgres: the replicator, the checkpoint listener
// and the HTTP/WebSocket server run in-process on the demo schema; test clients speak raw HTTP and
// WebSocket and hold what they receive in protocol::wire::ClientState, which verifies checksums.
#include <catch2/catch.hpp>

#include "protocol/wire/client_state.h"
#include "tests/server/http/stack.h"
#include "tests/server/http/test_client.h"
#include "tests/support/jwt_signer.h"
#include "tests/support/pg.h"

namespace {

using sluice::protocol::wire::ClientState;
using sluice::test::http_request;
using sluice::test::read_until;
using sluice::test::request_body;
using sluice::test::Stack;
using sluice::test::StreamClient;
using sluice::test::token_for;
using sluice::test::unix_now;
using sluice::test::WsClient;

}  // namespace

TEST_CASE("HTTP stream: initial sync, live insert/update/delete, grant and revoke, resume") {
    Stack stack("http_stream");
    ClientState client;
    {
        StreamClient stream(stack.port(), token_for("u1"), request_body(client));
        REQUIRE(stream.status() == 200);
        auto next = [&] { return stream.next_line(); };
        auto lines = read_until(next, client, [&] { return client.row("todos", "t1").has_value(); });
        CHECK(lines.front().starts_with(R"({"checkpoint":{"last_op_id":")"));
        CHECK(client.row("lists", "l1"));
        CHECK(client.row("users", "u1"));
        CHECK_FALSE(client.row("lists", "l2"));  // u2's list never reaches u1
        CHECK_FALSE(client.row("todos", "t2"));

        sluice::test::exec_sql(stack.source, "INSERT INTO todos (id, list_id, description) VALUES ('t3','l1','Eggs')");
        lines = read_until(next, client, [&] { return client.row("todos", "t3").has_value(); });
        CHECK(lines.front().starts_with(R"({"checkpoint_diff":)"));

        sluice::test::exec_sql(stack.source, "UPDATE todos SET description = 'Oat milk' WHERE id = 't1'");
        (void)read_until(next, client, [&] { return client.row("todos", "t1")->find("Oat milk") != std::string::npos; });

        sluice::test::exec_sql(stack.source, "DELETE FROM todos WHERE id = 't3'");
        (void)read_until(next, client, [&] { return !client.row("todos", "t3").has_value(); });

        // A grant adds u2's list live, a revoke removes it.
        // The lone list_shares change is paired with a row change: storage commits no checkpoint for a
        // transaction that only changes the lookup index (a bucket_writer gap, reported to its owner).
        sluice::test::exec_sql(stack.source,
                               "INSERT INTO list_shares (list_id, user_id) VALUES ('l2','u1');"
                               "UPDATE users SET name = 'User 2b' WHERE id = 'u2'");
        (void)read_until(next, client, [&] { return client.row("todos", "t2").has_value(); });
        sluice::test::exec_sql(stack.source,
                               "DELETE FROM list_shares WHERE list_id = 'l2' AND user_id = 'u1';"
                               "UPDATE users SET name = 'User 2c' WHERE id = 'u2'");
        lines = read_until(next, client, [&] { return !client.row("lists", "l2").has_value(); });
        CHECK(lines.front().find(R"("removed_buckets":["1#user_lists[\"l2\"]"])") != std::string::npos);
        CHECK(client.checksum_failures() == 0);
    }
    // While disconnected: more writes. The resume sends only what is missing.
    sluice::test::exec_sql(stack.source, "INSERT INTO todos (id, list_id, description) VALUES ('t4','l1','Bread')");
    const auto held = client.bucket_requests();
    StreamClient stream(stack.port(), token_for("u1"), request_body(client));
    REQUIRE(stream.status() == 200);
    auto lines = read_until([&] { return stream.next_line(); }, client,
                            [&] { return client.row("todos", "t4").has_value(); });
    std::size_t ops = 0;
    for (const auto& line : lines) {
        if (line.starts_with(R"({"data":)")) {
            CHECK(line.find(R"("after":"0")") == std::string::npos);  // every bucket continues from its after
            for (auto at = line.find(R"("op_id")"); at != std::string::npos; at = line.find(R"("op_id")", at + 1)) {
                ++ops;
            }
        }
    }
    CHECK(ops >= 1);
    CHECK(ops <= 2);
    CHECK(client.checksum_failures() == 0);
}

TEST_CASE("HTTP: bad input, auth errors, probes, CORS, limits") {
    sluice::http::ServerOptions options;
    options.max_message_bytes = 4096;
    options.max_connections_per_user = 1;
    options.cors_origins = {"https://app.example"};
    Stack stack("http_bad", options);
    const auto port = stack.port();
    const sluice::test::Headers json{{"Content-Type", "application/json"},
                                     {"Authorization", "Bearer " + token_for("u1")}};

    auto res = http_request(port, "POST", "/sync/stream", {{"Content-Type", "application/json"}}, "{}");
    CHECK(res.status == 401);
    CHECK(res.body.find(R"("code":"SL5101","status":401)") != std::string::npos);

    res = http_request(port, "POST", "/sync/stream",
                       {{"Content-Type", "application/json"}, {"Authorization", "Bearer not.a.token"}}, "{}");
    CHECK(res.status == 401);
    CHECK(res.body.starts_with(R"({"error":{"code":"SL51)"));

    const auto other_key = sluice::test::TestKey::hmac("HS256", "another-secret-0123456789abcdef", "k1");
    res = http_request(port, "POST", "/sync/stream",
                       {{"Content-Type", "application/json"},
                        {"Authorization", "Bearer " + sluice::test::mint_token(other_key, "u1", unix_now(), 3600, "sluice-test")}},
                       "{}");
    CHECK(res.status == 401);  // forged

    res = http_request(port, "POST", "/sync/stream", json, "{not json");
    CHECK(res.status == 400);
    CHECK(res.body.find(R"("code":"SL5003")") != std::string::npos);

    res = http_request(port, "POST", "/sync/stream", json, R"({"buckets":7})");
    CHECK(res.status == 400);
    CHECK(res.body.find(R"("code":"SL5004")") != std::string::npos);

    res = http_request(port, "POST", "/sync/stream",
                       {{"Content-Type", "text/plain"}, {"Authorization", "Bearer " + token_for("u1")}}, "{}");
    CHECK(res.status == 415);

    res = http_request(port, "POST", "/sync/stream", json, std::string(10'000, ' '));
    CHECK(res.status == 413);
    CHECK(res.body.find(R"("code":"SL5002")") != std::string::npos);

    res = http_request(port, "GET", "/nope");
    CHECK(res.status == 404);
    CHECK(res.body.find(R"("code":"SL5012")") != std::string::npos);

    CHECK(http_request(port, "GET", "/probes/liveness").status == 200);
    CHECK(http_request(port, "GET", "/probes/readiness").status == 200);
    CHECK(http_request(port, "GET", "/probes/startup").status == 200);

    res = http_request(port, "OPTIONS", "/sync/stream",
                       {{"Origin", "https://app.example"}, {"Access-Control-Request-Method", "POST"},
                        {"Access-Control-Request-Headers", "authorization, content-type"}});
    CHECK(res.status == 204);
    CHECK(res.headers["access-control-allow-origin"] == "https://app.example");
    CHECK(res.headers["access-control-allow-headers"] == "authorization, content-type");
    res = http_request(port, "OPTIONS", "/sync/stream", {{"Origin", "https://evil.example"}});
    CHECK(res.headers.count("access-control-allow-origin") == 0);

    // One connection per user: the second is refused with 429 while the first streams.
    StreamClient first(port, token_for("u1"), "{}");
    REQUIRE(first.status() == 200);
    REQUIRE(first.next_line().has_value());
    StreamClient second(port, token_for("u1"), "{}");
    CHECK(second.status() == 429);
    CHECK(second.error_body().find(R"("code":"SL5010")") != std::string::npos);
    StreamClient other_user(port, token_for("u2"), "{}");
    CHECK(other_user.status() == 200);
}

TEST_CASE("WebSocket: sync request, live diff, token refresh, invalid messages") {
    Stack stack("http_ws");
    {
        WsClient unauthorized(stack.port(), "");
        CHECK(unauthorized.status() == 401);
        CHECK(unauthorized.response_body().find("SL5101") != std::string::npos);
    }
    WsClient ws(stack.port(), token_for("u1"));
    REQUIRE(ws.status() == 101);
    ws.send_text(R"({"type":"sync_request","buckets":[],"raw_data":true})");
    ClientState client;
    auto next = [&] { return ws.next_message(); };
    (void)read_until(next, client, [&] { return client.row("todos", "t1").has_value(); });
    CHECK_FALSE(client.row("todos", "t2"));

    sluice::test::exec_sql(stack.source, "INSERT INTO todos (id, list_id, description) VALUES ('t9','l1','Tea')");
    auto lines = read_until(next, client, [&] { return client.row("todos", "t9").has_value(); });
    CHECK(lines.front().starts_with(R"({"checkpoint_diff":)"));

    ws.send_text(R"({"type":"token","token":")" + token_for("u1", 7200) + R"("})");
    std::optional<std::string> reply;
    do {
        reply = ws.next_message();
        REQUIRE(reply);
    } while (!reply->starts_with(R"({"token_expires_in":)"));
    CHECK(std::stoi(reply->substr(20)) > 3600);

    ws.send_text(R"({"type":"bogus"})");
    do {
        reply = ws.next_message();
        REQUIRE(reply);
    } while (!reply->starts_with(R"({"error":)"));
    CHECK(reply->find("SL5008") != std::string::npos);
    CHECK_FALSE(ws.next_message().has_value());  // closed after the error
}

TEST_CASE("stopping the server ends WebSocket sessions with 1001 going away, after what was queued") {
    Stack stack("http_stop");
    WsClient ws(stack.port(), token_for("u1"));
    REQUIRE(ws.status() == 101);
    ws.send_text(R"({"type":"sync_request","buckets":[],"raw_data":true})");
    ClientState client;
    (void)read_until([&] { return ws.next_message(); }, client, [&] { return client.row("todos", "t1").has_value(); });
    stack.server->stop();
    while (ws.next_message().has_value()) {
    }
    CHECK(ws.close_code() == 1001);
}
