// Shared by the g++ replays of the libFuzzer entry points: feeding one input to the linked target,
// and reading a seed-corpus folder.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace sluice::test {

inline void feed_fuzz_target(const std::string& input) {
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());  // NOLINT
}

// Every file of `dir`, in directory order.
inline std::vector<std::string> read_corpus(const std::string& dir) {
    std::vector<std::string> out;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        std::ifstream in(entry.path(), std::ios::binary);
        std::stringstream text;
        text << in.rdbuf();
        out.push_back(text.str());
    }
    return out;
}

}  // namespace sluice::test
