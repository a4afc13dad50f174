// Signatures: every algorithm with inline keys (HS secrets, PEM public keys), wrong keys, tampering,
// algorithm confusion, kid selection, and the key errors create() reports.
#include <catch2/catch.hpp>

#include <thread>

#include "server/auth/keys.h"
#include "tests/server/auth/auth_fixture.h"

using namespace sluice;
using namespace sluice::test;
using protocol::ErrorCode;

namespace {

const std::string kSecret = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

TestKey key_for(const std::string& alg, const std::string& kid = {}) {
    if (alg.starts_with("HS")) return TestKey::hmac(alg, kSecret, kid);
    if (alg.starts_with("RS") || alg.starts_with("PS")) return TestKey::rsa(alg, kid);
    if (alg.starts_with("ES")) return TestKey::ec(alg, kid);
    return TestKey::ed25519(kid);
}

protocol::Result<auth::VerifiedToken> verify_with(const TestKey& configured, const std::string& token,
                                                  std::string alg = {}) {
    ScratchDir dir;
    TestClock clock;
    auto auth = base_config();
    auth.keys.push_back(inline_key(configured, dir, std::move(alg)));
    return make_verifier(auth, clock)->verify("Bearer " + token);
}

// Replaces the payload part of a token, keeping header and signature.
std::string with_payload(const std::string& token, std::string_view payload_json) {
    const auto first = token.find('.');
    const auto second = token.find('.', first + 1);
    return token.substr(0, first + 1) + base64url(payload_json) + token.substr(second);
}

}  // namespace

