// Golden tests of the pgoutput decoder on frames captured from a real Postgres 15
// (tests/data/pgoutput/<case>.frames, captured by pgoutput_capture from <case>.setup.sql and
// <case>.sql): every frame decodes, and its rendering equals <case>.expected. Set
// SLUICE_UPDATE_GOLDEN=1 to rewrite the .expected files after reviewing a change.
#include <cstdlib>
#include <fstream>

#include <catch2/catch.hpp>

#include "tests/protocol/pgoutput_corpus.h"

namespace {

void check_golden(const std::string& name) {
    const auto frames = sluice::test::read_frames(name);
    REQUIRE_FALSE(frames.empty());
    const auto rendered = sluice::test::render_frames(frames, sluice::test::read_types(name));
    CHECK(rendered.find("error") == std::string::npos);
    const auto expected_path = sluice::test::kPgoutputDataDir + name + ".expected";
    if (const char* update = std::getenv("SLUICE_UPDATE_GOLDEN"); update != nullptr && std::string(update) == "1") {
        std::ofstream(expected_path, std::ios::binary) << rendered;
    }
    const auto expected = sluice::test::read_text(expected_path);
    // Compare line by line so that a failure shows the first differing line.
    std::istringstream a(rendered);
    std::istringstream b(expected);
    std::string la;
    std::string lb;
    int line = 0;
    while (true) {
        const bool more_a = static_cast<bool>(std::getline(a, la));
        const bool more_b = static_cast<bool>(std::getline(b, lb));
        ++line;
        if (!more_a && !more_b) {
            break;
        }
        INFO(name << ".expected line " << line);
        REQUIRE(la == lb);
        REQUIRE(more_a == more_b);
    }
}

}  // namespace

TEST_CASE("golden: inserts, updates and deletes under each replica identity, TOAST, truncate, messages, origin") {
    check_golden("changes");
}

TEST_CASE("golden: every decoded value type") { check_golden("values"); }

TEST_CASE("golden: protocol v2 streamed transactions, committed, aborted and with a rolled-back subtransaction") {
    check_golden("stream");
}
