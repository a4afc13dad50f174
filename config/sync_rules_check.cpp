// `sluice check` for the sync-rules file: runs the full rules compiler (config/rules/rule_set.h) and
// returns every error and warning it finds, each with file:line:col and YAML path.
#include "config/sync_rules_check.h"

#include "config/rules/rule_set.h"

namespace sluice::config {

std::vector<Diagnostic> check_sync_rules(std::string_view text, const std::string& file) {
    return rules::RuleSet::compile(text, file).diagnostics;
}

}  // namespace sluice::config
