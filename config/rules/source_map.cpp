// Scalar position mapping (see detail/source_map.h): aligns the decoded value with the raw text.
#include "config/rules/detail/source_map.h"

#include <algorithm>

namespace sluice::config::rules::detail {

LineIndex::LineIndex(std::string_view text) {
    m_starts.push_back(0);
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\n') {
            m_starts.push_back(i + 1);
        }
    }
}

std::size_t LineIndex::offset_of(int line0, int col0) const {
    if (line0 < 0 || static_cast<std::size_t>(line0) >= m_starts.size()) {
        return 0;
    }
    return m_starts[static_cast<std::size_t>(line0)] + static_cast<std::size_t>(std::max(col0, 0));
}

protocol::SourcePos LineIndex::pos(const std::string& file, std::size_t offset) const {
    auto it = std::upper_bound(m_starts.begin(), m_starts.end(), offset);
    const auto line = static_cast<std::size_t>(it - m_starts.begin());  // 1-based
    const std::size_t start = m_starts[line - 1];
    return {file, static_cast<int>(line), static_cast<int>(offset - start + 1)};
}

namespace {

bool skippable(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\'' || c == '"' || c == '\\'; }

}  // namespace

ScalarMap::ScalarMap(std::string_view text, std::size_t node_offset, std::string_view decoded)
    : m_node_offset(node_offset) {
    m_offsets.assign(decoded.size() + 1, static_cast<std::uint32_t>(node_offset));
    if (node_offset >= text.size()) {
        return;
    }
    const char style = text[node_offset];
    std::size_t j = node_offset;
    if (style == '|' || style == '>') {
        while (j < text.size() && text[j] != '\n') {
            ++j;
        }
    } else if (style == '"' || style == '\'') {
        ++j;
    }
    const bool double_quoted = style == '"';
    std::size_t i = 0;
    while (i < decoded.size()) {
        if (j >= text.size()) {
            break;
        }
        if (double_quoted && text[j] == '\\' && j + 1 < text.size()) {
            const char e = text[j + 1];
            if (e == '\n' || e == '\r') {  // escaped line break: joins lines
                j += 2;
                while (j < text.size() && (text[j] == ' ' || text[j] == '\t' || text[j] == '\n')) {
                    ++j;
                }
                continue;
            }
            std::size_t raw_len = 2;
            std::size_t produced = 1;
            if (e == 'x' || e == 'u' || e == 'U') {
                raw_len = e == 'x' ? 4 : e == 'u' ? 6 : 10;
                const auto lead = static_cast<unsigned char>(decoded[i]);
                produced = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
            }
            for (std::size_t k = 0; k < produced && i < decoded.size(); ++k) {
                m_offsets[i++] = static_cast<std::uint32_t>(j);
            }
            j += raw_len;
            continue;
        }
        while (j < text.size() && text[j] != decoded[i] && skippable(text[j])) {
            ++j;
        }
        if (j >= text.size() || text[j] != decoded[i]) {
            break;
        }
        m_offsets[i++] = static_cast<std::uint32_t>(j++);
    }
    // Whatever could not be aligned points at the last aligned place.
    const std::uint32_t last = i > 0 ? m_offsets[i - 1] + 1 : static_cast<std::uint32_t>(node_offset);
    for (; i <= decoded.size(); ++i) {
        m_offsets[i] = last;
    }
    if (!decoded.empty()) {
        m_offsets[decoded.size()] = m_offsets[decoded.size() - 1] + 1;
    }
}

std::size_t ScalarMap::file_offset(std::size_t offset) const {
    if (offset >= m_offsets.size()) {
        return m_offsets.empty() ? m_node_offset : m_offsets.back();
    }
    return m_offsets[offset];
}

}  // namespace sluice::config::rules::detail
