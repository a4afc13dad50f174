// JWKS: parsing each key type, skipped keys, a JWKS file, and a JWKS URL served by a local HTTP thread
// (initial fetch, refresh on an unknown kid with its rate limit, failures keeping the old keys).
#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include "server/auth/http_get.h"
#include "server/auth/jwks.h"
#include "tests/server/auth/auth_fixture.h"
#include "tests/server/auth/jwks_server.h"

using namespace sluice;
using namespace sluice::test;
using protocol::ErrorCode;

namespace {

// Polls verify() until it accepts `token` or five seconds pass: the refresh runs on another thread.
bool eventually_ok(const auth::TokenVerifier& verifier, const std::string& token) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < deadline) {
        if (verifier.verify(token).is_ok()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
}

}  // namespace

TEST_CASE("JWKS keys of every type verify their tokens, with or without alg") {
    const auto rsa = TestKey::rsa("RS256", "rsa");
    const auto p256 = TestKey::ec("ES256", "p256");
    const auto p384 = TestKey::ec("ES384", "p384");
    const auto p521 = TestKey::ec("ES512", "p521");
    const auto ed = TestKey::ed25519("ed");
    const auto oct = TestKey::hmac("HS512", std::string(64, 'k'), "oct");
    for (const bool with_alg : {true, false}) {
        auto set = auth::parse_jwks(jwks_json({&rsa, &p256, &p384, &p521, &ed, &oct}, with_alg));
        REQUIRE(set.is_ok());
        CHECK(set->skipped.empty());
        REQUIRE(set->keys.size() == 6);
        for (const auto* key : {&rsa, &p256, &p384, &p521, &ed, &oct}) {
            const auto token = mint_token(*key, "u", kNow);
            auto parts = auth::parse_jwt(token);
            REQUIRE(parts.is_ok());
            int verified = 0;
            for (const auto& k : set->keys) {
                verified += k->verify(parts->alg, parts->signing_input, parts->signature) ? 1 : 0;
            }
            INFO(key->alg() << " with_alg=" << with_alg);
            CHECK(verified == 1);
        }
    }
    // Without alg, an RSA key accepts RS512 and PS256; with alg, only RS256.
    auto inferred = auth::parse_jwks(jwks_json({&rsa}, false));
    auto pinned = auth::parse_jwks(jwks_json({&rsa}, true));
    CHECK(inferred->keys[0]->accepts(auth::Algorithm::kRS512));
    CHECK(inferred->keys[0]->accepts(auth::Algorithm::kPS256));
    CHECK_FALSE(inferred->keys[0]->accepts(auth::Algorithm::kHS256));
    CHECK_FALSE(pinned->keys[0]->accepts(auth::Algorithm::kRS512));
    // An EC key accepts only its curve's algorithm.
    auto ec = auth::parse_jwks(jwks_json({&p384}, false));
    CHECK(ec->keys[0]->accepts(auth::Algorithm::kES384));
    CHECK_FALSE(ec->keys[0]->accepts(auth::Algorithm::kES256));
}

