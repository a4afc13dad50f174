// Test helpers for the captured pgoutput corpus in tests/data/pgoutput/: reading frames and the
// type-resolver file the capture tool wrote, and rendering decoded frames as golden text.
#pragma once

#include <string>
#include <vector>

#include "protocol/pgoutput/pg_types.h"

namespace sluice::test {

inline const std::string kPgoutputDataDir = std::string(SLUICE_SOURCE_DIR) + "/tests/data/pgoutput/";

// The frames of <case>.frames, as bytes.
[[nodiscard]] std::vector<std::string> read_frames(const std::string& case_name);
// A resolver built from <case>.types.
[[nodiscard]] protocol::pgoutput::TypeResolver read_types(const std::string& case_name);
// Every frame rendered on its line(s): the frame, the message, and for row changes each column
// decoded to its client JSON (blobs as x'hex', unchanged TOAST as <unchanged>).
[[nodiscard]] std::string render_frames(const std::vector<std::string>& frames,
                                        const protocol::pgoutput::TypeResolver& types);
[[nodiscard]] std::string read_text(const std::string& path);

}  // namespace sluice::test
