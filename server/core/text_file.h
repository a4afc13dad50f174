// Reading a whole text file (config, rules, JSON arguments) for the command-line tools.
#pragma once

#include <optional>
#include <string>

namespace sluice::core {

// The file's bytes; nullopt when it cannot be opened (errno says why).
[[nodiscard]] std::optional<std::string> read_text_file(const std::string& path);

}  // namespace sluice::core
