// Text forms of Status and SourcePos.
#include "protocol/status.h"

#include <fmt/format.h>

namespace sluice::protocol {

std::string SourcePos::to_string() const {
    if (!known()) {
        return file;
    }
    return fmt::format("{}:{}:{}", file, line, column);
}

std::string Status::to_string() const {
    if (m_pos.known()) {
        return fmt::format("{}: {}: {}", m_pos.to_string(), error_id(m_code), m_message);
    }
    return fmt::format("{}: {}", error_id(m_code), m_message);
}

}  // namespace sluice::protocol
