// Server line encoders (see line_encoder.h); the field order follows the PowerSync transcripts in
// tests/data/protocol/ byte for byte.
#include "protocol/wire/line_encoder.h"

#include "protocol/wire/checksum.h"
#include "protocol/wire/json_write.h"

namespace sluice::protocol::wire {
namespace {

void append_bucket_checksum(std::string& out, const BucketChecksum& b) {
    out.append(R"({"bucket":)");
    append_json_string(out, b.bucket);
    out.append(R"(,"checksum":)");
    append_i64(out, checksum_to_signed(b.checksum));
    if (b.count) {
        out.append(R"(,"count":)");
        append_i64(out, *b.count);
    }
    if (b.priority) {
        out.append(R"(,"priority":)");
        append_i64(out, *b.priority);
    }
    if (b.subscriptions) {
        out.append(R"(,"subscriptions":[)");
        bool first = true;
        for (const auto& s : *b.subscriptions) {
            if (!first) {
                out.push_back(',');
            }
            first = false;
            out.append(s.kind == BucketSubscription::Kind::kDefault ? R"({"default":)" : R"({"sub":)");
            append_u64(out, s.index);
            out.push_back('}');
        }
        out.push_back(']');
    }
    out.push_back('}');
}

void append_bucket_list(std::string& out, const std::vector<BucketChecksum>& buckets) {
    out.push_back('[');
    bool first = true;
    for (const auto& b : buckets) {
        if (!first) {
            out.push_back(',');
        }
        first = false;
        append_bucket_checksum(out, b);
    }
    out.push_back(']');
}

void append_streams(std::string& out, const std::vector<StreamInfo>& streams) {
    out.push_back('[');
    bool first = true;
    for (const auto& s : streams) {
        if (!first) {
            out.push_back(',');
        }
        first = false;
        out.append(R"({"name":)");
        append_json_string(out, s.name);
        out.append(s.is_default ? R"(,"is_default":true,"errors":[)" : R"(,"is_default":false,"errors":[)");
        bool first_error = true;
        for (const auto& e : s.errors) {
            if (!first_error) {
                out.push_back(',');
            }
            first_error = false;
            out.append(R"({"subscription":)");
            if (e.subscription) {
                append_u64(out, *e.subscription);
            } else {
                out.append(R"("default")");
            }
            out.append(R"(,"message":)");
            append_json_string(out, e.message);
            out.push_back('}');
        }
        out.append("]}");
    }
    out.push_back(']');
}

void append_write_checkpoint(std::string& out, const std::optional<std::uint64_t>& write_checkpoint) {
    if (write_checkpoint) {
        out.append(R"(,"write_checkpoint":)");
        append_quoted_u64(out, *write_checkpoint);
    }
}

struct LineWriter {
    std::string& out;
    void operator()(const Checkpoint& l) const { encode_checkpoint(out, l); }
    void operator()(const CheckpointDiff& l) const { encode_checkpoint_diff(out, l); }
    void operator()(const DataLine& l) const { encode_data(out, l); }
    void operator()(const CheckpointComplete& l) const { encode_checkpoint_complete(out, l.last_op_id); }
    void operator()(const PartialCheckpointComplete& l) const {
        encode_partial_checkpoint_complete(out, l.last_op_id, l.priority);
    }
    void operator()(const TokenExpiresIn& l) const { encode_token_expires_in(out, l.seconds); }
    void operator()(const ErrorLine& l) const { encode_error(out, l.code, l.status, l.description); }
    void operator()(const UnknownLine& l) const {
        out.push_back('{');
        append_json_string(out, l.type);
        out.append(":null}");
    }
};

}  // namespace

std::string_view op_type_name(OpType op) {
    switch (op) {
        case OpType::kPut:
            return "PUT";
        case OpType::kRemove:
            return "REMOVE";
        case OpType::kMove:
            return "MOVE";
        case OpType::kClear:
            return "CLEAR";
    }
    return "PUT";
}

OplogEntryView view_of(const OplogEntry& e) {
    OplogEntryView v;
    v.op_id = e.op_id;
    v.op = e.op;
    v.checksum = e.checksum;
    if (e.object_type) {
        v.object_type = *e.object_type;
    }
    if (e.object_id) {
        v.object_id = *e.object_id;
    }
    if (e.subkey) {
        v.subkey = *e.subkey;
    }
    if (e.data) {
        v.data = *e.data;
    }
    return v;
}

void encode_checkpoint(std::string& out, const Checkpoint& checkpoint) {
    out.append(R"({"checkpoint":{"last_op_id":)");
    append_quoted_u64(out, checkpoint.last_op_id);
    append_write_checkpoint(out, checkpoint.write_checkpoint);
    out.append(R"(,"buckets":)");
    append_bucket_list(out, checkpoint.buckets);
    if (checkpoint.streams) {
        out.append(R"(,"streams":)");
        append_streams(out, *checkpoint.streams);
    }
    out.append("}}");
}

void encode_checkpoint_diff(std::string& out, const CheckpointDiff& diff) {
    out.append(R"({"checkpoint_diff":{"last_op_id":)");
    append_quoted_u64(out, diff.last_op_id);
    append_write_checkpoint(out, diff.write_checkpoint);
    out.append(R"(,"removed_buckets":[)");
    bool first = true;
    for (const auto& b : diff.removed_buckets) {
        if (!first) {
            out.push_back(',');
        }
        first = false;
        append_json_string(out, b);
    }
    out.append(R"(],"updated_buckets":)");
    append_bucket_list(out, diff.updated_buckets);
    out.append("}}");
}

void encode_op(std::string& out, const OplogEntryView& op) {
    out.append(R"({"op_id":)");
    append_quoted_u64(out, op.op_id);
    out.append(R"(,"op":")");
    out.append(op_type_name(op.op));
    out.push_back('"');
    if (op.object_type) {
        out.append(R"(,"object_type":)");
        append_json_string(out, *op.object_type);
    }
    if (op.object_id) {
        out.append(R"(,"object_id":)");
        append_json_string(out, *op.object_id);
    }
    out.append(R"(,"checksum":)");
    append_u64(out, op.checksum);
    if (op.subkey) {
        out.append(R"(,"subkey":)");
        append_json_string(out, *op.subkey);
    }
    if (op.data) {
        out.append(R"(,"data":)");
        append_json_string(out, *op.data);
        out.push_back('}');
    } else {
        out.append(R"(,"data":null})");
    }
}

DataLineWriter::DataLineWriter(std::string& out, std::string_view bucket, std::uint64_t after, bool has_more)
    : m_out(out) {
    m_out.append(R"({"data":{"bucket":)");
    append_json_string(m_out, bucket);
    m_out.append(R"(,"after":)");
    append_quoted_u64(m_out, after);
    m_out.append(has_more ? R"(,"has_more":true,"data":[)" : R"(,"has_more":false,"data":[)");
}

void DataLineWriter::add(const OplogEntryView& op) {
    if (m_count++ != 0) {
        m_out.push_back(',');
    }
    encode_op(m_out, op);
}

void DataLineWriter::finish(std::uint64_t next_after) {
    m_out.append(R"(],"next_after":)");
    append_quoted_u64(m_out, next_after);
    m_out.append("}}");
}

void encode_data(std::string& out, const DataLine& line) {
    out.append(R"({"data":{"bucket":)");
    append_json_string(out, line.bucket);
    if (line.after) {
        out.append(R"(,"after":)");
        append_quoted_u64(out, *line.after);
    }
    if (line.has_more) {
        out.append(*line.has_more ? R"(,"has_more":true)" : R"(,"has_more":false)");
    }
    out.append(R"(,"data":[)");
    bool first = true;
    for (const auto& op : line.data) {
        if (!first) {
            out.push_back(',');
        }
        first = false;
        encode_op(out, view_of(op));
    }
    out.push_back(']');
    if (line.next_after) {
        out.append(R"(,"next_after":)");
        append_quoted_u64(out, *line.next_after);
    }
    out.append("}}");
}

void encode_checkpoint_complete(std::string& out, std::uint64_t last_op_id) {
    out.append(R"({"checkpoint_complete":{"last_op_id":)");
    append_quoted_u64(out, last_op_id);
    out.append("}}");
}

void encode_partial_checkpoint_complete(std::string& out, std::uint64_t last_op_id, std::int32_t priority) {
    out.append(R"({"partial_checkpoint_complete":{"last_op_id":)");
    append_quoted_u64(out, last_op_id);
    out.append(R"(,"priority":)");
    append_i64(out, priority);
    out.append("}}");
}

void encode_token_expires_in(std::string& out, std::int64_t seconds) {
    out.append(R"({"token_expires_in":)");
    append_i64(out, seconds);
    out.push_back('}');
}

void encode_error(std::string& out, std::string_view code, std::int32_t http_status, std::string_view description) {
    out.append(R"({"error":{"code":)");
    append_json_string(out, code);
    out.append(R"(,"status":)");
    append_i64(out, http_status);
    out.append(R"(,"description":)");
    append_json_string(out, description);
    out.append("}}");
}

void encode_error(std::string& out, const Status& status, std::int32_t http_status) {
    encode_error(out, error_id(status.code()), http_status, status.message());
}

void encode_line(std::string& out, const ServerLine& line) { std::visit(LineWriter{out}, line); }

}  // namespace sluice::protocol::wire
