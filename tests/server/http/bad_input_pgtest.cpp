// Bad input against the real server (server_pgtest.cpp covers the basic HTTP cases): expired,
// alg:none, wrong-audience and not-yet-valid tokens; malformed and oversized WebSocket messages
// (whole and by header alone); oversized HTTP headers; buckets the client may not read named in
// `buckets`; and a client that stops reading, which is closed (SL5011) without delaying others.
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <set>

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
using sluice::test::stack_key;
using sluice::test::StreamClient;
using sluice::test::token_for;
using sluice::test::unix_now;
using sluice::test::WsClient;

sluice::test::Headers json_with(const std::string& token) {
    return {{"Content-Type", "application/json"}, {"Authorization", "Bearer " + token}};
}

std::string claims(const std::string& sub, std::int64_t iat, std::int64_t exp, const std::string& aud,
                   const std::string& extra = "") {
    return R"({"sub":")" + sub + R"(","iat":)" + std::to_string(iat) + R"(,"exp":)" + std::to_string(exp) +
           R"(,"aud":")" + aud + "\"" + extra + "}";
}

// The next message that is not a keepalive.
std::optional<std::string> next_non_keepalive(WsClient& ws) {
    for (;;) {
        auto m = ws.next_message();
        if (!m || !m->starts_with(R"({"token_expires_in":)")) {
            return m;
        }
    }
}

}  // namespace

