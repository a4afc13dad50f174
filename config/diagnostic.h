// Diagnostic: one problem found in a config or rules file, with its place, its YAML path and a
// message that quotes the bad value and says what was expected. Loaders collect all of them.
#pragma once

#include <string>
#include <vector>

#include "protocol/status.h"

namespace sluice::config {

enum class Severity {
    kError,    // the file cannot be used
    kWarning,  // the file works, but probably not as intended
};

struct Diagnostic {
    Severity severity = Severity::kError;
    protocol::ErrorCode code = protocol::ErrorCode::kInternal;
    protocol::SourcePos pos;
    std::string path;     // YAML key path, e.g. "server.port" or "auth.keys[1].alg"; may be empty
    std::string message;  // quotes the offending text and says what was expected

    // "sluice.yaml:4:9: error: server.port: 70000 is out of range; expected ... [SL1005]"
    [[nodiscard]] std::string to_string() const;
};

[[nodiscard]] bool has_errors(const std::vector<Diagnostic>& diagnostics);

}  // namespace sluice::config
