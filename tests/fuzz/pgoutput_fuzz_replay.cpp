// Replays the pgoutput fuzz entry point under g++ (no libFuzzer): the seed corpus, every captured
// frame, and deterministic mutations of them (bit flips, truncations, splices), so that the fuzz
// target runs in every normal test run.
#include <cstdint>
#include <filesystem>
#include <random>

#include <catch2/catch.hpp>

#include "tests/fuzz/fuzz_replay.h"
#include "tests/protocol/pgoutput_corpus.h"

namespace {

void run(const std::string& input) { sluice::test::feed_fuzz_target(input); }

std::vector<std::string> seeds() { return sluice::test::read_corpus(sluice::test::kPgoutputDataDir + "corpus"); }

}  // namespace

TEST_CASE("the fuzz target survives the seed corpus and the captured frames") {
    const auto corpus = seeds();
    REQUIRE(corpus.size() >= 20);
    for (const auto& s : corpus) {
        run(s);
    }
    for (const auto* name : {"changes", "values", "stream"}) {
        for (const auto& frame : sluice::test::read_frames(name)) {
            run(frame);
            run(frame.substr(std::min<std::size_t>(25, frame.size())));  // the bare pgoutput payload
        }
    }
}

TEST_CASE("the fuzz target survives deterministic mutations of the corpus") {
    const auto corpus = seeds();
    std::mt19937 rng(20240229);  // fixed: a failure reproduces
    for (int round = 0; round < 20000; ++round) {
        std::string input = corpus[rng() % corpus.size()];
        const int edits = 1 + static_cast<int>(rng() % 4);
        for (int e = 0; e < edits && !input.empty(); ++e) {
            const auto at = rng() % input.size();
            switch (rng() % 5) {
                case 0: input[at] = static_cast<char>(input[at] ^ (1U << (rng() % 8))); break;
                case 1: input.resize(at); break;
                case 2: input[at] = static_cast<char>(rng() % 256); break;
                case 3: input.insert(at, 1, static_cast<char>(rng() % 256)); break;
                default: input.append(corpus[rng() % corpus.size()].substr(0, rng() % 64)); break;
            }
        }
        run(input);
    }
    SUCCEED();
}