TEST_CASE("every algorithm verifies with its inline key") {
    // PS* are not offered as auth.keys[].alg in sluice.yaml, but JWKS keys may use them.
    for (const std::string alg : {"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                                  "ES256", "ES384", "ES512", "EdDSA"}) {
        SECTION(alg) {
            const auto key = key_for(alg, "k-" + alg);
            const auto token = mint_token(key, "user-" + alg, kNow, 600);
            auto r = verify_with(key, token);
            INFO(r.status().to_string());
            REQUIRE(r.is_ok());
            CHECK(r->user_id == "user-" + alg);
            CHECK(r->expires_at == kNow + 600);
            CHECK_THAT(r->claims_json, Catch::Contains(R"("sub":"user-)" + alg));

            // Signed by another key of the same algorithm.
            const auto other =
                alg.starts_with("HS") ? TestKey::hmac(alg, kSecret + "-other", "k-" + alg) : key_for(alg, "k-" + alg);
            const auto forged = mint_token(other, "user-" + alg, kNow, 600);
            auto bad = verify_with(key, forged);
            CHECK(bad.status().code() == ErrorCode::kAuthInvalid);
            CHECK_THAT(bad.status().message(), Catch::Contains("does not verify"));

            // The payload changed after signing.
            auto tampered =
                verify_with(key, with_payload(token, R"({"sub":"admin","iat":1700000000,"exp":1700000600})"));
            CHECK(tampered.status().code() == ErrorCode::kAuthInvalid);
            CHECK_THAT(tampered.status().message(), Catch::Contains("does not verify"));

            // A flipped signature byte.
            std::string flipped = token;
            flipped[flipped.size() - 3] = flipped[flipped.size() - 3] == 'A' ? 'B' : 'A';
            CHECK(verify_with(key, flipped).status().code() == ErrorCode::kAuthInvalid);
        }
    }
}

TEST_CASE("ECDSA signatures of the wrong width are rejected") {
    const auto key = TestKey::ec("ES256", "e");
    const auto token = mint_token(key, "u", kNow);
    const auto dot = token.rfind('.');
    auto raw = auth::base64url_decode(token.substr(dot + 1));
    REQUIRE(raw);
    CHECK(raw->size() == 64);
    const auto shorter = token.substr(0, dot + 1) + base64url(raw->substr(1));
    const auto longer = token.substr(0, dot + 1) + base64url(std::string(1, '\0') + *raw);
    CHECK_FALSE(verify_with(key, shorter).is_ok());
    CHECK_FALSE(verify_with(key, longer).is_ok());
    // A DER signature (what OpenSSL produces) is not a JWS ECDSA signature.
    CHECK_FALSE(verify_with(key, token.substr(0, dot + 1) + base64url(std::string(72, '\x30'))).is_ok());
}

TEST_CASE("algorithm confusion: an RSA public key is never an HMAC secret") {
    const auto rsa = TestKey::rsa("RS256", "main");
    const auto as_secret = TestKey::hmac("HS256", rsa.public_pem(), "main");
    const auto token = mint_token(as_secret, "attacker", kNow);
    auto r = verify_with(rsa, token);
    CHECK(r.status().code() == ErrorCode::kAuthInvalid);
    CHECK_THAT(r.status().message(), Catch::Contains("kid 'main' is not for algorithm HS256"));
    // Without a kid too.
    auto no_kid = verify_with(rsa.with_kid(""), mint_token(as_secret.with_kid(""), "attacker", kNow));
    CHECK_THAT(no_kid.status().message(), Catch::Contains("no key is configured for algorithm HS256"));
}

TEST_CASE("a key pinned to one algorithm refuses the others of its family") {
    const auto rsa = TestKey::rsa("RS256", "r");
    auto r = verify_with(rsa, mint_token(rsa.with_alg("RS512"), "u", kNow));
    CHECK_THAT(r.status().message(), Catch::Contains("not for algorithm RS512"));
    auto pss = verify_with(rsa, mint_token(rsa.with_alg("PS256"), "u", kNow));
    CHECK_THAT(pss.status().message(), Catch::Contains("not for algorithm PS256"));
    const auto hs = TestKey::hmac("HS256", kSecret, "h");
    CHECK_THAT(verify_with(hs, mint_token(hs.with_alg("HS512"), "u", kNow)).status().message(),
               Catch::Contains("not for algorithm HS512"));
}

TEST_CASE("kid selects the key, and without kid every key of the algorithm is tried") {
    ScratchDir dir;
    TestClock clock;
    const auto a = TestKey::hmac("HS256", kSecret + "a", "a");
    const auto b = TestKey::hmac("HS256", kSecret + "b", "b");
    const auto rsa = TestKey::rsa("RS256", "r");
    auto auth = base_config();
    auth.keys = {inline_key(a, dir), inline_key(b, dir), inline_key(rsa, dir)};
    const auto verifier = make_verifier(auth, clock);

    CHECK(verifier->verify(mint_token(a, "ua", kNow)).is_ok());
    CHECK(verifier->verify(mint_token(b, "ub", kNow)).is_ok());
    CHECK(verifier->verify(mint_token(rsa, "ur", kNow)).is_ok());
    CHECK(verifier->verify(mint_token(b.with_kid(""), "ub", kNow)).is_ok());
    CHECK(verifier->verify(mint_token(rsa.with_kid(""), "ur", kNow)).is_ok());

    // b's signature under kid a: only key a is tried.
    auto wrong = verifier->verify(mint_token(b.with_kid("a"), "u", kNow));
    CHECK_THAT(wrong.status().message(), Catch::Contains("does not verify with kid 'a' (HMAC)"));

    auto unknown = verifier->verify(mint_token(a.with_kid("zzz"), "u", kNow));
    CHECK(unknown.status().code() == ErrorCode::kAuthInvalid);
    CHECK_THAT(unknown.status().message(), Catch::Contains("no key has the token's kid 'zzz'"));

    auto no_key =
        verifier->verify(mint_token(TestKey::hmac("HS256", "other-secret-other-secret-other-secret"), "u", kNow));
    CHECK_THAT(no_key.status().message(), Catch::Contains("does not verify with any of 2 keys"));
    CHECK_THAT(verifier->verify(mint_token(TestKey::ec("ES256"), "u", kNow)).status().message(),
               Catch::Contains("no key is configured for algorithm ES256"));
}

TEST_CASE("error messages never contain the token or a secret") {
    ScratchDir dir;
    TestClock clock;
    const auto key = TestKey::hmac("HS256", "s3cr3t-value-that-must-not-leak-0123456789", "k");
    auto auth = base_config();
    auth.audience = {"sluice"};
    auth.keys.push_back(inline_key(key, dir));
    const auto verifier = make_verifier(auth, clock);
    const std::vector<std::string> tokens{
        mint_token(key, "u", kNow, 3600, "other"),
        mint_token(key, "u", kNow - 7200, 3600, "sluice"),
        mint_token(key.with_kid("x"), "u", kNow),
        mint_token(TestKey::hmac("HS256", "wrong-secret-wrong-secret-wrong-secret", "k"), "u", kNow),
        sign_jwt(R"({"alg":"HS256","kid":"k"})", "not json", key),
    };
    for (const auto& token : tokens) {
        auto r = verifier->verify("Bearer " + token);
        REQUIRE_FALSE(r.is_ok());
        const auto text = r.status().to_string();
        CHECK(text.find(token) == std::string::npos);
        CHECK(text.find(token.substr(token.rfind('.') + 1)) == std::string::npos);
        CHECK(text.find(key.secret()) == std::string::npos);
    }
}

TEST_CASE("verify() is safe from many threads at once") {
    ScratchDir dir;
    TestClock clock;
    const auto hs = TestKey::hmac("HS256", kSecret, "h");
    const auto es = TestKey::ec("ES256", "e");
    auto auth = base_config();
    auth.keys = {inline_key(hs, dir), inline_key(es, dir)};
    const auto verifier = make_verifier(auth, clock);
    std::atomic<int> ok{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            const auto token = mint_token(t % 2 == 0 ? hs : es, "u" + std::to_string(t), kNow);
            for (int i = 0; i < 200; ++i) {
                auto r = verifier->verify(token);
                if (r.is_ok() && r->user_id == "u" + std::to_string(t)) ok.fetch_add(1);
            }
        });
    }
    for (auto& th : threads) th.join();
    CHECK(ok.load() == 800);
}

