// Text form of a Diagnostic, the one format `sluice check` prints.
#include "config/diagnostic.h"

#include <algorithm>

#include <fmt/format.h>

namespace sluice::config {

std::string Diagnostic::to_string() const {
    std::string out = pos.to_string();
    out += severity == Severity::kError ? ": error: " : ": warning: ";
    if (!path.empty()) {
        out += path;
        out += ": ";
    }
    out += message;
    out += fmt::format(" [{}]", protocol::error_id(code));
    return out;
}

bool has_errors(const std::vector<Diagnostic>& diagnostics) {
    return std::any_of(diagnostics.begin(), diagnostics.end(),
                       [](const Diagnostic& d) { return d.severity == Severity::kError; });
}

}  // namespace sluice::config