TEST_CASE("Bad tokens: expired, not yet valid, alg none, wrong audience, wrong kid, garbage - over HTTP and WebSocket") {
    Stack stack("bad_tokens");
    const auto port = stack.port();
    const auto now = unix_now();
    struct Case {
        const char* what;
        std::string token;
        const char* code;
    };
    const std::string none_header = sluice::test::base64url(R"({"alg":"none","typ":"JWT","kid":"k1"})");
    const std::string none_payload = sluice::test::base64url(claims("u1", now, now + 3600, "sluice-test"));
    const std::vector<Case> cases{
        {"expired an hour ago", sluice::test::mint_token(stack_key(), "u1", now - 7200, 3600, "sluice-test"), "SL5103"},
        {"alg none, no signature", none_header + "." + none_payload + ".", "SL510"},
        {"alg none, with the HMAC signature of another token",
         none_header + "." + none_payload + "." + token_for("u1").substr(token_for("u1").rfind('.') + 1), "SL510"},
        {"wrong audience", sluice::test::mint_token(stack_key(), "u1", now, 3600, "someone-else"), "SL510"},
        {"not valid before an hour from now",
         sluice::test::sign_jwt(R"({"alg":"HS256","typ":"JWT","kid":"k1"})",
                                claims("u1", now, now + 7200, "sluice-test", R"(,"nbf":)" + std::to_string(now + 3600)),
                                stack_key()),
         "SL510"},
        {"unknown kid", sluice::test::mint_token(stack_key().with_kid("k9"), "u1", now, 3600, "sluice-test"), "SL510"},
        {"payload changed after signing",
         [&] {
             auto t = token_for("u1");
             const auto first = t.find('.');
             const auto second = t.find('.', first + 1);
             return t.substr(0, first + 1) + sluice::test::base64url(claims("u2", now, now + 3600, "sluice-test")) +
                    t.substr(second);
         }(),
         "SL510"},
        {"three dots of nothing", "..", "SL510"},
        {"not base64", "a$b.c%d.e^f", "SL510"},
    };
    for (const auto& c : cases) {
        INFO(c.what);
        auto res = http_request(port, "POST", "/sync/stream", json_with(c.token), "{}");
        CHECK(res.status == 401);
        CHECK(res.body.find(std::string(R"("code":")") + c.code) != std::string::npos);
        WsClient ws(port, c.token);
        CHECK(ws.status() == 401);
        CHECK(ws.response_body().find(std::string(R"("code":")") + c.code) != std::string::npos);
    }
    CHECK(stack.server->stats().auth_failures.load() >= 2 * cases.size());
    CHECK(stack.server->stats().sessions_total.load() == 0);

    // A WebSocket session refuses a refreshed token that is expired or for another user, and closes.
    for (const auto& fresh : {sluice::test::mint_token(stack_key(), "u1", now - 7200, 3600, "sluice-test"),
                              token_for("u2")}) {
        WsClient ws(port, token_for("u1"));
        REQUIRE(ws.status() == 101);
        ws.send_text(R"({"type":"sync_request","buckets":[],"raw_data":true})");
        ClientState client;
        (void)read_until([&] { return ws.next_message(); }, client, [] { return true; });
        ws.send_text(R"({"type":"token","token":")" + fresh + R"("})");
        auto reply = next_non_keepalive(ws);
        REQUIRE(reply);
        CHECK(reply->starts_with(R"({"error":{"code":"SL510)"));
        CHECK_FALSE(next_non_keepalive(ws).has_value());  // closed after the error
    }
}

TEST_CASE("Bad WebSocket messages: malformed JSON, a wrong field, too large whole or by header - oversized HTTP headers") {
    sluice::http::ServerOptions options;
    options.max_message_bytes = 4096;
    Stack stack("bad_ws", options);
    const auto port = stack.port();
    struct Case {
        const char* what;
        std::string frame_text;
        const char* code;
        int close_code;
    };
    const std::vector<Case> cases{
        {"malformed JSON", R"({"type":"sync_request","buckets":[)", "SL5003", 1008},
        {"not an object", R"(["sync_request"])", "SL500", 1008},
        {"buckets of the wrong type", R"({"type":"sync_request","buckets":"all"})", "SL5004", 1008},
        {"a message over max_message_bytes", R"({"type":"sync_request","padding":")" + std::string(10'000, 'x') + "\"}",
         "SL5002", 1009},
        {"a message of 70,000 bytes (64-bit length)", std::string(70'000, ' '), "SL5002", 1009},
    };
    for (const auto& c : cases) {
        INFO(c.what);
        WsClient ws(port, token_for("u1"));
        REQUIRE(ws.status() == 101);
        ws.send_text(c.frame_text);
        auto reply = next_non_keepalive(ws);
        REQUIRE(reply);
        CHECK(reply->starts_with(std::string(R"({"error":{"code":")") + c.code));
        CHECK_FALSE(next_non_keepalive(ws).has_value());
        CHECK(ws.close_code() == c.close_code);
    }
    {
        // A frame header announcing 2^40 bytes: refused from the header, before any payload.
        sluice::test::Socket raw(port);
        raw.send_all("GET /sync/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                     "Authorization: Bearer " +
                     token_for("u1") + "\r\n\r\n");
        std::string in;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (in.find("\r\n\r\n") == std::string::npos && raw.read_some(in, deadline)) {
        }
        REQUIRE(in.starts_with("HTTP/1.1 101"));
        in.erase(0, in.find("\r\n\r\n") + 4);
        std::string header{static_cast<char>(0x81), static_cast<char>(0x80 | 127), 0, 0, 0, 1, 0, 0, 0, 0};
        header.append("\x01\x02\x03\x04", 4);  // mask
        raw.send_all(header);
        raw.send_all(std::string(20'000, 'a'));  // some of it
        while (in.find("SL5002") == std::string::npos && raw.read_some(in, deadline)) {
        }
        CHECK(in.find("SL5002") != std::string::npos);
    }
    {
        // 100 KB of headers: the connection is dropped, the server carries on.
        auto res = http_request(port, "GET", "/probes/liveness", {{"X-Padding", std::string(100'000, 'p')}});
        CHECK(res.status != 200);
    }
    CHECK(http_request(port, "GET", "/probes/liveness").status == 200);
    // An oversized sync request body over HTTP (the WebSocket limit applies there too).
    auto res = http_request(port, "POST", "/sync/stream", json_with(token_for("u1")),
                            R"({"buckets":[],"x":")" + std::string(5000, 'x') + "\"}");
    CHECK(res.status == 413);
}

TEST_CASE("Buckets the client may not read, named in `buckets`, are never sent") {
    Stack stack("bad_buckets");
    // u1 claims to hold u2's list bucket, a made-up bucket of a real definition, and nonsense.
    const std::string body =
        R"({"raw_data":true,"buckets":[{"name":"1#user_lists[\"l2\"]","after":"0"},)"
        R"({"name":"1#user_lists[\"l999\"]","after":"5"},{"name":"nonsense","after":"1"},)"
        R"({"name":"1#own_profile[\"u2\"]","after":"0"}]})";
    StreamClient stream(stack.port(), token_for("u1"), body);
    REQUIRE(stream.status() == 200);
    ClientState client;
    auto lines = read_until([&] { return stream.next_line(); }, client, [&] { return client.row("todos", "t1").has_value(); });
    for (const auto& line : lines) {
        INFO(line);
        CHECK(line.find("l2") == std::string::npos);
        CHECK(line.find("l999") == std::string::npos);
        CHECK(line.find("nonsense") == std::string::npos);
        CHECK(line.find(R"(own_profile[\"u2\"])") == std::string::npos);
    }
    CHECK_FALSE(client.row("lists", "l2"));
    CHECK_FALSE(client.row("users", "u2"));
    std::set<std::string> held;
    for (const auto& [name, state] : client.buckets()) {
        held.insert(name);
    }
    CHECK(held == std::set<std::string>{R"(1#own_profile["u1"])", R"(1#user_lists["l1"])"});

    // The same over WebSocket.
    WsClient ws(stack.port(), token_for("u1"));
    REQUIRE(ws.status() == 101);
    ws.send_text(R"({"type":"sync_request",)" + body.substr(1));
    ClientState ws_client;
    lines = read_until([&] { return ws.next_message(); }, ws_client, [&] { return ws_client.row("todos", "t1").has_value(); });
    for (const auto& line : lines) {
        CHECK(line.find("l2") == std::string::npos);
        CHECK(line.find("nonsense") == std::string::npos);
    }
}

TEST_CASE("A client that stops reading is closed as too slow (SL5011) - other clients are not delayed") {
    sluice::http::ServerOptions options;
    options.session_queue_bytes = 1 << 20;
    options.stall_timeout = std::chrono::seconds(20);
    Stack stack("bad_slow", options);
    const auto port = stack.port();

    // The fast client (u2) syncs first.
    ClientState fast;
    StreamClient fast_stream(port, token_for("u2"), request_body(fast));
    REQUIRE(fast_stream.status() == 200);
    auto fast_next = [&] { return fast_stream.next_line(); };
    (void)read_until(fast_next, fast, [&] { return fast.row("todos", "t2").has_value(); });

    // The slow client (u1): a tiny receive buffer, sends its request and never reads.
    const int slow = ::socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096;
    ::setsockopt(slow, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(slow, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    const std::string slow_body = R"({"buckets":[],"raw_data":true})";
    const auto request = "POST /sync/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         "Authorization: Bearer " +
                         token_for("u1") + "\r\nContent-Length: " + std::to_string(slow_body.size()) + "\r\n\r\n" +
                         slow_body;
    REQUIRE(::send(slow, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size()));
    Stack::wait_until([&] { return stack.server->stats().sessions_active.load() == 2; }, "the slow session");

    // ~12 MB for u1: far more than the socket buffers and the 1 MB session queue hold. Lines are at
    // most ~256 KB (SessionLimits::line_bytes) and the session produces more only while its queue is
    // under half full, so the queue never overflows: the slow client is closed by the stall timer.
    sluice::test::exec_sql(stack.source,
                           "INSERT INTO todos (id, list_id, description) "
                           "SELECT 'big' || g, 'l1', repeat(md5(g::text), 125) FROM generate_series(1, 3000) g");
    Stack::wait_until(
        [&] {
            int pending = 0;
            ::ioctl(slow, FIONREAD, &pending);
            return pending > 0;
        },
        "the slow client's data to start arriving");

    // Meanwhile the fast client gets its own change at once.
    sluice::test::exec_sql(stack.source, "INSERT INTO todos (id, list_id, description) VALUES ('t20','l2','Fast')");
    (void)read_until(fast_next, fast, [&] { return fast.row("todos", "t20").has_value(); });
    CHECK(stack.server->stats().slow_clients_closed.load() == 0);  // served while the slow one was stuck

    Stack::wait_until([&] { return stack.server->stats().slow_clients_closed.load() == 1; }, "the slow client to be closed");
    // Draining the slow socket ends in EOF or a reset, without the big checkpoint completing.
    std::string received;
    char buffer[65536];
    for (;;) {
        const auto n = ::recv(slow, buffer, sizeof buffer, 0);
        if (n <= 0) {
            break;
        }
        received.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(slow);
    CHECK(received.find("big3000") == std::string::npos);
    CHECK(stack.server->stats().sessions_active.load() == 1);

    // The fast client is still live.
    sluice::test::exec_sql(stack.source, "INSERT INTO todos (id, list_id, description) VALUES ('t21','l2','Still fast')");
    (void)read_until(fast_next, fast, [&] { return fast.row("todos", "t21").has_value(); });
    CHECK(fast.checksum_failures() == 0);
}
