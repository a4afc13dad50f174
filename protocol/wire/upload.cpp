// Upload batch parser (simdjson DOM) and the result encoders (see upload.h).
#include "protocol/wire/upload.h"

#include <charconv>

#include <fmt/format.h>

#include "protocol/wire/json_write.h"

#pragma GCC diagnostic push
#if defined(__GNUC__) && !defined(__clang__)  // GCC 12's false positives in simdjson's inline code
#pragma GCC diagnostic ignored "-Wdangling-pointer"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <simdjson.h>

namespace sluice::protocol::wire {
namespace {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

#define UPLOAD_TRY(expr)               \
    do {                               \
        if (Status s_ = (expr); !s_) { \
            return s_;                 \
        }                              \
    } while (false)

Status wrong(const std::string& field, std::string_view expected) {
    return {ErrorCode::kRequestInvalidField, fmt::format("upload: '{}' must be {}", field, expected)};
}

// A string, or an integer written in decimal (SDK transaction ids are numbers).
Status read_id(element e, const std::string& field, std::string& out) {
    if (e.type() == element_type::STRING) {
        out = std::string(e.get_string().value_unsafe());
    } else if (e.type() == element_type::INT64) {
        out = std::to_string(e.get_int64().value_unsafe());
    } else if (e.type() == element_type::UINT64) {
        out = std::to_string(e.get_uint64().value_unsafe());
    } else {
        return wrong(field, "a string or an integer");
    }
    if (!valid_id(out)) {
        return wrong(field, fmt::format("1 to {} bytes without NUL characters", kMaxIdBytes));
    }
    return {};
}

CrudValue value_of(element e) {
    CrudValue v;
    switch (e.type()) {
        case element_type::NULL_VALUE:
            v.kind = CrudValue::Kind::kNull;
            break;
        case element_type::BOOL:
            v.kind = CrudValue::Kind::kBool;
            v.text = e.get_bool().value_unsafe() ? "true" : "false";
            break;
        case element_type::INT64:
            v.kind = CrudValue::Kind::kNumber;
            v.text = std::to_string(e.get_int64().value_unsafe());
            break;
        case element_type::UINT64:
            v.kind = CrudValue::Kind::kNumber;
            v.text = std::to_string(e.get_uint64().value_unsafe());
            break;
        case element_type::DOUBLE:
            v.kind = CrudValue::Kind::kNumber;
            append_js_number(v.text, e.get_double().value_unsafe());
            break;
        case element_type::STRING:
            v.kind = CrudValue::Kind::kString;
            v.text = std::string(e.get_string().value_unsafe());
            break;
        default:
            v.kind = CrudValue::Kind::kJson;
            v.text = simdjson::minify(e);
            break;
    }
    return v;
}

Status read_op(element e, std::size_t index, CrudOp& op) {
    const std::string where = fmt::format("ops[{}]", index);
    object o;
    if (e.get_object().get(o) != simdjson::SUCCESS) {
        return wrong(where, "an object {op, type, id, data}");
    }
    element field;
    if (o.at_key("op_id").get(field) == simdjson::SUCCESS && !field.is_null()) {
        std::int64_t n = 0;
        if (field.get_int64().get(n) != simdjson::SUCCESS) {
            return wrong(where + ".op_id", "an integer");
        }
        op.op_id = n;
    }
    std::string_view kind;
    if (o.at_key("op").get_string().get(kind) != simdjson::SUCCESS) {
        return wrong(where + ".op", "PUT, PATCH or DELETE");
    }
    if (kind == "PUT") {
        op.kind = CrudKind::kPut;
    } else if (kind == "PATCH") {
        op.kind = CrudKind::kPatch;
    } else if (kind == "DELETE") {
        op.kind = CrudKind::kDelete;
    } else {
        return wrong(where + ".op", "PUT, PATCH or DELETE");
    }
    std::string_view table;
    if (o.at_key("type").get_string().get(table) != simdjson::SUCCESS || table.empty()) {
        return wrong(where + ".type", "a table name");
    }
    op.table = std::string(table);
    if (o.at_key("id").get(field) != simdjson::SUCCESS) {
        return wrong(where + ".id", "a string or an integer");
    }
    UPLOAD_TRY(read_id(field, where + ".id", op.id));
    if (o.at_key("data").get(field) == simdjson::SUCCESS && !field.is_null()) {
        object data;
        if (field.get_object().get(data) != simdjson::SUCCESS) {
            return wrong(where + ".data", "an object of column values");
        }
        for (auto [key, value] : data) {
            if (key.empty()) {
                return wrong(where + ".data", "an object whose keys are column names");
            }
            for (const auto& [name, existing] : op.data) {
                if (name == key) {
                    return wrong(fmt::format("{}.data.{}", where, key), "given once");
                }
            }
            op.data.emplace_back(std::string(key), value_of(value));
        }
    }
    return {};
}

Status read_ops(array ops, std::size_t max_ops, std::vector<CrudOp>& out) {
    const std::size_t count = ops.size();
    if (count > max_ops) {
        return {
            ErrorCode::kUploadTooManyOps,
            fmt::format("the batch has {} operations; the limit is {} (limits.max_upload_batch_ops)", count, max_ops)};
    }
    out.reserve(count);
    std::size_t index = 0;
    for (element e : ops) {
        CrudOp op;
        UPLOAD_TRY(read_op(e, index++, op));
        out.push_back(std::move(op));
    }
    return {};
}

Status too_large(std::size_t size, std::size_t max) {
    return {ErrorCode::kMessageTooLarge,
            fmt::format("the upload of {} bytes exceeds the limit of {} bytes (limits.max_message_bytes)", size, max)};
}

std::string_view status_name(OpStatus s) {
    switch (s) {
        case OpStatus::kApplied:
            return "applied";
        case OpStatus::kRejected:
            return "rejected";
        case OpStatus::kSkipped:
            return "skipped";
    }
    return "applied";
}

void append_op_result(std::string& out, const OpResult& r) {
    out += R"("status":")";
    out += status_name(r.status);
    out += '"';
    if (r.status != OpStatus::kApplied) {
        out += R"(,"code":")";
        out += error_id(r.code);
        out += R"(","reason":)";
        append_json_string(out, r.reason);
    }
}

}  // namespace

