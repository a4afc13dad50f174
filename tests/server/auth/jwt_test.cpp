// JWS compact parsing: base64url strictness, token shape, header checks (alg none, crit, kid) and
// malformed input through the verifier.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include "server/auth/jwt.h"
#include "tests/server/auth/auth_fixture.h"

using namespace sluice;
using namespace sluice::test;
using protocol::ErrorCode;

namespace {

std::string parse_error(std::string_view token) {
    auto parsed = auth::parse_jwt(token);
    REQUIRE_FALSE(parsed.is_ok());
    CHECK(parsed.status().code() == ErrorCode::kAuthInvalid);
    return parsed.status().message();
}

std::string token_with_header(std::string_view header) {
    return base64url(header) + "." + base64url(R"({"sub":"u"})") + "." + base64url("sig");
}

}  // namespace

TEST_CASE("base64url round-trips every length and rejects non-canonical text") {
    std::string bytes;
    for (int i = 0; i < 70; ++i) {
        const auto encoded = auth::base64url_encode(bytes);
        CHECK(encoded == base64url(bytes));
        auto decoded = auth::base64url_decode(encoded);
        REQUIRE(decoded);
        CHECK(*decoded == bytes);
        bytes.push_back(static_cast<char>(i * 37 + 255));
    }
    CHECK(auth::base64url_decode("")->empty());
    CHECK(*auth::base64url_decode("-_8") == "\xfb\xff");
    CHECK_FALSE(auth::base64url_decode("YQ=="));  // padding
    CHECK_FALSE(auth::base64url_decode("a+b/"));  // standard alphabet
    CHECK_FALSE(auth::base64url_decode("a b"));
    CHECK_FALSE(auth::base64url_decode("abcde"));  // length % 4 == 1
    CHECK_FALSE(auth::base64url_decode("YR"));     // non-zero trailing bits
    CHECK(*auth::base64url_decode("YQ") == "a");
}

