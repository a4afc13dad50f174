// Maps byte offsets inside a YAML scalar's decoded value (the SQL text) back to file:line:col,
// for plain, 'single', "double" (with escapes) and block (| and >) scalars. Internal.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/status.h"

namespace sluice::config::rules::detail {

// Line starts of a file, for offset -> line:col (columns count bytes, as yaml-cpp's marks do).
class LineIndex {
public:
    explicit LineIndex(std::string_view text);
    [[nodiscard]] std::size_t offset_of(int line0, int col0) const;
    [[nodiscard]] protocol::SourcePos pos(const std::string& file, std::size_t offset) const;

private:
    std::vector<std::size_t> m_starts;
};

class ScalarMap {
public:
    // text: the whole file; node_offset: where yaml-cpp says the scalar node starts; decoded: its value.
    ScalarMap(std::string_view text, std::size_t node_offset, std::string_view decoded);
    // File offset of decoded[offset] (offset == decoded.size() gives the end).
    [[nodiscard]] std::size_t file_offset(std::size_t offset) const;

private:
    std::vector<std::uint32_t> m_offsets;
    std::size_t m_node_offset;
};

}  // namespace sluice::config::rules::detail
