// The lines a Sluice server sends to a client (NDJSON over HTTP, text frames over WebSocket), as
// structs: checkpoint, checkpoint_diff, data, checkpoint_complete, partial_checkpoint_complete,
// token_expires_in, error. Shapes and field order: protocol/README.md, "Server lines".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace sluice::protocol::wire {

// Which stream (index into Checkpoint::streams, "default") or which request subscription (index
// into the request's streams.subscriptions, "sub") a bucket serves.
struct BucketSubscription {
    enum class Kind : std::uint8_t { kDefault, kSub };
    Kind kind = Kind::kDefault;
    std::uint32_t index = 0;
    bool operator==(const BucketSubscription&) const = default;
};

// One bucket of a checkpoint: its id and its checksum at the checkpoint (sent signed).
struct BucketChecksum {
    std::string bucket;
    std::uint32_t checksum = 0;
    std::optional<std::int64_t> count;     // number of ops, for progress
    std::optional<std::int32_t> priority;  // 0..3, lower first; clients assume 3 when absent
    std::optional<std::vector<BucketSubscription>> subscriptions;
    bool operator==(const BucketChecksum&) const = default;
};

// A problem with one stream subscription, reported in the checkpoint.
struct StreamError {
    std::optional<std::uint32_t> subscription;  // index into the request's subscriptions; none = "default"
    std::string message;
    bool operator==(const StreamError&) const = default;
};

struct StreamInfo {
    std::string name;
    bool is_default = false;
    std::vector<StreamError> errors;
    bool operator==(const StreamInfo&) const = default;
};

struct Checkpoint {
    std::uint64_t last_op_id = 0;
    std::optional<std::uint64_t> write_checkpoint;
    std::vector<BucketChecksum> buckets;
    std::optional<std::vector<StreamInfo>> streams;
    bool operator==(const Checkpoint&) const = default;
};

struct CheckpointDiff {
    std::uint64_t last_op_id = 0;
    std::optional<std::uint64_t> write_checkpoint;
    std::vector<std::string> removed_buckets;
    std::vector<BucketChecksum> updated_buckets;
    bool operator==(const CheckpointDiff&) const = default;
};

enum class OpType : std::uint8_t { kPut, kRemove, kMove, kClear };

[[nodiscard]] std::string_view op_type_name(OpType op);

// One operation of a bucket's log. `data` is the row as JSON text (sent as a JSON string), absent
// (sent as null) for REMOVE, MOVE and CLEAR.
struct OplogEntry {
    std::uint64_t op_id = 0;
    OpType op = OpType::kPut;
    std::optional<std::string> object_type;
    std::optional<std::string> object_id;
    std::uint32_t checksum = 0;
    std::optional<std::string> subkey;
    std::optional<std::string> data;
    bool operator==(const OplogEntry&) const = default;
};

// The same without owning its text: what the server's hot path hands to the encoder.
struct OplogEntryView {
    std::uint64_t op_id = 0;
    OpType op = OpType::kPut;
    std::optional<std::string_view> object_type;
    std::optional<std::string_view> object_id;
    std::uint32_t checksum = 0;
    std::optional<std::string_view> subkey;
    std::optional<std::string_view> data;
};

[[nodiscard]] OplogEntryView view_of(const OplogEntry& entry);

struct DataLine {
    std::string bucket;
    std::optional<std::uint64_t> after;  // the client's `after` this batch continues from
    std::optional<bool> has_more;        // more data lines for this bucket follow
    std::vector<OplogEntry> data;
    std::optional<std::uint64_t> next_after;  // op_id of the last op in `data` (or `after`)
    bool operator==(const DataLine&) const = default;
};

struct CheckpointComplete {
    std::uint64_t last_op_id = 0;
    bool operator==(const CheckpointComplete&) const = default;
};

struct PartialCheckpointComplete {
    std::uint64_t last_op_id = 0;
    std::int32_t priority = 0;
    bool operator==(const PartialCheckpointComplete&) const = default;
};

struct TokenExpiresIn {
    std::int64_t seconds = 0;
    bool operator==(const TokenExpiresIn&) const = default;
};

// The error body: an HTTP response before streaming, or the last line/frame of a stream.
struct ErrorLine {
    std::string code;         // e.g. "SL5103"
    std::int32_t status = 0;  // the HTTP status
    std::string description;
    bool operator==(const ErrorLine&) const = default;
};

// A line whose type this version does not know: clients ignore it.
struct UnknownLine {
    std::string type;  // its first key
    bool operator==(const UnknownLine&) const = default;
};

using ServerLine = std::variant<Checkpoint, CheckpointDiff, DataLine, CheckpointComplete, PartialCheckpointComplete,
                                TokenExpiresIn, ErrorLine, UnknownLine>;

}  // namespace sluice::protocol::wire
