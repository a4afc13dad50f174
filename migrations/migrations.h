// The storage migrations compiled into the binary, in version order (1, 2, 3, ...).
#pragma once

#include <span>
#include <string_view>

namespace sluice::migrations {

struct Migration {
    int version;
    std::string_view name;  // from the file name, e.g. "initial"
    std::string_view sql;
};

[[nodiscard]] std::span<const Migration> embedded();

}  // namespace sluice::migrations
