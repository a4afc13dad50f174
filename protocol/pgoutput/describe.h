// One-line text renderings of pgoutput and walsender messages, for logs, golden test files and the
// capture tool. Stable: golden files compare against them.
#pragma once

#include <string>
#include <string_view>

#include "protocol/pgoutput/messages.h"
#include "protocol/pgoutput/walsender.h"

namespace sluice::protocol::pgoutput {

// e.g. "Insert rel=16385 new=[t:'1',n,u]"; text data is quoted, binary data in hex.
[[nodiscard]] std::string describe(const Message& message);
[[nodiscard]] std::string describe(const Datum& datum);
// e.g. "w start=0/15D6A38 end=0/15D6A38" or "k end=0/15D6B10 reply=1" (times left out).
[[nodiscard]] std::string describe(const CopyDataMessage& frame);

[[nodiscard]] std::string to_hex(std::string_view bytes);
// nullopt when `hex` has an odd length or a non-hex character.
[[nodiscard]] std::optional<std::string> from_hex(std::string_view hex);

}  // namespace sluice::protocol::pgoutput
