// Claims: sub, exp, iat, nbf with the leeway (edges at the injected clock), lifetime cap, aud as string
// or array, and malformed payloads.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include "server/auth/claims.h"
#include "tests/server/auth/auth_fixture.h"

using namespace sluice;
using namespace sluice::test;
using protocol::ErrorCode;

namespace {

const auth::ClaimRules kRules{{"sluice", "sluice-dev"}, 60, 86400};

protocol::Result<auth::VerifiedToken> check(const std::string& payload, const auth::ClaimRules& rules = kRules) {
    return auth::check_claims(payload, rules, kNow);
}

std::string claims(std::int64_t iat, std::int64_t exp, std::string_view extra = R"(,"aud":"sluice")") {
    return fmt::format(R"({{"sub":"u1","iat":{},"exp":{}{}}})", iat, exp, extra);
}

void expect(const protocol::Result<auth::VerifiedToken>& r, ErrorCode code, std::string_view text) {
    INFO(r.status().to_string());
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().code() == code);
    CHECK_THAT(r.status().message(), Catch::Contains(std::string(text)));
}

}  // namespace

TEST_CASE("a valid payload gives user id, expiry and the claims") {
    const auto payload = R"({"sub":"user-7","iat":1700000000,"exp":1700003600,"aud":"sluice","org":"acme"})";
    auto r = check(payload);
    REQUIRE(r.is_ok());
    CHECK(r->user_id == "user-7");
    CHECK(r->expires_at == 1700003600);
    CHECK(r->claims_json == payload);
}

TEST_CASE("exp with the leeway: expired is SL5103") {
    CHECK(check(claims(kNow - 100, kNow - 59)).is_ok());  // 59 s past exp, leeway 60
    expect(check(claims(kNow - 100, kNow - 60)), ErrorCode::kAuthExpired, "expired 60 s ago (leeway 60 s)");
    expect(check(claims(kNow - 7200, kNow - 3600)), ErrorCode::kAuthExpired, "expired 3600 s ago");
    auth::ClaimRules strict = kRules;
    strict.leeway_seconds = 0;
    CHECK(check(claims(kNow - 100, kNow + 1), strict).is_ok());
    expect(check(claims(kNow - 100, kNow), strict), ErrorCode::kAuthExpired, "expired 0 s ago");
}

TEST_CASE("nbf and iat in the future, beyond the leeway, are rejected") {
    CHECK(check(claims(kNow, kNow + 600, R"(,"aud":"sluice","nbf":1700000060)")).is_ok());
    expect(check(claims(kNow, kNow + 600, R"(,"aud":"sluice","nbf":1700000061)")), ErrorCode::kAuthInvalid,
           "not valid yet (nbf is 61 s ahead, leeway 60 s)");
    CHECK(check(claims(kNow + 60, kNow + 600)).is_ok());
    expect(check(claims(kNow + 61, kNow + 600)), ErrorCode::kAuthInvalid, "iat is 61 s in the future");
}

TEST_CASE("lifetime (exp - iat) is capped") {
    CHECK(check(claims(kNow, kNow + 86400)).is_ok());
    expect(check(claims(kNow, kNow + 86401)), ErrorCode::kAuthInvalid,
           "lifetime (exp - iat) is 86401 s, more than auth.max_lifetime_seconds 86400");
    expect(check(claims(kNow, kNow - 4)), ErrorCode::kAuthInvalid, "exp is before its iat");
    auth::ClaimRules uncapped = kRules;
    uncapped.max_lifetime_seconds = 0;
    CHECK(check(claims(kNow, kNow + 10 * 86400), uncapped).is_ok());
}

