// Postgres array literal encoding (see pg_array.h).
#include "server/storage/pg_array.h"

namespace sluice::storage {

std::string to_pg_array(const std::vector<std::string>& items) {
    std::size_t size = 2;
    for (const auto& item : items) {
        size += item.size() + 3;
    }
    std::string out;
    out.reserve(size);
    out += '{';
    for (std::size_t i = 0; i < items.size(); ++i) {
        if (i > 0) {
            out += ',';
        }
        out += '"';
        for (const char c : items[i]) {
            if (c == '"' || c == '\\') {
                out += '\\';
            }
            out += c;
        }
        out += '"';
    }
    out += '}';
    return out;
}

}  // namespace sluice::storage
