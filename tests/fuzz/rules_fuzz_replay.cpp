// Replays the rules fuzz target over its seed corpus (tests/data/rules/fuzz_corpus/) and over
// deterministic mutations of each seed (truncations, byte flips), so CI exercises it under g++.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

void run(const std::string& input) {
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
}

}  // namespace

TEST_CASE("rules fuzz target survives its seed corpus and mutations of it") {
    const auto dir = std::filesystem::path(SLUICE_SOURCE_DIR) / "tests/data/rules/fuzz_corpus";
    std::size_t seeds = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        std::ifstream in(entry.path(), std::ios::binary);
        std::ostringstream s;
        s << in.rdbuf();
        const std::string seed = s.str();
        run(seed);
        for (std::size_t cut = 1; cut < seed.size(); cut += 1 + seed.size() / 40) {
            run(seed.substr(0, cut));
        }
        static constexpr char kBytes[] = {'\'', '"', '(', ')', '-', '\n', ' ', ':', '|', '\0', '\xff', '*'};
        for (std::size_t i = 0; i < seed.size(); i += 1 + seed.size() / 60) {
            std::string mutated = seed;
            mutated[i] = kBytes[i % sizeof kBytes];
            run(mutated);
        }
        ++seeds;
    }
    CHECK(seeds >= 5);
}
