// Messages a client sends over the WebSocket endpoint (`GET /sync/ws`), each one JSON text frame
// `{"type":...}` (protocol/README.md, "WebSocket"): the sync request, a fresh token, a new set of
// stream subscriptions, an upload batch.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <variant>

#include "protocol/status.h"
#include "protocol/wire/request.h"

namespace sluice::protocol::wire {

// {"type":"sync_request", ...the fields of a sync request...}: starts (or restarts) the stream.
struct SyncRequestMessage {
    SyncRequest request;
};

// {"type":"token","token":"<jwt>"}: replaces the session's token before the old one expires.
struct TokenMessage {
    std::string token;
};

// {"type":"update_subscriptions","streams":{"include_defaults":…,"subscriptions":[…]}}: the new
// complete subscription list (subscribe = the list with one more entry, unsubscribe = without it).
struct UpdateSubscriptionsMessage {
    StreamsRequest streams;
};

// {"type":"upload","upload_id":"<client-chosen, unique per client>","batch":[…CRUD entries…]}.
// The batch is kept as compact JSON text; the upload layer reads its entries.
struct UploadMessage {
    std::string upload_id;
    std::string batch;  // a JSON array
};

using ClientMessage = std::variant<SyncRequestMessage, TokenMessage, UpdateSubscriptionsMessage, UploadMessage>;

// kMessageTooLarge over max_bytes; kRequestInvalidJson when not a JSON object; kClientMessageUnknown
// when `type` is missing or unknown; kRequestInvalidField for a field of the wrong type.
[[nodiscard]] Result<ClientMessage> parse_client_message(std::string_view text, std::size_t max_bytes);

}  // namespace sluice::protocol::wire