TEST_CASE("unusable JWKs are skipped with a reason and the rest still load") {
    const auto good = TestKey::ec("ES256", "good");
    const std::string p256 = good.jwk();
    const std::string json = R"({"keys":[)" + p256 +
                             R"(,{"kty":"RSA","kid":"enc","use":"enc","n":"AQAB","e":"AQAB"})"
                             R"(,{"kty":"foo","kid":"f"})"
                             R"(,{"kty":"EC","kid":"k1","crv":"secp256k1","x":"AA","y":"AA"})"
                             R"(,{"kty":"EC","kid":"bad-point","crv":"P-256","x":")" +
                             base64url(std::string(32, '\x01')) + R"(","y":")" + base64url(std::string(32, '\x02')) +
                             R"("},)" + TestKey::rsa("RS256", "small", 1024).jwk(false) +
                             R"(,{"kty":"oct","kid":"o"},{"kty":"RSA","kid":"alg","alg":"HS256","n":"AQAB","e":"AQAB"})"
                             R"(,{"kty":"OKP","kid":"x","crv":"X25519","x":"AA"},"not an object"]})";
    auto set = auth::parse_jwks(json);
    REQUIRE(set.is_ok());
    REQUIRE(set->keys.size() == 1);
    CHECK(set->keys[0]->kid() == "good");
    REQUIRE(set->skipped.size() == 9);
    CHECK_THAT(set->skipped[0], Catch::Contains("kid 'enc'") && Catch::Contains("use is 'enc'"));
    CHECK_THAT(set->skipped[1], Catch::Contains("unsupported kty 'foo'"));
    CHECK_THAT(set->skipped[2], Catch::Contains("unsupported EC crv 'secp256k1'"));
    CHECK_THAT(set->skipped[3], Catch::Contains("not on the curve"));
    CHECK_THAT(set->skipped[4], Catch::Contains("at least 2048"));
    CHECK_THAT(set->skipped[5], Catch::Contains("no 'k'"));
    CHECK_THAT(set->skipped[6], Catch::Contains("alg HS256 does not fit kty 'RSA'"));
    CHECK_THAT(set->skipped[7], Catch::Contains("unsupported OKP crv 'X25519'"));
    CHECK_THAT(set->skipped[8], Catch::Contains("key 9: not a JSON object"));

    CHECK_THAT(auth::parse_jwks("nope").status().message(), Catch::Contains("not valid JSON"));
    CHECK_THAT(auth::parse_jwks(R"({"keys":{}})").status().message(), Catch::Contains("no \"keys\" array"));
    CHECK(auth::parse_jwks(R"({"keys":[]})")->keys.empty());
}

TEST_CASE("a JWKS file adds keys next to inline ones") {
    ScratchDir dir;
    TestClock clock;
    const auto inline_hs = TestKey::hmac("HS256", std::string(32, 's'), "inline");
    const auto file_rsa = TestKey::rsa("RS384", "file-rsa");
    const auto file_ed = TestKey::ed25519("file-ed");
    auto auth = base_config();
    auth.keys.push_back(inline_key(inline_hs, dir));
    auth.jwks_file = dir.write("jwks.json", jwks_json({&file_rsa, &file_ed}));
    const auto verifier = make_verifier(auth, clock);
    CHECK(verifier->verify(mint_token(inline_hs, "a", kNow)).is_ok());
    CHECK(verifier->verify(mint_token(file_rsa, "b", kNow)).is_ok());
    CHECK(verifier->verify(mint_token(file_ed, "c", kNow)).is_ok());
    CHECK_FALSE(verifier->verify(mint_token(TestKey::ed25519("file-ed"), "c", kNow)).is_ok());

    auto only_file = base_config();
    only_file.jwks_file = auth.jwks_file;
    CHECK(make_verifier(only_file, clock)->verify(mint_token(file_rsa, "b", kNow)).is_ok());

    only_file.jwks_file = dir.write("empty.json", R"({"keys":[{"kty":"foo"}]})");
    CHECK_THAT(auth::TokenVerifier::create(only_file, clock.clock()).status().message(),
               Catch::Contains("holds no usable key"));
    only_file.jwks_file = dir.write("bad.json", "{");
    CHECK_THAT(auth::TokenVerifier::create(only_file, clock.clock()).status().message(),
               Catch::Contains("not valid JSON"));
    only_file.jwks_file = (std::filesystem::temp_directory_path() / "sluice-no-such-jwks.json").string();
    CHECK_THAT(auth::TokenVerifier::create(only_file, clock.clock()).status().message(),
               Catch::Contains("auth.jwks_file: cannot read"));
}

TEST_CASE("JWKS URLs are parsed strictly") {
    auto url = auth::parse_http_url("https://idp.example.com/.well-known/jwks.json?x=1");
    REQUIRE(url.is_ok());
    CHECK(url->tls);
    CHECK(url->host == "idp.example.com");
    CHECK(url->port == "443");
    CHECK(url->target == "/.well-known/jwks.json?x=1");
    url = auth::parse_http_url("http://127.0.0.1:8080");
    REQUIRE(url.is_ok());
    CHECK_FALSE(url->tls);
    CHECK(url->port == "8080");
    CHECK(url->target == "/");
    url = auth::parse_http_url("http://[::1]:9000/k");
    REQUIRE(url.is_ok());
    CHECK(url->host == "::1");
    CHECK(url->port == "9000");
    for (std::string_view bad : {"ftp://x/", "http://", "http://x:0/", "http://x:99999/", "http://u:p@x/",
                                 "http://x/#frag", "http://[::1/", "idp.example.com/jwks"}) {
        INFO(bad);
        CHECK(auth::parse_http_url(bad).status().code() == ErrorCode::kConfigInvalidValue);
    }
}

