// Test helper: the real PowerSync transcripts in tests/data/protocol/ (see its README.md), read
// line by line.
#pragma once

#include <string>
#include <vector>

namespace sluice::test {

inline const std::string kProtocolDataDir = std::string(SLUICE_SOURCE_DIR) + "/tests/data/protocol/";

// The three transcript names, without ".ndjson".
const std::vector<std::string>& transcript_names();

// The lines of tests/data/protocol/<name>.ndjson, without their newlines.
std::vector<std::string> read_transcript(const std::string& name);

}  // namespace sluice::test
