// Server line decoder on simdjson's DOM parser (see line_decoder.h).
#include "protocol/wire/line_decoder.h"

#include <charconv>
#include <cmath>
#include <limits>

#include <fmt/format.h>

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

Status bad(std::string_view where, std::string_view what) {
    return {ErrorCode::kSyncLineMalformed, fmt::format("{}: {}", where, what)};
}

bool get_u64(element e, std::uint64_t& out) {
    if (e.type() == element_type::STRING) {
        const std::string_view s = e.get_string().value_unsafe();
        const auto res = std::from_chars(s.data(), s.data() + s.size(), out);
        return !s.empty() && res.ec == std::errc{} && res.ptr == s.data() + s.size();
    }
    if (e.type() == element_type::UINT64) {
        out = e.get_uint64().value_unsafe();
        return true;
    }
    if (e.type() == element_type::INT64 && e.get_int64().value_unsafe() >= 0) {
        out = static_cast<std::uint64_t>(e.get_int64().value_unsafe());
        return true;
    }
    return false;
}

bool get_i64(element e, std::int64_t& out) {
    if (e.type() == element_type::INT64) {
        out = e.get_int64().value_unsafe();
        return true;
    }
    if (e.type() == element_type::DOUBLE) {
        const double d = e.get_double().value_unsafe();
        if (std::trunc(d) == d && std::fabs(d) < 9.0e15) {
            out = static_cast<std::int64_t>(d);
            return true;
        }
    }
    return false;
}

bool get_checksum(element e, std::uint32_t& out) {
    std::int64_t v = 0;
    if (e.type() == element_type::UINT64) {
        return false;  // beyond int64: certainly beyond 32 bits
    }
    if (!get_i64(e, v) || v < std::numeric_limits<std::int32_t>::min() ||
        v > std::numeric_limits<std::uint32_t>::max()) {
        return false;
    }
    out = static_cast<std::uint32_t>(v);
    return true;
}

bool get_i32(element e, std::int32_t& out) {
    std::int64_t v = 0;
    if (!get_i64(e, v) || v < std::numeric_limits<std::int32_t>::min() ||
        v > std::numeric_limits<std::int32_t>::max()) {
        return false;
    }
    out = static_cast<std::int32_t>(v);
    return true;
}

Status need_op_id(object o, std::string_view key, std::string_view where, std::uint64_t& out) {
    element e;
    if (o.at_key(key).get(e) != simdjson::SUCCESS) {
        return bad(where, fmt::format("'{}' is missing", key));
    }
    if (!get_u64(e, out)) {
        return bad(where, fmt::format("'{}' is not an op id (a decimal string)", key));
    }
    return {};
}

Status opt_op_id(object o, std::string_view key, std::string_view where, std::optional<std::uint64_t>& out) {
    element e;
    if (o.at_key(key).get(e) != simdjson::SUCCESS || e.is_null()) {
        return {};
    }
    std::uint64_t v = 0;
    if (!get_u64(e, v)) {
        return bad(where, fmt::format("'{}' is not an op id (a decimal string)", key));
    }
    out = v;
    return {};
}

Status need_string(object o, std::string_view key, std::string_view where, std::string& out) {
    std::string_view s;
    if (o.at_key(key).get_string().get(s) != simdjson::SUCCESS) {
        return bad(where, fmt::format("'{}' is missing or not a string", key));
    }
    out = std::string(s);
    return {};
}

Status opt_string(object o, std::string_view key, std::string_view where, std::optional<std::string>& out) {
    element e;
    if (o.at_key(key).get(e) != simdjson::SUCCESS || e.is_null()) {
        return {};
    }
    if (e.type() != element_type::STRING) {
        return bad(where, fmt::format("'{}' is not a string", key));
    }
    out = std::string(e.get_string().value_unsafe());
    return {};
}

Status need_array(object o, std::string_view key, std::string_view where, array& out) {
    if (o.at_key(key).get_array().get(out) != simdjson::SUCCESS) {
        return bad(where, fmt::format("'{}' is missing or not an array", key));
    }
    return {};
}

