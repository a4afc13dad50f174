// Length-prefixed string lists (see field_codec.h).
#include "server/core/field_codec.h"

#include <charconv>

namespace sluice::core {

void append_field(std::string& out, std::string_view field) {
    char digits[24];
    auto [end, ec] = std::to_chars(digits, digits + sizeof digits, field.size());
    (void)ec;
    out.append(digits, end);
    out += ':';
    out.append(field);
}

std::optional<std::vector<std::string>> decode_fields(std::string_view text) {
    std::vector<std::string> fields;
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t length = 0;
        const char* first = text.data() + pos;
        const char* last = text.data() + text.size();
        auto [colon, ec] = std::from_chars(first, last, length);
        if (ec != std::errc{} || colon == last || *colon != ':') {
            return std::nullopt;
        }
        pos = static_cast<std::size_t>(colon - text.data()) + 1;
        if (length > text.size() - pos) {
            return std::nullopt;
        }
        fields.emplace_back(text.substr(pos, length));
        pos += length;
    }
    return fields;
}

}  // namespace sluice::core
