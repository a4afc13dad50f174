// Helpers shared by the YAML-based loaders (sluice.yaml, sync rules): positions, parse errors,
// ${ENV_VAR} substitution. yaml-cpp stays out of this header's users' way: only the .cpp needs it.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "protocol/status.h"

namespace YAML {
class Node;
struct Mark;
}  // namespace YAML

namespace sluice::config {

// Looks up an environment variable; nullopt when unset. Injected so loaders stay pure.
using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;

// yaml-cpp marks count from 0; SourcePos counts from 1.
[[nodiscard]] protocol::SourcePos to_pos(const std::string& file, const YAML::Mark& mark);

// Replaces ${NAME} and ${NAME:-fallback} in text; "$$" writes a literal "$". On an unset variable
// without fallback (or a malformed reference) returns an error message naming it.
struct EnvSubstitution {
    std::string value;
    std::string error;  // empty on success
};
[[nodiscard]] EnvSubstitution substitute_env(std::string_view text, const EnvLookup& env);

// Damerau-free Levenshtein distance, for "did you mean" suggestions.
[[nodiscard]] std::size_t edit_distance(std::string_view a, std::string_view b);

}  // namespace sluice::config
