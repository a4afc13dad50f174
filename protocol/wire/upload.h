// Upload batches: the client's CRUD operations (the shape PowerSync SDKs keep in their upload
// queue: {op_id, op: PUT|PATCH|DELETE, type: <table>, id, data}), the body of POST /upload, and the
// per-operation results Sluice answers with (and records for exactly-once replays).
// Spec: protocol/README.md, "Uploads".
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/status.h"

namespace sluice::protocol::wire {

enum class CrudKind : std::uint8_t { kPut, kPatch, kDelete };

// One value of an operation's data, as the client sent it.
struct CrudValue {
    enum class Kind : std::uint8_t {
        kNull,
        kBool,    // text is "true" or "false"
        kNumber,  // text is the number in decimal (integers exact)
        kString,  // text is the string, unescaped (UTF-8)
        kJson,    // an object or array: text is its compact JSON
    };
    Kind kind = Kind::kNull;
    std::string text;
    bool operator==(const CrudValue&) const = default;
};

struct CrudOp {
    std::optional<std::int64_t> op_id;  // the client's number for the op (reported back), when sent
    CrudKind kind = CrudKind::kPut;
    std::string table;  // "type"
    std::string id;
    std::vector<std::pair<std::string, CrudValue>> data;  // in the client's order; absent for DELETE
};

struct UploadBatch {
    std::string client_id;  // empty: not sent
    std::string batch_id;
    std::vector<CrudOp> ops;
};

struct UploadLimits {
    std::size_t max_bytes = 16 << 20;
    std::size_t max_ops = 1000;
};

// The body of POST /upload: {"client_id"?: string, "batch_id": string|integer, "ops": [CRUD entries]}.
// Errors: SL5002 over max_bytes, SL5003 not a JSON object, SL5004 a field of the wrong type (naming
// it: 'ops[2].op' must be PUT, PATCH or DELETE), SL6001 more than max_ops operations.
[[nodiscard]] Result<UploadBatch> parse_upload_request(std::string_view body, const UploadLimits& limits);
// The `batch` array of a WebSocket upload message (same entries, same errors).
[[nodiscard]] Result<std::vector<CrudOp>> parse_crud_ops(std::string_view array_json, std::size_t max_ops);

// A client_id or batch_id as uploads and write checkpoints accept it: 1 to 256 bytes, no NUL.
inline constexpr std::size_t kMaxIdBytes = 256;
[[nodiscard]] bool valid_id(std::string_view id);

// The body of POST /sync/checkpoint-request: {"client_id": string, "checkpoint_request_id": decimal
// string or integer >= 0}. SL5003/SL5004 as parse_upload_request.
struct CheckpointRequest {
    std::string client_id;
    std::int64_t checkpoint_request_id = 0;
};
[[nodiscard]] Result<CheckpointRequest> parse_checkpoint_request(std::string_view body, std::size_t max_bytes);

enum class OpStatus : std::uint8_t {
    kApplied,
    kRejected,  // refused (code, reason); nothing of it was applied
    kSkipped,   // not applied because another op of its all-or-nothing batch was rejected (SL6012)
};

struct OpResult {
    OpStatus status = OpStatus::kApplied;
    ErrorCode code = ErrorCode::kOk;  // kRejected, kSkipped
    std::string reason;
    bool operator==(const OpResult&) const = default;
};

enum class BatchOutcome : std::uint8_t {
    kApplied,   // every op applied
    kPartial,   // some applied, some rejected (batch_policy apply_valid)
    kRejected,  // nothing applied
};

// A batch's final result, as recorded with the batch.
struct UploadResult {
    BatchOutcome outcome = BatchOutcome::kApplied;
    std::vector<OpResult> ops;  // one per op of the batch, in order
    bool operator==(const UploadResult&) const = default;
};

[[nodiscard]] std::string_view to_string(BatchOutcome outcome);

// {"status":"applied","ops":[{"status":"applied"},{"status":"rejected","code":"SL6003","reason":"..."}]}
void encode_upload_result(std::string& out, const UploadResult& result);
// The reverse (reads what encode_upload_result wrote); SL5003/SL5004 when it is not that.
[[nodiscard]] Result<UploadResult> decode_upload_result(std::string_view json);

// The answer to POST /upload:
// {"data":{"batch_id":"b1","status":"partial","write_checkpoint":"12","replayed":false,
//          "ops":[{"op_id":1,"status":"applied"},{"op_id":2,"status":"rejected","code":"SL6003","reason":"..."}]}}
void encode_upload_response(std::string& out, const UploadBatch& batch, const UploadResult& result,
                            std::int64_t write_checkpoint, bool replayed);

// WebSocket replies. upload_ack when the batch has a final result with something applied:
// {"upload_ack":{"upload_id":"u-7","status":"applied","write_checkpoint":"12","rejected":[...]}};
// upload_error when nothing was applied, with the first rejected op (rejected batch) or the failure.
void encode_upload_ack(std::string& out, std::string_view upload_id, const std::vector<CrudOp>& ops,
                       const UploadResult& result, std::int64_t write_checkpoint);
void encode_upload_error(std::string& out, std::string_view upload_id, ErrorCode code, std::string_view description,
                         std::optional<std::int64_t> op_id, std::optional<std::int64_t> write_checkpoint);

}  // namespace sluice::protocol::wire