TEST_CASE("create() reports unusable keys with their config path") {
    ScratchDir dir;
    TestClock clock;
    auto expect_error = [&](const config::AuthConfig& auth, std::string_view text) {
        auto r = auth::TokenVerifier::create(auth, clock.clock());
        REQUIRE_FALSE(r.is_ok());
        INFO(r.status().to_string());
        CHECK_THAT(r.status().message(), Catch::Contains(std::string(text)));
    };
    auto auth = base_config();
    expect_error(auth, "no keys to verify tokens with");

    config::AuthKey missing{"k", "RS256", "", (dir.write("x", "") + ".absent")};
    auth.keys = {missing};
    expect_error(auth, "auth.keys[0].public_key_file: cannot read");

    auth.keys = {config::AuthKey{"k", "RS256", "", dir.write("garbage.pem", "not a key")}};
    expect_error(auth, "not a PEM public key");

    auth.keys = {config::AuthKey{"k", "ES256", "", dir.write("p384.pem", TestKey::ec("ES384").public_pem())}};
    expect_error(auth, "algorithm ES256 does not match the key's curve (which needs ES384)");

    auth.keys = {config::AuthKey{"k", "RS256", "", dir.write("ec.pem", TestKey::ec("ES256").public_pem())}};
    expect_error(auth, "algorithm RS256 does not match the EC key");

    auth.keys = {
        config::AuthKey{"k", "RS256", "", dir.write("small.pem", TestKey::rsa("RS256", "", 1024).public_pem())}};
    expect_error(auth, "at least 2048");

    auth.keys = {config::AuthKey{"k", "HS256", "", ""}};
    expect_error(auth, "auth.keys[0]: an HMAC key needs a non-empty secret");

    auth.keys = {config::AuthKey{"k", "RS256", "secret", ""}};
    expect_error(auth, "keys take 'public_key_file', not 'secret'");

    auth.keys = {config::AuthKey{"k", "XS1", "secret", ""}};
    expect_error(auth, "auth.keys[0].alg: 'XS1' is not a supported algorithm");

    auth.keys = {config::AuthKey{"k", "RS256", "", dir.write("rsa.pem", TestKey::rsa().public_pem())},
                 config::AuthKey{"k2", "HS256", "", "/some.pem"}};
    expect_error(auth, "auth.keys[1]: HS256 keys take 'secret'");
}

TEST_CASE("a PEM key without a pinned algorithm accepts only its own family") {
    const auto ed = TestKey::ed25519("ed");
    auto key = auth::key_from_pem("ed", std::nullopt, ed.public_pem());
    REQUIRE(key.is_ok());
    CHECK(key->accepts(auth::Algorithm::kEdDSA));
    CHECK_FALSE(key->accepts(auth::Algorithm::kES256));
    CHECK(key->describe() == "kid 'ed' (Ed25519)");
}
