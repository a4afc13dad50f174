// WebSocket client message parser on simdjson's DOM parser (see client_message.h). The sync
// request and subscription messages reuse parse_sync_request, which ignores the `type` field.
#include "protocol/wire/client_message.h"

#include <fmt/format.h>

#pragma GCC diagnostic push
#if defined(__GNUC__) && !defined(__clang__)  // GCC 12's false positives in simdjson's inline code
#pragma GCC diagnostic ignored "-Wdangling-pointer"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <simdjson.h>

namespace sluice::protocol::wire {

Result<ClientMessage> parse_client_message(std::string_view text, std::size_t max_bytes) {
    if (text.size() > max_bytes) {
        return Status{ErrorCode::kMessageTooLarge,
                      fmt::format("message of {} bytes exceeds the limit of {} bytes", text.size(), max_bytes)};
    }
    thread_local simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (auto err = parser.parse(text.data(), text.size()).get(doc); err) {
        return Status{ErrorCode::kRequestInvalidJson,
                      fmt::format("message is not valid JSON ({})", simdjson::error_message(err))};
    }
    simdjson::dom::object o;
    if (doc.get_object().get(o) != simdjson::SUCCESS) {
        return Status{ErrorCode::kRequestInvalidJson, "message is not a JSON object"};
    }
    std::string_view type;
    if (o.at_key("type").get_string().get(type) != simdjson::SUCCESS) {
        return Status{ErrorCode::kClientMessageUnknown, "message has no string 'type'"};
    }
    if (type == "sync_request" || type == "update_subscriptions") {
        const bool is_sync = type == "sync_request";
        auto request = parse_sync_request(text, max_bytes);
        if (!request) {
            return request.status();
        }
        if (is_sync) {
            return ClientMessage{SyncRequestMessage{std::move(request).value()}};
        }
        if (!request->streams) {
            return Status{ErrorCode::kRequestInvalidField, "update_subscriptions: 'streams' is missing"};
        }
        return ClientMessage{UpdateSubscriptionsMessage{std::move(*request->streams)}};
    }
    if (type == "token") {
        std::string_view token;
        if (o.at_key("token").get_string().get(token) != simdjson::SUCCESS || token.empty()) {
            return Status{ErrorCode::kRequestInvalidField, "token: 'token' must be a non-empty string"};
        }
        return ClientMessage{TokenMessage{std::string(token)}};
    }
    if (type == "upload") {
        std::string_view id;
        if (o.at_key("upload_id").get_string().get(id) != simdjson::SUCCESS || id.empty()) {
            return Status{ErrorCode::kRequestInvalidField, "upload: 'upload_id' must be a non-empty string"};
        }
        simdjson::dom::array batch;
        if (o.at_key("batch").get_array().get(batch) != simdjson::SUCCESS) {
            return Status{ErrorCode::kRequestInvalidField, "upload: 'batch' must be an array"};
        }
        return ClientMessage{UploadMessage{std::string(id), simdjson::minify(batch)}};
    }
    return Status{ErrorCode::kClientMessageUnknown, fmt::format("unknown message type '{}'", type)};
}

}  // namespace sluice::protocol::wire

#pragma GCC diagnostic pop