TEST_CASE("algorithm names") {
    for (std::string_view name : {"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                                  "ES256", "ES384", "ES512", "EdDSA"}) {
        auto alg = auth::algorithm_from_name(name);
        REQUIRE(alg);
        CHECK(auth::algorithm_name(*alg) == name);
    }
    CHECK_FALSE(auth::algorithm_from_name("none"));
    CHECK_FALSE(auth::algorithm_from_name("hs256"));
    CHECK(auth::key_family(auth::Algorithm::kHS256) == auth::KeyFamily::kHmac);
    CHECK(auth::key_family(auth::Algorithm::kPS384) == auth::KeyFamily::kRsa);
    CHECK(auth::key_family(auth::Algorithm::kES512) == auth::KeyFamily::kEc);
    CHECK(auth::key_family(auth::Algorithm::kEdDSA) == auth::KeyFamily::kEd25519);
}

TEST_CASE("a well-formed token splits into its parts") {
    const auto key = TestKey::hmac("HS384", "secret-secret-secret-secret-secret-secret-12", "k1");
    const auto token = sign_jwt(R"({"alg":"HS384","kid":"k1","typ":"JWT"})", R"({"sub":"u1"})", key);
    auto parts = auth::parse_jwt(token);
    REQUIRE(parts.is_ok());
    CHECK(parts->alg == auth::Algorithm::kHS384);
    CHECK(parts->kid == std::optional<std::string>("k1"));
    CHECK(parts->payload_json == R"({"sub":"u1"})");
    CHECK(parts->signing_input == token.substr(0, token.rfind('.')));
    CHECK(parts->signature.size() == 48);
}

TEST_CASE("malformed tokens are rejected with the failed check named") {
    CHECK_THAT(parse_error("abc"), Catch::Contains("three base64url parts"));
    CHECK_THAT(parse_error("abc.def"), Catch::Contains("three base64url parts"));
    CHECK_THAT(parse_error("a.b.c.d"), Catch::Contains("three base64url parts"));
    CHECK_THAT(parse_error("e30=.e30.c2ln"), Catch::Contains("header is not valid base64url"));
    CHECK_THAT(parse_error(".e30.c2ln"), Catch::Contains("header is not valid base64url"));
    CHECK_THAT(parse_error(base64url(R"({"alg":"HS256"})") + ".e3*.c2ln"), Catch::Contains("payload is not valid"));
    CHECK_THAT(parse_error(base64url(R"({"alg":"HS256"})") + ".e30.c2l+"), Catch::Contains("signature is not valid"));
    CHECK_THAT(parse_error(base64url(R"({"alg":"HS256"})") + ".e30."), Catch::Contains("empty signature"));
    CHECK_THAT(parse_error(token_with_header("not json")), Catch::Contains("header is not a JSON object"));
    CHECK_THAT(parse_error(token_with_header("[1,2]")), Catch::Contains("header is not a JSON object"));
    CHECK_THAT(parse_error(token_with_header("{}")), Catch::Contains("no alg"));
    CHECK_THAT(parse_error(token_with_header(R"({"alg":256})")), Catch::Contains("alg is not a string"));
    CHECK_THAT(parse_error(token_with_header(R"({"alg":"XS256"})")), Catch::Contains("'XS256' is not supported"));
    CHECK_THAT(parse_error(token_with_header(R"({"alg":"HS256","alg":"RS256"})")), Catch::Contains("duplicate"));
    CHECK_THAT(parse_error(token_with_header(R"({"alg":"HS256","kid":7})")), Catch::Contains("kid is not a string"));
    CHECK_THAT(parse_error(token_with_header(R"({"alg":"HS256","crit":["b64"],"b64":false})")),
               Catch::Contains("crit"));
    CHECK_THAT(parse_error(std::string(auth::kMaxTokenBytes + 1, 'a')), Catch::Contains("longer than"));
}

TEST_CASE("alg none is refused in every spelling") {
    for (std::string_view alg : {"none", "None", "NONE"}) {
        const auto token = base64url(fmt::format(R"({{"alg":"{}"}})", alg)) + "." + base64url(R"({"sub":"u"})") + ".";
        CHECK_THAT(parse_error(token), Catch::Contains("alg none"));
        const auto signed_token = token_with_header(fmt::format(R"({{"alg":"{}"}})", alg));
        CHECK_THAT(parse_error(signed_token), Catch::Contains("alg none"));
    }
}

TEST_CASE("printable keeps untrusted text short and on one line") {
    CHECK(auth::printable("kid-1") == "kid-1");
    CHECK(auth::printable("a\nb\x01") == "a?b?");
    const std::string long_text(100, 'x');
    const std::string shown = auth::printable(long_text);
    CHECK(shown.size() == 67);
    CHECK(shown.ends_with("x..."));
}

TEST_CASE("the Authorization value: Bearer, Token, bare, or missing") {
    ScratchDir dir;
    TestClock clock;
    const auto key = TestKey::hmac("HS256", "0123456789abcdef0123456789abcdef");
    auto auth = base_config();
    auth.keys.push_back(inline_key(key, dir));
    const auto verifier = make_verifier(auth, clock);
    const auto token = mint_token(key, "u1", kNow);
    for (const auto& value : {"Bearer " + token, "bearer " + token, "BEARER  " + token, "Token " + token, token,
                              "  Bearer\t" + token + "\r\n"}) {
        auto r = verifier->verify(value);
        INFO(value << " -> " << r.status().to_string());
        CHECK(r.is_ok());
    }
    for (std::string_view missing : {"", "   ", "Bearer", "Bearer ", "token  "}) {
        auto r = verifier->verify(missing);
        CHECK(r.status().code() == ErrorCode::kAuthMissing);
    }
    CHECK(verifier->verify("Basic dXNlcjpwYXNz").status().code() == ErrorCode::kAuthInvalid);
    CHECK(verifier->verify("Bearer " + std::string(100'000, 'a')).status().code() == ErrorCode::kAuthInvalid);
}

TEST_CASE("no single-character change to a signed token is accepted") {
    ScratchDir dir;
    TestClock clock;
    const auto key = TestKey::ec("ES256", "e");
    auto auth = base_config();
    auth.keys.push_back(inline_key(key, dir));
    const auto verifier = make_verifier(auth, clock);
    const auto token = mint_token(key, "u1", kNow);
    REQUIRE(verifier->verify(token).is_ok());
    const std::string replacements = "Aa0-_.=+/ \x01\xff";
    int accepted = 0;
    for (std::size_t i = 0; i < token.size(); ++i) {
        for (char c : replacements) {
            if (token[i] == c) continue;
            std::string mutated = token;
            mutated[i] = c;
            accepted += verifier->verify(mutated).is_ok() ? 1 : 0;
        }
    }
    CHECK(accepted == 0);
}
