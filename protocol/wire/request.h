// The sync request: the JSON body of `POST /sync/stream`, and the same object in a WebSocket
// `sync_request` message (protocol/README.md, "The sync request"). Parser and encoder.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/status.h"

namespace sluice::protocol::wire {

// A bucket the client already holds, and the highest op_id it holds in it (0: nothing).
struct BucketRequest {
    std::string name;
    std::uint64_t after = 0;
    bool operator==(const BucketRequest&) const = default;
};

// One Sync Streams subscription; its id is its index in StreamsRequest::subscriptions.
struct StreamSubscription {
    std::string stream;
    std::string parameters = "{}";                  // a JSON object, compact text
    std::optional<std::int32_t> override_priority;  // 0..3
    bool operator==(const StreamSubscription&) const = default;
};

struct StreamsRequest {
    bool include_defaults = true;
    std::vector<StreamSubscription> subscriptions;
    bool operator==(const StreamsRequest&) const = default;
};

struct SyncRequest {
    std::vector<BucketRequest> buckets;
    bool include_checksum = true;
    bool raw_data = false;     // rows as JSON strings (Sluice always sends them so)
    bool binary_data = false;  // the client accepts binary (BSON) lines; Sluice sends JSON
    std::optional<std::string> client_id;
    std::string parameters = "{}";    // client parameters, a JSON object, compact text
    std::string app_metadata = "{}";  // a JSON object, compact text, for logs only
    std::optional<StreamsRequest> streams;
    bool operator==(const SyncRequest&) const = default;
};

// Parses a request body. kMessageTooLarge when body is longer than max_bytes; kRequestInvalidJson
// when it is not one JSON object; kRequestInvalidField naming the field when a known field has the
// wrong type or value. Unknown fields are ignored, and null counts as absent.
[[nodiscard]] Result<SyncRequest> parse_sync_request(std::string_view body, std::size_t max_bytes);

// Appends the request as JSON (what Sluice's own test clients send). Field order: buckets,
// include_checksum, raw_data, binary_data, client_id (if set), parameters, app_metadata, streams
// (if set).
void encode_sync_request(std::string& out, const SyncRequest& request);

}  // namespace sluice::protocol::wire