#define SLUICE_TRY(expr)               \
    do {                               \
        if (Status s_ = (expr); !s_) { \
            return s_;                 \
        }                              \
    } while (false)

Status read_bucket_checksum(element e, BucketChecksum& b) {
    constexpr std::string_view kWhere = "bucket checksum";
    object o;
    if (e.get_object().get(o) != simdjson::SUCCESS) {
        return bad(kWhere, "not an object");
    }
    SLUICE_TRY(need_string(o, "bucket", kWhere, b.bucket));
    element c;
    if (o.at_key("checksum").get(c) != simdjson::SUCCESS || !get_checksum(c, b.checksum)) {
        return bad(kWhere, "'checksum' is missing or not a 32-bit integer");
    }
    element v;
    if (o.at_key("count").get(v) == simdjson::SUCCESS && !v.is_null()) {
        std::int64_t count = 0;
        if (!get_i64(v, count)) {
            return bad(kWhere, "'count' is not an integer");
        }
        b.count = count;
    }
    if (o.at_key("priority").get(v) == simdjson::SUCCESS && !v.is_null()) {
        std::int32_t priority = 0;
        if (!get_i32(v, priority)) {
            return bad(kWhere, "'priority' is not an integer");
        }
        b.priority = priority;
    }
    if (o.at_key("subscriptions").get(v) == simdjson::SUCCESS && !v.is_null()) {
        array subs;
        if (v.get_array().get(subs) != simdjson::SUCCESS) {
            return bad(kWhere, "'subscriptions' is not an array");
        }
        b.subscriptions.emplace();
        for (element s : subs) {
            object so;
            std::int64_t index = 0;
            element idx;
            BucketSubscription sub;
            if (s.get_object().get(so) != simdjson::SUCCESS) {
                return bad(kWhere, "a subscription is not an object");
            }
            if (so.at_key("default").get(idx) == simdjson::SUCCESS) {
                sub.kind = BucketSubscription::Kind::kDefault;
            } else if (so.at_key("sub").get(idx) == simdjson::SUCCESS) {
                sub.kind = BucketSubscription::Kind::kSub;
            } else {
                return bad(kWhere, "a subscription has neither 'default' nor 'sub'");
            }
            if (!get_i64(idx, index) || index < 0 || index > std::numeric_limits<std::uint32_t>::max()) {
                return bad(kWhere, "a subscription index is not a non-negative integer");
            }
            sub.index = static_cast<std::uint32_t>(index);
            b.subscriptions->push_back(sub);
        }
    }
    return {};
}

Status read_bucket_list(array a, std::vector<BucketChecksum>& out) {
    for (element e : a) {
        SLUICE_TRY(read_bucket_checksum(e, out.emplace_back()));
    }
    return {};
}

Status read_streams(element e, std::vector<StreamInfo>& out) {
    constexpr std::string_view kWhere = "checkpoint streams";
    array a;
    if (e.get_array().get(a) != simdjson::SUCCESS) {
        return bad(kWhere, "not an array");
    }
    for (element se : a) {
        object so;
        if (se.get_object().get(so) != simdjson::SUCCESS) {
            return bad(kWhere, "a stream is not an object");
        }
        StreamInfo& s = out.emplace_back();
        SLUICE_TRY(need_string(so, "name", kWhere, s.name));
        bool is_default = false;
        if (so.at_key("is_default").get_bool().get(is_default) != simdjson::SUCCESS) {
            return bad(kWhere, "'is_default' is missing or not a boolean");
        }
        s.is_default = is_default;
        element errors;
        if (so.at_key("errors").get(errors) != simdjson::SUCCESS || errors.is_null()) {
            continue;
        }
        array ea;
        if (errors.get_array().get(ea) != simdjson::SUCCESS) {
            return bad(kWhere, "'errors' is not an array");
        }
        for (element err : ea) {
            object eo;
            if (err.get_object().get(eo) != simdjson::SUCCESS) {
                return bad(kWhere, "an error is not an object");
            }
            StreamError& se_out = s.errors.emplace_back();
            SLUICE_TRY(need_string(eo, "message", kWhere, se_out.message));
            element sub;
            if (eo.at_key("subscription").get(sub) == simdjson::SUCCESS && sub.type() != element_type::STRING) {
                std::int64_t index = 0;
                if (!get_i64(sub, index) || index < 0 || index > std::numeric_limits<std::uint32_t>::max()) {
                    return bad(kWhere, "an error's 'subscription' is neither \"default\" nor an index");
                }
                se_out.subscription = static_cast<std::uint32_t>(index);
            }
        }
    }
    return {};
}

