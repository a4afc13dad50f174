// Lsn: Postgres's "X/Y" text form both ways, and ordering.
#include <catch2/catch.hpp>

#include "protocol/lsn.h"

using sluice::protocol::Lsn;

TEST_CASE("Lsn parses and prints Postgres's text form") {
    auto lsn = Lsn::parse("16/B374D848");
    REQUIRE(lsn.has_value());
    CHECK(lsn->value() == 0x16B374D848ULL);
    CHECK(lsn->to_string() == "16/B374D848");
    CHECK(Lsn::parse("0/0")->value() == 0);
    CHECK(Lsn(0xFFFFFFFFFFFFFFFFULL).to_string() == "FFFFFFFF/FFFFFFFF");
}

TEST_CASE("Lsn rejects malformed text") {
    for (const char* bad : {"", "/", "1/", "/1", "1/G", "123456789/0", "0/123456789", "1//2", " 1/2", "1/2 "}) {
        INFO(bad);
        CHECK_FALSE(Lsn::parse(bad).has_value());
    }
}

TEST_CASE("Lsn orders by position") {
    CHECK(*Lsn::parse("1/0") > *Lsn::parse("0/FFFFFFFF"));
    CHECK(Lsn(5) == Lsn(5));
}
