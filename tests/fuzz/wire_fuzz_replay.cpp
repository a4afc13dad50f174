// Replays the wire-protocol fuzz entry point under g++ (no libFuzzer): the seed corpus
// (tests/data/protocol/fuzz-corpus), every transcript line, and deterministic mutations of them, so
// that the fuzz target runs in every normal test run.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <catch2/catch.hpp>

#include "tests/fuzz/fuzz_replay.h"
#include "tests/protocol/wire_transcripts.h"

namespace {

void run(const std::string& input) { sluice::test::feed_fuzz_target(input); }

std::vector<std::string> seeds() {
    auto out = sluice::test::read_corpus(sluice::test::kProtocolDataDir + "fuzz-corpus");
    for (const auto& name : sluice::test::transcript_names()) {
        for (auto& line : sluice::test::read_transcript(name)) {
            out.push_back(std::move(line));
        }
    }
    return out;
}

}  // namespace

TEST_CASE("the wire fuzz target survives the seed corpus and the transcripts") {
    const auto corpus = seeds();
    REQUIRE(corpus.size() >= 40);
    for (const auto& s : corpus) {
        run(s);
    }
}

TEST_CASE("the wire fuzz target survives deterministic mutations of the corpus") {
    const auto corpus = seeds();
    std::mt19937 rng(20261127);  // fixed: a failure reproduces
    constexpr std::string_view kTokens[] = {"{",
                                            "}",
                                            "[",
                                            "]",
                                            ",",
                                            ":",
                                            "\"",
                                            "null",
                                            "-1",
                                            "1e400",
                                            "\\u0000",
                                            "\"op_id\":",
                                            "\"checksum\":",
                                            "18446744073709551616",
                                            "4294967296"};
    for (int round = 0; round < 20000; ++round) {
        std::string input = corpus[rng() % corpus.size()];
        const int edits = 1 + static_cast<int>(rng() % 4);
        for (int e = 0; e < edits && !input.empty(); ++e) {
            const auto at = rng() % input.size();
            switch (rng() % 6) {
                case 0:
                    input[at] = static_cast<char>(input[at] ^ (1U << (rng() % 8)));
                    break;
                case 1:
                    input.resize(at);
                    break;
                case 2:
                    input[at] = static_cast<char>(rng() % 256);
                    break;
                case 3:
                    input.insert(at, kTokens[rng() % std::size(kTokens)]);
                    break;
                case 4:
                    input.erase(at, 1 + rng() % 8);
                    break;
                default:
                    input.append(corpus[rng() % corpus.size()].substr(0, rng() % 64));
                    break;
            }
        }
        run(input);
    }
    SUCCEED("20000 mutated inputs");
}