TEST_CASE("http_get reads a body and reports HTTP errors") {
    JwksServer server(R"({"keys":[]})");
    auto url = auth::parse_http_url(server.url());
    REQUIRE(url.is_ok());
    auto body = auth::http_get(*url, std::chrono::seconds(5), 1024);
    REQUIRE(body.is_ok());
    CHECK(*body == R"({"keys":[]})");
    server.set_body("oops", 500);
    auto failed = auth::http_get(*url, std::chrono::seconds(5), 1024);
    CHECK(failed.status().code() == ErrorCode::kAuthJwksFetchFailed);
    CHECK_THAT(failed.status().message(), Catch::Contains("not 200"));
    server.set_body(std::string(2000, 'x'));
    CHECK_THAT(auth::http_get(*url, std::chrono::seconds(5), 1024).status().message(), Catch::Contains("larger"));
}

TEST_CASE("a JWKS URL is fetched at start and again for an unknown kid, rate-limited") {
    TestClock clock;
    const auto first = TestKey::rsa("RS256", "2025");
    const auto second = TestKey::ec("ES256", "2026");
    JwksServer server(jwks_json({&first}));
    auto auth = base_config();
    auth.jwks_uri = server.url();
    const auto verifier = make_verifier(auth, clock);
    CHECK(server.requests() == 1);
    CHECK(verifier->verify(mint_token(first, "u", kNow)).is_ok());

    // The identity provider rotates: the new kid is unknown until the next fetch.
    server.set_body(jwks_json({&first, &second}));
    const auto new_token = mint_token(second, "u", kNow);
    auto r = verifier->verify(new_token);
    CHECK(r.status().code() == ErrorCode::kAuthInvalid);
    CHECK_THAT(r.status().message(),
               Catch::Contains("no key has the token's kid '2026' (auth.jwks_uri is fetched again)"));
    // Within kUnknownKidRefetchSeconds of the start-up fetch: no new request.
    clock.advance(5);
    CHECK_FALSE(verifier->verify(new_token).is_ok());
    CHECK(server.requests() == 1);

    clock.advance(5);
    CHECK(eventually_ok(*verifier, new_token));
    CHECK(server.requests() == 2);
    CHECK(verifier->verify(mint_token(first, "u", clock.now->load())).is_ok());

    // Many unknown kids at once cause one fetch at most per interval.
    clock.advance(10);
    for (int i = 0; i < 50; ++i) {
        CHECK_FALSE(verifier->verify(mint_token(second.with_kid("nope"), "u", kNow)).is_ok());
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (server.requests() < 3 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    CHECK(server.requests() == 3);
}

TEST_CASE("a failing JWKS URL keeps the keys fetched before, and an unreachable one does not stop start-up") {
    TestClock clock;
    const auto key = TestKey::ec("ES384", "k");
    JwksServer server(jwks_json({&key}));
    auto auth = base_config();
    auth.jwks_uri = server.url();
    const auto verifier = make_verifier(auth, clock);
    const auto token = mint_token(key, "u", kNow);
    CHECK(verifier->verify(token).is_ok());

    server.set_body("gateway error", 502);
    clock.advance(20);
    CHECK_FALSE(verifier->verify(mint_token(key.with_kid("other"), "u", kNow)).is_ok());  // triggers a fetch
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (server.requests() < 2 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    CHECK(server.requests() == 2);
    CHECK(verifier->verify(token).is_ok());

    // Nothing listens on the URL: create() succeeds, tokens fail until keys arrive.
    std::string dead_url;
    {
        JwksServer gone;
        dead_url = gone.url();
    }
    auth.jwks_uri = dead_url;
    const auto lonely = make_verifier(auth, clock);
    auto r = lonely->verify(token);
    CHECK(r.status().code() == ErrorCode::kAuthInvalid);
    CHECK_THAT(r.status().message(), Catch::Contains("no key has the token's kid 'k'"));

    auth.jwks_uri = "gopher://x/";
    CHECK(auth::TokenVerifier::create(auth, clock.clock()).status().code() == ErrorCode::kConfigInvalidValue);
}
