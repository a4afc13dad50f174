// Decodes one pgoutput message (the payload of an XLogData frame, or one row of
// pg_logical_slot_get_binary_changes) into a typed Message. Pure: bytes in, struct or error out.
#pragma once

#include <string_view>

#include "protocol/pgoutput/messages.h"
#include "protocol/status.h"

namespace sluice::protocol::pgoutput {

struct DecodeOptions {
    // Between StreamStart and StreamStop (protocol v2), change and Relation/Type/Message messages
    // carry the transaction's xid first.
    bool in_stream = false;
};

// Malformed, truncated or trailing input gives kPgoutputMalformed; an unknown message tag (such as
// a protocol v3 two-phase message) gives kPgoutputUnsupported. Never reads outside `bytes`.
[[nodiscard]] Result<Message> decode_message(std::string_view bytes, DecodeOptions options = {});

// Tracks StreamStart/StreamStop so that each message is decoded with the right options.
class Decoder {
public:
    [[nodiscard]] Result<Message> decode(std::string_view bytes);
    [[nodiscard]] bool in_stream() const { return m_in_stream; }

private:
    bool m_in_stream = false;
};

}  // namespace sluice::protocol::pgoutput