TEST_CASE("required claims and their types") {
    expect(check(R"({"iat":1700000000,"exp":1700000600,"aud":"sluice"})"), ErrorCode::kAuthInvalid, "no sub claim");
    expect(check(R"({"sub":42,"iat":1700000000,"exp":1700000600,"aud":"sluice"})"), ErrorCode::kAuthInvalid,
           "no sub claim");
    expect(check(R"({"sub":"","iat":1700000000,"exp":1700000600,"aud":"sluice"})"), ErrorCode::kAuthInvalid,
           "sub claim is empty");
    expect(check(R"({"sub":"u","iat":1700000000,"aud":"sluice"})"), ErrorCode::kAuthInvalid, "no exp claim");
    expect(check(R"({"sub":"u","exp":1700000600,"aud":"sluice"})"), ErrorCode::kAuthInvalid, "no iat claim");
    expect(check(R"({"sub":"u","iat":1700000000,"exp":"1700000600","aud":"sluice"})"), ErrorCode::kAuthInvalid,
           "not a valid number of seconds");
    expect(check(R"({"sub":"u","iat":1700000000,"exp":9223372036854775807,"aud":"sluice"})"), ErrorCode::kAuthInvalid,
           "not a valid number of seconds");
    expect(check(R"({"sub":"u","iat":1700000000,"exp":1700000600,"nbf":null,"aud":"sluice"})"), ErrorCode::kAuthInvalid,
           "not a valid number of seconds");
    // Fractional NumericDates are allowed.
    CHECK(check(R"({"sub":"u","iat":1700000000.5,"exp":1700000600.9,"aud":"sluice"})").is_ok());
    expect(check("not json"), ErrorCode::kAuthInvalid, "payload is not a JSON object");
    expect(check(R"(["sub"])"), ErrorCode::kAuthInvalid, "payload is not a JSON object");
    expect(check(R"({"sub":"u","sub":"admin","iat":1700000000,"exp":1700000600,"aud":"sluice"})"),
           ErrorCode::kAuthInvalid, "duplicate claim");
}

TEST_CASE("aud must match a configured audience when any is configured") {
    CHECK(check(claims(kNow, kNow + 60, R"(,"aud":"sluice-dev")")).is_ok());
    CHECK(check(claims(kNow, kNow + 60, R"(,"aud":["other","sluice"])")).is_ok());
    expect(check(claims(kNow, kNow + 60, R"(,"aud":"other")")), ErrorCode::kAuthInvalid,
           "aud 'other' matches none of auth.audience");
    expect(check(claims(kNow, kNow + 60, R"(,"aud":["a","b"])")), ErrorCode::kAuthInvalid, "matches none");
    expect(check(claims(kNow, kNow + 60, R"(,"aud":[])")), ErrorCode::kAuthInvalid, "matches none");
    expect(check(claims(kNow, kNow + 60, "")), ErrorCode::kAuthInvalid, "no aud claim");
    expect(check(claims(kNow, kNow + 60, R"(,"aud":["sluice",1])")), ErrorCode::kAuthInvalid, "not a string");
    expect(check(claims(kNow, kNow + 60, R"(,"aud":{"x":1})")), ErrorCode::kAuthInvalid, "neither a string");
    expect(check(claims(kNow, kNow + 60, R"(,"aud":"SLUICE")")), ErrorCode::kAuthInvalid, "matches none");
    auth::ClaimRules any = kRules;
    any.audience.clear();
    CHECK(check(claims(kNow, kNow + 60, R"(,"aud":"whatever")"), any).is_ok());
    CHECK(check(claims(kNow, kNow + 60, ""), any).is_ok());
}

TEST_CASE("claims are checked through the verifier with the injected clock") {
    ScratchDir dir;
    TestClock clock;
    const auto key = TestKey::ec("ES384", "e");
    auto auth = base_config();
    auth.audience = {"sluice"};
    auth.keys.push_back(inline_key(key, dir));
    const auto verifier = make_verifier(auth, clock);
    const auto token = mint_token(key, "u1", kNow, 600, "sluice");
    CHECK(verifier->verify(token).is_ok());
    CHECK(verifier->verify(mint_token(key, "u1", kNow, 600, "other")).status().code() == ErrorCode::kAuthInvalid);
    clock.advance(600 + 59);
    CHECK(verifier->verify(token).is_ok());
    clock.advance(1);
    CHECK(verifier->verify(token).status().code() == ErrorCode::kAuthExpired);
    // A forged token that is also expired reports the signature, not the expiry.
    const auto forged = mint_token(TestKey::ec("ES384", "e"), "u1", kNow, 600, "sluice");
    CHECK_THAT(verifier->verify(forged).status().message(), Catch::Contains("does not verify"));
}
