// Reading the PowerSync transcripts (see wire_transcripts.h).
#include "tests/protocol/wire_transcripts.h"

#include <fstream>
#include <stdexcept>

namespace sluice::test {

const std::vector<std::string>& transcript_names() {
    static const std::vector<std::string> kNames{"initial-then-live", "resume-after-5", "per-user-buckets-and-moves"};
    return kNames;
}

std::vector<std::string> read_transcript(const std::string& name) {
    std::ifstream in(kProtocolDataDir + name + ".ndjson", std::ios::binary);
    if (!in) {
        throw std::runtime_error("cannot read transcript " + name);
    }
    std::vector<std::string> lines;
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty()) {
            lines.push_back(line);
        }
    }
    return lines;
}

}  // namespace sluice::test