bool valid_id(std::string_view id) {
    return !id.empty() && id.size() <= kMaxIdBytes && id.find('\0') == std::string_view::npos;
}

Result<UploadBatch> parse_upload_request(std::string_view body, const UploadLimits& limits) {
    if (body.size() > limits.max_bytes) {
        return too_large(body.size(), limits.max_bytes);
    }
    thread_local simdjson::dom::parser parser;
    element doc;
    if (auto err = parser.parse(body.data(), body.size()).get(doc); err) {
        return Status{ErrorCode::kRequestInvalidJson,
                      fmt::format("the upload is not valid JSON ({})", simdjson::error_message(err))};
    }
    object o;
    if (doc.get_object().get(o) != simdjson::SUCCESS) {
        return Status{ErrorCode::kRequestInvalidJson, "the upload is not a JSON object"};
    }
    UploadBatch batch;
    element field;
    if (o.at_key("client_id").get(field) == simdjson::SUCCESS && !field.is_null()) {
        UPLOAD_TRY(read_id(field, "client_id", batch.client_id));
    }
    if (o.at_key("batch_id").get(field) != simdjson::SUCCESS || field.is_null()) {
        return wrong("batch_id", "a string or an integer, unique per client");
    }
    UPLOAD_TRY(read_id(field, "batch_id", batch.batch_id));
    array ops;
    if (o.at_key("ops").get_array().get(ops) != simdjson::SUCCESS) {
        return wrong("ops", "an array of operations");
    }
    UPLOAD_TRY(read_ops(ops, limits.max_ops, batch.ops));
    return batch;
}

