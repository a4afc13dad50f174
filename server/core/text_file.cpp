// Whole-file reads (see text_file.h).
#include "server/core/text_file.h"

#include <fstream>
#include <sstream>

namespace sluice::core {

std::optional<std::string> read_text_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return std::nullopt;
    }
    std::ostringstream text;
    text << in.rdbuf();
    return std::move(text).str();
}

}  // namespace sluice::core
