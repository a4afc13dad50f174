// HTTPS and WSS: with server.tls set, the same server speaks TLS on every connection. A self-signed
// certificate made here with the openssl CLI; clients verify it (OpenSSL) and sync over
// POST /sync/stream and /sync/ws exactly as over plain TCP. Clients that do not trust it, or that
// speak plain HTTP to it, get nothing.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include <catch2/catch.hpp>

#include "protocol/wire/client_state.h"
#include "tests/server/http/stack.h"
#include "tests/server/http/test_client.h"
#include "tests/support/pg.h"

namespace {

using sluice::protocol::wire::ClientState;
using sluice::test::read_until;
using sluice::test::request_body;
using sluice::test::Stack;
using sluice::test::TlsClientOptions;
using sluice::test::token_for;

struct Certificate {
    std::string cert;
    std::string key;
};

// A self-signed P-256 certificate for 127.0.0.1 and localhost, in a fresh folder.
Certificate make_certificate(const std::string& name) {
    const auto dir = std::filesystem::temp_directory_path() / ("sluice-tls-" + name + "-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    Certificate c{(dir / "cert.pem").string(), (dir / "key.pem").string()};
    const auto command = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
                         "-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout '" +
                         c.key + "' -out '" + c.cert + "' 2>/dev/null";
    REQUIRE(std::system(command.c_str()) == 0);
    return c;
}

}  // namespace

TEST_CASE("TLS: HTTPS probes and stream, WSS live sync - untrusted and plain clients are refused") {
    const auto cert = make_certificate("server");
    sluice::http::ServerOptions options;
    options.tls_cert_file = cert.cert;
    options.tls_key_file = cert.key;
    Stack stack("http_tls", options);
    const TlsClientOptions tls{cert.cert, "127.0.0.1"};

    auto probe = sluice::test::http_request(stack.port(), "GET", "/probes/liveness", {}, {}, &tls);
    CHECK(probe.status == 200);
    CHECK(probe.body == R"({"ready":true})");

    {
        ClientState client;
        sluice::test::StreamClient stream(stack.port(), token_for("u1"), request_body(client), &tls);
        REQUIRE(stream.status() == 200);
        (void)read_until([&] { return stream.next_line(); }, client, [&] { return client.row("todos", "t1").has_value(); });
        CHECK_FALSE(client.row("todos", "t2"));
        CHECK(client.checksum_failures() == 0);
    }

    sluice::test::WsClient ws(stack.port(), token_for("u1"), "/sync/ws", &tls);
    REQUIRE(ws.status() == 101);
    ws.send_text(R"({"type":"sync_request","buckets":[],"raw_data":true})");
    ClientState client;
    auto next = [&] { return ws.next_message(); };
    (void)read_until(next, client, [&] { return client.row("todos", "t1").has_value(); });
    sluice::test::exec_sql(stack.source, "INSERT INTO todos (id, list_id, description) VALUES ('t7','l1','Over TLS')");
    auto lines = read_until(next, client, [&] { return client.row("todos", "t7").has_value(); });
    CHECK(lines.front().starts_with(R"({"checkpoint_diff":)"));

    // A client that trusts another certificate fails the handshake and sends nothing.
    const auto other = make_certificate("other");
    const TlsClientOptions untrusted{other.cert, "127.0.0.1"};
    sluice::test::Socket refused(stack.port(), &untrusted);
    CHECK(refused.tls_error().find("certificate verify failed") != std::string::npos);
    // The right certificate for the wrong name fails too.
    const TlsClientOptions wrong_name{cert.cert, "sluice.example"};
    sluice::test::Socket misnamed(stack.port(), &wrong_name);
    CHECK_FALSE(misnamed.tls_error().empty());

    // Plain HTTP to the TLS port gets no HTTP response.
    auto plain = sluice::test::http_request(stack.port(), "GET", "/probes/liveness");
    CHECK(plain.status == 0);

    // The TLS session above still works after all that.
    sluice::test::exec_sql(stack.source, "INSERT INTO todos (id, list_id, description) VALUES ('t8','l1','Still TLS')");
    (void)read_until(next, client, [&] { return client.row("todos", "t8").has_value(); });
}

TEST_CASE("TLS: a certificate or key that cannot be loaded stops the server from starting, naming the key") {
    const auto cert = make_certificate("bad");
    sluice::http::ServerOptions options;
    options.tls_cert_file = cert.cert + ".missing";
    options.tls_key_file = cert.key;
    auto started = sluice::http::Server::start(options, {});
    REQUIRE_FALSE(started);
    CHECK(started.status().message().find("server.tls.cert_file") != std::string::npos);

    options.tls_cert_file = cert.cert;
    options.tls_key_file = cert.cert;  // a certificate is not a private key
    started = sluice::http::Server::start(options, {});
    REQUIRE_FALSE(started);
    CHECK(started.status().message().find("server.tls.key_file") != std::string::npos);

    const auto other = make_certificate("bad-other");
    options.tls_key_file = other.key;  // a key, but not the certificate's
    started = sluice::http::Server::start(options, {});
    REQUIRE_FALSE(started);
    CHECK(started.status().message().find("server.tls.key_file") != std::string::npos);
}
