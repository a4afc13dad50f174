// Checks a sync-rules file without compiling it into a rule set: the entry point `sluice check` uses.
// Pure: takes the text, returns every diagnostic with its position.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/diagnostic.h"

namespace sluice::config {

[[nodiscard]] std::vector<Diagnostic> check_sync_rules(std::string_view text, const std::string& file);

}  // namespace sluice::config
