// The client side of the server lines: parses one line (NDJSON line or WebSocket text frame) back
// into the structs of lines.h, as leniently as the PowerSync SDKs' parser (unknown keys and unknown
// line types are ignored; checksums may be signed, unsigned or an integral float).
#pragma once

#include <string_view>

#include "protocol/status.h"
#include "protocol/wire/lines.h"

namespace sluice::protocol::wire {

// kSyncLineMalformed when the line is not a JSON object, or a known line type lacks a required
// field or has one of the wrong type (the message names the field). A trailing '\n' or "\r\n" is
// allowed. Optional fields absent in the line stay absent, so encode_line(decode_line(x)) == x for
// every line Sluice or PowerSync writes.
[[nodiscard]] Result<ServerLine> decode_line(std::string_view line);

}  // namespace sluice::protocol::wire