Result<ServerLine> read_checkpoint(object o) {
    constexpr std::string_view kWhere = "checkpoint";
    Checkpoint c;
    SLUICE_TRY(need_op_id(o, "last_op_id", kWhere, c.last_op_id));
    SLUICE_TRY(opt_op_id(o, "write_checkpoint", kWhere, c.write_checkpoint));
    array buckets;
    SLUICE_TRY(need_array(o, "buckets", kWhere, buckets));
    SLUICE_TRY(read_bucket_list(buckets, c.buckets));
    element streams;
    if (o.at_key("streams").get(streams) == simdjson::SUCCESS && !streams.is_null()) {
        SLUICE_TRY(read_streams(streams, c.streams.emplace()));
    }
    return ServerLine{std::move(c)};
}

Result<ServerLine> read_checkpoint_diff(object o) {
    constexpr std::string_view kWhere = "checkpoint_diff";
    CheckpointDiff d;
    SLUICE_TRY(need_op_id(o, "last_op_id", kWhere, d.last_op_id));
    SLUICE_TRY(opt_op_id(o, "write_checkpoint", kWhere, d.write_checkpoint));
    array removed;
    SLUICE_TRY(need_array(o, "removed_buckets", kWhere, removed));
    for (element e : removed) {
        std::string_view s;
        if (e.get_string().get(s) != simdjson::SUCCESS) {
            return bad(kWhere, "a removed bucket is not a string");
        }
        d.removed_buckets.emplace_back(s);
    }
    array updated;
    SLUICE_TRY(need_array(o, "updated_buckets", kWhere, updated));
    SLUICE_TRY(read_bucket_list(updated, d.updated_buckets));
    return ServerLine{std::move(d)};
}

Status read_op(element e, OplogEntry& op) {
    constexpr std::string_view kWhere = "data op";
    object o;
    if (e.get_object().get(o) != simdjson::SUCCESS) {
        return bad(kWhere, "not an object");
    }
    SLUICE_TRY(need_op_id(o, "op_id", kWhere, op.op_id));
    std::string_view name;
    if (o.at_key("op").get_string().get(name) != simdjson::SUCCESS) {
        return bad(kWhere, "'op' is missing or not a string");
    }
    if (name == "PUT") {
        op.op = OpType::kPut;
    } else if (name == "REMOVE") {
        op.op = OpType::kRemove;
    } else if (name == "MOVE") {
        op.op = OpType::kMove;
    } else if (name == "CLEAR") {
        op.op = OpType::kClear;
    } else {
        return bad(kWhere, fmt::format("unknown op '{}'", name));
    }
    element c;
    if (o.at_key("checksum").get(c) != simdjson::SUCCESS || !get_checksum(c, op.checksum)) {
        return bad(kWhere, "'checksum' is missing or not a 32-bit integer");
    }
    SLUICE_TRY(opt_string(o, "object_type", kWhere, op.object_type));
    SLUICE_TRY(opt_string(o, "object_id", kWhere, op.object_id));
    SLUICE_TRY(opt_string(o, "subkey", kWhere, op.subkey));
    element data;
    if (o.at_key("data").get(data) == simdjson::SUCCESS && !data.is_null()) {
        if (data.type() == element_type::STRING) {
            op.data = std::string(data.get_string().value_unsafe());
        } else if (data.type() == element_type::OBJECT) {
            op.data = simdjson::minify(data);  // raw_data: false sends the row as an object
        } else {
            return bad(kWhere, "'data' is neither a string, an object nor null");
        }
    }
    return {};
}

