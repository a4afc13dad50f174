// JSON helpers shared by the token, claims and JWKS readers (simdjson DOM; private to server/auth).
#pragma once

#include <algorithm>
#include <string_view>
#include <vector>

#include <simdjson.h>

namespace sluice::auth::detail {

// One parser per thread: verify() runs on many I/O threads at once.
inline simdjson::dom::parser& thread_parser() {
    thread_local simdjson::dom::parser parser;
    return parser;
}

// RFC 7515 §4 / RFC 7519 §4: a member named twice is rejected rather than guessing which one counts.
inline bool has_duplicate_members(simdjson::dom::object object) {
    std::vector<std::string_view> keys;
    for (auto field : object) {
        keys.push_back(field.key);
    }
    std::sort(keys.begin(), keys.end());
    return std::adjacent_find(keys.begin(), keys.end()) != keys.end();
}

}  // namespace sluice::auth::detail