Result<std::vector<CrudOp>> parse_crud_ops(std::string_view array_json, std::size_t max_ops) {
    thread_local simdjson::dom::parser parser;
    element doc;
    if (auto err = parser.parse(array_json.data(), array_json.size()).get(doc); err) {
        return Status{ErrorCode::kRequestInvalidJson,
                      fmt::format("the batch is not valid JSON ({})", simdjson::error_message(err))};
    }
    array ops;
    if (doc.get_array().get(ops) != simdjson::SUCCESS) {
        return wrong("batch", "an array of operations");
    }
    std::vector<CrudOp> out;
    UPLOAD_TRY(read_ops(ops, max_ops, out));
    return out;
}

Result<CheckpointRequest> parse_checkpoint_request(std::string_view body, std::size_t max_bytes) {
    if (body.size() > max_bytes) {
        return too_large(body.size(), max_bytes);
    }
    thread_local simdjson::dom::parser parser;
    element doc;
    object o;
    if (parser.parse(body.data(), body.size()).get(doc) != simdjson::SUCCESS ||
        doc.get_object().get(o) != simdjson::SUCCESS) {
        return Status{ErrorCode::kRequestInvalidJson, "the checkpoint request is not a JSON object"};
    }
    CheckpointRequest out;
    element field;
    if (o.at_key("client_id").get(field) != simdjson::SUCCESS) {
        return Status{ErrorCode::kRequestInvalidField, "checkpoint request: 'client_id' is missing"};
    }
    UPLOAD_TRY(read_id(field, "client_id", out.client_id));
    std::string id;
    if (o.at_key("checkpoint_request_id").get(field) != simdjson::SUCCESS) {
        return Status{ErrorCode::kRequestInvalidField, "checkpoint request: 'checkpoint_request_id' is missing"};
    }
    UPLOAD_TRY(read_id(field, "checkpoint_request_id", id));
    const auto res = std::from_chars(id.data(), id.data() + id.size(), out.checkpoint_request_id);
    if (res.ec != std::errc{} || res.ptr != id.data() + id.size() || out.checkpoint_request_id < 0) {
        return Status{ErrorCode::kRequestInvalidField,
                      "checkpoint request: 'checkpoint_request_id' must be a non-negative integer"};
    }
    return out;
}

std::string_view to_string(BatchOutcome outcome) {
    switch (outcome) {
        case BatchOutcome::kApplied:
            return "applied";
        case BatchOutcome::kPartial:
            return "partial";
        case BatchOutcome::kRejected:
            return "rejected";
    }
    return "applied";
}

void encode_upload_result(std::string& out, const UploadResult& result) {
    out += R"({"status":")";
    out += to_string(result.outcome);
    out += R"(","ops":[)";
    for (std::size_t i = 0; i < result.ops.size(); ++i) {
        out += i == 0 ? "{" : ",{";
        append_op_result(out, result.ops[i]);
        out += '}';
    }
    out += "]}";
}

