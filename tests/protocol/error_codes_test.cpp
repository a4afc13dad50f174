// The error-code registry: ids unique, well-formed, in the range their code says.
#include <set>

#include <catch2/catch.hpp>

#include "protocol/error_codes.h"

using sluice::protocol::all_errors;
using sluice::protocol::ErrorCode;

TEST_CASE("every error code has a unique id matching its number") {
    std::set<std::string_view> ids;
    for (const auto& e : all_errors()) {
        CHECK(ids.insert(e.id).second);
        REQUIRE(e.id.size() == 6);
        CHECK(e.id.substr(0, 2) == "SL");
        CHECK(std::stoi(std::string(e.id.substr(2))) == static_cast<int>(e.code));
        CHECK_FALSE(e.cause.empty());
        CHECK_FALSE(e.fix.empty());
    }
}

TEST_CASE("error_id of a known and an unregistered code") {
    CHECK(sluice::protocol::error_id(ErrorCode::kSourceWalLevel) == "SL3003");
    CHECK(sluice::protocol::error_id(static_cast<ErrorCode>(4242)) == "SL9001");
}
