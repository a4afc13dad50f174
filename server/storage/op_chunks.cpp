// Op chunks: encoding for the writer, decoding for readers (see op_chunks.h).
#include "server/storage/op_chunks.h"

#include <fmt/format.h>
#include <simdjson.h>

#include "protocol/wire/json_write.h"
#include "server/storage/copy_rows.h"

namespace sluice::storage {
namespace {

using protocol::ErrorCode;
using protocol::Status;

constexpr int kClear = 4;

Status undecodable(std::string_view why) {
    return {ErrorCode::kStorageQueryFailed, fmt::format("sluice.op_chunks holds an undecodable chunk: {}", why)};
}

// A name field: a string, or null (CLEAR ops).
bool read_name(simdjson::dom::element value, std::string& out) {
    if (value.is_null()) {
        out.clear();
        return true;
    }
    std::string_view text;
    if (value.get_string().get(text) != simdjson::SUCCESS) {
        return false;
    }
    out.assign(text);
    return true;
}

bool read_op(simdjson::dom::element element, StoredOp& op) {
    simdjson::dom::array fields;
    if (element.get_array().get(fields) != simdjson::SUCCESS || fields.size() != 7) {
        return false;
    }
    auto field = fields.begin();
    std::int64_t kind = 0;
    std::int64_t checksum = 0;
    if ((*field).get_int64().get(op.op_id) != simdjson::SUCCESS || (*++field).get_int64().get(kind) != simdjson::SUCCESS ||
        kind < 1 || kind > kClear || !read_name(*++field, op.object_type) || !read_name(*++field, op.object_id) ||
        !read_name(*++field, op.subkey)) {
        return false;
    }
    op.op = static_cast<int>(kind);
    const simdjson::dom::element data = *++field;
    if (data.is_null()) {
        op.data.reset();
    } else {
        std::string_view text;
        if (data.get_string().get(text) != simdjson::SUCCESS) {
            return false;
        }
        op.data.emplace(text);
    }
    if ((*++field).get_int64().get(checksum) != simdjson::SUCCESS || checksum < 0 || checksum > 0xffffffffLL) {
        return false;
    }
    op.checksum = static_cast<std::uint32_t>(checksum);
    return true;
}

// Appends one op as a chunk element (no separator).
void append_op_json(std::string& out, std::int64_t op_id, int op, std::string_view object_type,
                    std::string_view object_id, std::string_view subkey, const std::optional<std::string>& data,
                    std::uint32_t checksum) {
    out += '[';
    protocol::wire::append_i64(out, op_id);
    out += ',';
    protocol::wire::append_i64(out, op);
    for (const auto name : {object_type, object_id, subkey}) {
        out += ',';
        if (op == kClear) {
            out += "null";
        } else {
            protocol::wire::append_json_string(out, name);
        }
    }
    out += ',';
    if (data) {
        protocol::wire::append_json_string(out, *data);
    } else {
        out += "null";
    }
    out += ',';
    protocol::wire::append_u64(out, checksum);
    out += ']';
}

}  // namespace

void OpChunkBuilder::add(CopyRows& rows, std::string_view bucket, std::int64_t op_id, int op,
                         std::string_view object_type, std::string_view object_id, std::string_view subkey,
                         const std::optional<std::string>& data, std::uint32_t checksum) {
    m_op.clear();
    append_op_json(m_op, op_id, op, object_type, object_id, subkey, data, checksum);
    if (m_count > 0 && m_ops.size() + m_op.size() + 2 > kOpChunkBytes) {  // (',' and ']')
        take(rows, bucket);
    }
    if (m_count == 0) {
        m_first = op_id;
        m_ops += '[';
    } else {
        m_ops += ',';
    }
    m_ops += m_op;
    m_last = op_id;
    ++m_count;
    m_checksum += checksum;
}

void OpChunkBuilder::take(CopyRows& rows, std::string_view bucket) {
    if (m_count == 0) {
        return;
    }
    m_ops += ']';
    rows.text(bucket).integer(m_first).integer(m_last).integer(m_count).integer(m_checksum).text(m_ops).end_row();
    m_ops.clear();
    m_count = 0;
    m_checksum = 0;
}

std::string encode_op_chunk(std::span<const StoredOp> ops) {
    std::string out = "[";
    for (const auto& op : ops) {
        if (out.size() > 1) {
            out += ',';
        }
        append_op_json(out, op.op_id, op.op, op.object_type, op.object_id, op.subkey, op.data, op.checksum);
    }
    out += ']';
    return out;
}

protocol::Result<std::vector<StoredOp>> decode_op_chunk(std::string_view text) {
    thread_local simdjson::dom::parser parser;
    simdjson::dom::element root;
    simdjson::dom::array elements;
    if (parser.parse(text.data(), text.size()).get(root) != simdjson::SUCCESS ||
        root.get_array().get(elements) != simdjson::SUCCESS) {
        return undecodable("not a JSON array");
    }
    std::vector<StoredOp> ops;
    ops.reserve(elements.size());
    for (const auto element : elements) {
        if (!read_op(element, ops.emplace_back())) {
            return undecodable(fmt::format("op {} is not [op_id, op, object_type, object_id, subkey, data, checksum]",
                                           ops.size()));
        }
    }
    return ops;
}

}  // namespace sluice::storage