Result<UploadResult> decode_upload_result(std::string_view json) {
    thread_local simdjson::dom::parser parser;
    element doc;
    if (parser.parse(json.data(), json.size()).get(doc) != simdjson::SUCCESS) {
        return Status{ErrorCode::kRequestInvalidJson, "a recorded upload result is not valid JSON"};
    }
    UploadResult result;
    std::string_view status;
    array ops;
    if (doc["status"].get_string().get(status) != simdjson::SUCCESS ||
        doc["ops"].get_array().get(ops) != simdjson::SUCCESS) {
        return Status{ErrorCode::kRequestInvalidField, "a recorded upload result has no status or ops"};
    }
    if (status == "applied") {
        result.outcome = BatchOutcome::kApplied;
    } else if (status == "partial") {
        result.outcome = BatchOutcome::kPartial;
    } else if (status == "rejected") {
        result.outcome = BatchOutcome::kRejected;
    } else {
        return Status{ErrorCode::kRequestInvalidField, fmt::format("unknown recorded upload status '{}'", status)};
    }
    for (element e : ops) {
        OpResult r;
        std::string_view s;
        if (e["status"].get_string().get(s) != simdjson::SUCCESS) {
            return Status{ErrorCode::kRequestInvalidField, "a recorded op result has no status"};
        }
        r.status = s == "rejected" ? OpStatus::kRejected : s == "skipped" ? OpStatus::kSkipped : OpStatus::kApplied;
        if (r.status != OpStatus::kApplied) {
            std::string_view code;
            std::string_view reason;
            if (e["code"].get_string().get(code) != simdjson::SUCCESS ||
                e["reason"].get_string().get(reason) != simdjson::SUCCESS) {
                return Status{ErrorCode::kRequestInvalidField, "a recorded rejection has no code or reason"};
            }
            r.code = ErrorCode::kInternal;
            for (const auto& info : all_errors()) {
                if (info.id == code) {
                    r.code = info.code;
                }
            }
            r.reason = std::string(reason);
        }
        result.ops.push_back(std::move(r));
    }
    return result;
}

void encode_upload_response(std::string& out, const UploadBatch& batch, const UploadResult& result,
                            std::int64_t write_checkpoint, bool replayed) {
    out += R"({"data":{"batch_id":)";
    append_json_string(out, batch.batch_id);
    out += R"(,"status":")";
    out += to_string(result.outcome);
    out += R"(","write_checkpoint":)";
    append_quoted_u64(out, static_cast<std::uint64_t>(write_checkpoint));
    out += R"(,"replayed":)";
    out += replayed ? "true" : "false";
    out += R"(,"ops":[)";
    for (std::size_t i = 0; i < result.ops.size(); ++i) {
        out += i == 0 ? "{" : ",{";
        if (i < batch.ops.size() && batch.ops[i].op_id) {
            out += R"("op_id":)";
            append_i64(out, *batch.ops[i].op_id);
            out += ',';
        }
        append_op_result(out, result.ops[i]);
        out += '}';
    }
    out += "]}}";
}

void encode_upload_ack(std::string& out, std::string_view upload_id, const std::vector<CrudOp>& ops,
                       const UploadResult& result, std::int64_t write_checkpoint) {
    out += R"({"upload_ack":{"upload_id":)";
    append_json_string(out, upload_id);
    out += R"(,"status":")";
    out += to_string(result.outcome);
    out += R"(","write_checkpoint":)";
    append_quoted_u64(out, static_cast<std::uint64_t>(write_checkpoint));
    out += R"(,"rejected":[)";
    bool first = true;
    for (std::size_t i = 0; i < result.ops.size(); ++i) {
        if (result.ops[i].status == OpStatus::kApplied) {
            continue;
        }
        out += first ? "{" : ",{";
        first = false;
        out += R"("index":)";
        append_u64(out, i);
        if (i < ops.size() && ops[i].op_id) {
            out += R"(,"op_id":)";
            append_i64(out, *ops[i].op_id);
        }
        out += ',';
        append_op_result(out, result.ops[i]);
        out += '}';
    }
    out += "]}}";
}

void encode_upload_error(std::string& out, std::string_view upload_id, ErrorCode code, std::string_view description,
                         std::optional<std::int64_t> op_id, std::optional<std::int64_t> write_checkpoint) {
    out += R"({"upload_error":{"upload_id":)";
    append_json_string(out, upload_id);
    out += R"(,"code":")";
    out += error_id(code);
    out += R"(","description":)";
    append_json_string(out, description);
    if (op_id) {
        out += R"(,"op_id":)";
        append_i64(out, *op_id);
    }
    if (write_checkpoint) {
        out += R"(,"write_checkpoint":)";
        append_quoted_u64(out, static_cast<std::uint64_t>(*write_checkpoint));
    }
    out += "}}";
}

}  // namespace sluice::protocol::wire

#pragma GCC diagnostic pop