Result<ServerLine> read_data(object o) {
    constexpr std::string_view kWhere = "data";
    DataLine d;
    SLUICE_TRY(need_string(o, "bucket", kWhere, d.bucket));
    SLUICE_TRY(opt_op_id(o, "after", kWhere, d.after));
    SLUICE_TRY(opt_op_id(o, "next_after", kWhere, d.next_after));
    element more;
    if (o.at_key("has_more").get(more) == simdjson::SUCCESS && !more.is_null()) {
        bool b = false;
        if (more.get_bool().get(b) != simdjson::SUCCESS) {
            return bad(kWhere, "'has_more' is not a boolean");
        }
        d.has_more = b;
    }
    array ops;
    SLUICE_TRY(need_array(o, "data", kWhere, ops));
    for (element e : ops) {
        SLUICE_TRY(read_op(e, d.data.emplace_back()));
    }
    return ServerLine{std::move(d)};
}

Result<ServerLine> read_error(object o) {
    constexpr std::string_view kWhere = "error";
    ErrorLine err;
    SLUICE_TRY(need_string(o, "code", kWhere, err.code));
    element status;
    if (o.at_key("status").get(status) == simdjson::SUCCESS && !get_i32(status, err.status)) {
        return bad(kWhere, "'status' is not an integer");
    }
    std::optional<std::string> description;
    SLUICE_TRY(opt_string(o, "description", kWhere, description));
    err.description = description.value_or("");
    return ServerLine{std::move(err)};
}

Result<ServerLine> decode_field(std::string_view key, element value) {
    object o;
    const bool is_object = value.get_object().get(o) == simdjson::SUCCESS;
    const auto need_object = [&]() { return bad(key, "the value is not an object"); };
    if (key == "checkpoint") {
        return is_object ? read_checkpoint(o) : need_object();
    }
    if (key == "checkpoint_diff") {
        return is_object ? read_checkpoint_diff(o) : need_object();
    }
    if (key == "data") {
        return is_object ? read_data(o) : need_object();
    }
    if (key == "checkpoint_complete") {
        if (!is_object) {
            return need_object();
        }
        CheckpointComplete c;
        SLUICE_TRY(need_op_id(o, "last_op_id", key, c.last_op_id));
        return ServerLine{c};
    }
    if (key == "partial_checkpoint_complete") {
        if (!is_object) {
            return need_object();
        }
        PartialCheckpointComplete c;
        SLUICE_TRY(need_op_id(o, "last_op_id", key, c.last_op_id));
        element p;
        if (o.at_key("priority").get(p) != simdjson::SUCCESS || !get_i32(p, c.priority)) {
            return bad(key, "'priority' is missing or not an integer");
        }
        return ServerLine{c};
    }
    if (key == "token_expires_in") {
        TokenExpiresIn t;
        if (!get_i64(value, t.seconds)) {
            return bad(key, "not an integer");
        }
        return ServerLine{t};
    }
    if (key == "error") {
        return is_object ? read_error(o) : need_object();
    }
    return ServerLine{UnknownLine{std::string(key)}};
}

}  // namespace

Result<ServerLine> decode_line(std::string_view line) {
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) {
        line.remove_suffix(1);
    }
    thread_local simdjson::dom::parser parser;
    element doc;
    if (auto err = parser.parse(line.data(), line.size()).get(doc); err) {
        return Status{ErrorCode::kSyncLineMalformed,
                      fmt::format("the line is not valid JSON ({})", simdjson::error_message(err))};
    }
    object o;
    if (doc.get_object().get(o) != simdjson::SUCCESS) {
        return Status{ErrorCode::kSyncLineMalformed, "the line is not a JSON object"};
    }
    // A line has one key naming its type; the first known one wins, unknown ones are skipped.
    std::optional<std::string_view> first_key;
    for (auto field : o) {
        Result<ServerLine> line_value = decode_field(field.key, field.value);
        if (!line_value.is_ok() || !std::holds_alternative<UnknownLine>(line_value.value())) {
            return line_value;
        }
        if (!first_key) {
            first_key = field.key;
        }
    }
    return ServerLine{UnknownLine{std::string(first_key.value_or(""))}};
}

}  // namespace sluice::protocol::wire

#pragma GCC diagnostic pop
