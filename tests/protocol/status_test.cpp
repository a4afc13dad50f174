// Status and Result: values, codes and their text forms.
#include <catch2/catch.hpp>

#include "protocol/status.h"

using sluice::protocol::ErrorCode;
using sluice::protocol::Result;
using sluice::protocol::Status;

namespace {
Result<int> half(int n) {
    if (n % 2 != 0) {
        return Status(ErrorCode::kBadRequest, "odd");
    }
    return n / 2;
}
}  // namespace

TEST_CASE("Status text includes the code id and, when known, the position") {
    CHECK(Status().is_ok());
    CHECK(Status(ErrorCode::kSourceWalLevel, "wal_level is replica").to_string() == "SL3003: wal_level is replica");
    CHECK(Status(ErrorCode::kRulesSyntax, "bad", {"rules.yaml", 3, 7}).to_string() == "rules.yaml:3:7: SL2002: bad");
}

TEST_CASE("Result holds a value or a failed status") {
    auto ok = half(4);
    REQUIRE(ok.is_ok());
    CHECK(ok.value() == 2);
    CHECK(ok.status().is_ok());
    auto bad = half(3);
    REQUIRE_FALSE(bad.is_ok());
    CHECK(bad.status().code() == ErrorCode::kBadRequest);
}
