// Sync request parser on simdjson's DOM parser, and its encoder (see request.h).
#include "protocol/wire/request.h"

#include <charconv>
#include <cmath>

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

Status wrong(std::string_view field, std::string_view expected) {
    return {ErrorCode::kRequestInvalidField, fmt::format("sync request: '{}' must be {}", field, expected)};
}

bool present(element e) { return !e.is_null(); }

Status read_bool(element e, std::string_view field, bool& out) {
    if (!present(e)) {
        return {};
    }
    if (e.get_bool().get(out) != simdjson::SUCCESS) {
        return wrong(field, "true or false");
    }
    return {};
}

Status read_object_text(element e, std::string_view field, std::string& out) {
    if (!present(e)) {
        return {};
    }
    if (e.type() != element_type::OBJECT) {
        return wrong(field, "a JSON object");
    }
    out = simdjson::minify(e);
    return {};
}

Status read_after(element e, std::string_view field, std::uint64_t& out) {
    if (!present(e)) {
        return {};
    }
    if (e.type() == element_type::STRING) {
        const std::string_view s = e.get_string().value_unsafe();
        const auto res = std::from_chars(s.data(), s.data() + s.size(), out);
        if (!s.empty() && res.ec == std::errc{} && res.ptr == s.data() + s.size()) {
            return {};
        }
    } else if (e.type() == element_type::UINT64) {
        out = e.get_uint64().value_unsafe();
        return {};
    } else if (e.type() == element_type::INT64 && e.get_int64().value_unsafe() >= 0) {
        out = static_cast<std::uint64_t>(e.get_int64().value_unsafe());
        return {};
    }
    return wrong(field, "an op id (a decimal string of a 64-bit unsigned integer)");
}

Status read_buckets(element e, std::vector<BucketRequest>& out) {
    if (!present(e)) {
        return {};
    }
    array a;
    if (e.get_array().get(a) != simdjson::SUCCESS) {
        return wrong("buckets", "an array");
    }
    std::size_t i = 0;
    for (element b : a) {
        const std::string where = fmt::format("buckets[{}]", i++);
        object o;
        if (b.get_object().get(o) != simdjson::SUCCESS) {
            return wrong(where, "an object {\"name\":…,\"after\":…}");
        }
        BucketRequest& r = out.emplace_back();
        std::string_view name;
        if (o.at_key("name").get_string().get(name) != simdjson::SUCCESS || name.empty()) {
            return wrong(where + ".name", "a non-empty string");
        }
        r.name = std::string(name);
        element after;
        if (o.at_key("after").get(after) == simdjson::SUCCESS) {
            if (Status s = read_after(after, where + ".after", r.after); !s) {
                return s;
            }
        }
    }
    return {};
}

Status read_streams(element e, std::optional<StreamsRequest>& out) {
    if (!present(e)) {
        return {};
    }
    object o;
    if (e.get_object().get(o) != simdjson::SUCCESS) {
        return wrong("streams", "an object {\"include_defaults\":…,\"subscriptions\":[…]}");
    }
    StreamsRequest& streams = out.emplace();
    element v;
    if (o.at_key("include_defaults").get(v) == simdjson::SUCCESS) {
        if (Status s = read_bool(v, "streams.include_defaults", streams.include_defaults); !s) {
            return s;
        }
    }
    if (o.at_key("subscriptions").get(v) != simdjson::SUCCESS || !present(v)) {
        return {};
    }
    array subs;
    if (v.get_array().get(subs) != simdjson::SUCCESS) {
        return wrong("streams.subscriptions", "an array");
    }
    std::size_t i = 0;
    for (element se : subs) {
        const std::string where = fmt::format("streams.subscriptions[{}]", i++);
        object so;
        if (se.get_object().get(so) != simdjson::SUCCESS) {
            return wrong(where, "an object {\"stream\":…,\"parameters\":…,\"override_priority\":…}");
        }
        StreamSubscription& sub = streams.subscriptions.emplace_back();
        std::string_view name;
        if (so.at_key("stream").get_string().get(name) != simdjson::SUCCESS || name.empty()) {
            return wrong(where + ".stream", "a non-empty string");
        }
        sub.stream = std::string(name);
        element field;
        if (so.at_key("parameters").get(field) == simdjson::SUCCESS) {
            if (Status s = read_object_text(field, where + ".parameters", sub.parameters); !s) {
                return s;
            }
        }
        if (so.at_key("override_priority").get(field) == simdjson::SUCCESS && present(field)) {
            std::int64_t p = -1;
            if (field.type() == element_type::DOUBLE &&
                std::trunc(field.get_double().value_unsafe()) == field.get_double().value_unsafe()) {
                p = static_cast<std::int64_t>(field.get_double().value_unsafe());
            } else if (field.get_int64().get(p) != simdjson::SUCCESS) {
                p = -1;
            }
            if (p < 0 || p > 3) {
                return wrong(where + ".override_priority", "an integer from 0 to 3");
            }
            sub.override_priority = static_cast<std::int32_t>(p);
        }
    }
    return {};
}

}  // namespace

Result<SyncRequest> parse_sync_request(std::string_view body, std::size_t max_bytes) {
    if (body.size() > max_bytes) {
        return Status{ErrorCode::kMessageTooLarge,
                      fmt::format("sync request of {} bytes exceeds the limit of {} bytes", body.size(), max_bytes)};
    }
    thread_local simdjson::dom::parser parser;
    element doc;
    if (auto err = parser.parse(body.data(), body.size()).get(doc); err) {
        return Status{ErrorCode::kRequestInvalidJson,
                      fmt::format("sync request is not valid JSON ({})", simdjson::error_message(err))};
    }
    object o;
    if (doc.get_object().get(o) != simdjson::SUCCESS) {
        return Status{ErrorCode::kRequestInvalidJson, "sync request is not a JSON object"};
    }
    SyncRequest r;
    for (auto field : o) {
        const std::string_view key = field.key;
        const element v = field.value;
        Status s;
        if (key == "buckets") {
            r.buckets.clear();
            s = read_buckets(v, r.buckets);
        } else if (key == "include_checksum") {
            s = read_bool(v, key, r.include_checksum);
        } else if (key == "raw_data") {
            s = read_bool(v, key, r.raw_data);
        } else if (key == "binary_data") {
            s = read_bool(v, key, r.binary_data);
        } else if (key == "client_id") {
            if (present(v)) {
                std::string_view id;
                if (v.get_string().get(id) != simdjson::SUCCESS) {
                    s = wrong(key, "a string");
                } else {
                    r.client_id = std::string(id);
                }
            }
        } else if (key == "parameters") {
            s = read_object_text(v, key, r.parameters);
        } else if (key == "app_metadata") {
            s = read_object_text(v, key, r.app_metadata);
        } else if (key == "streams") {
            r.streams.reset();
            s = read_streams(v, r.streams);
        }
        if (!s) {
            return s;
        }
    }
    return r;
}

void encode_sync_request(std::string& out, const SyncRequest& r) {
    out.append(R"({"buckets":[)");
    bool first = true;
    for (const auto& b : r.buckets) {
        if (!first) {
            out.push_back(',');
        }
        first = false;
        out.append(R"({"name":)");
        append_json_string(out, b.name);
        out.append(R"(,"after":)");
        append_quoted_u64(out, b.after);
        out.push_back('}');
    }
    out.append(R"(],"include_checksum":)");
    out.append(r.include_checksum ? "true" : "false");
    out.append(R"(,"raw_data":)");
    out.append(r.raw_data ? "true" : "false");
    out.append(R"(,"binary_data":)");
    out.append(r.binary_data ? "true" : "false");
    if (r.client_id) {
        out.append(R"(,"client_id":)");
        append_json_string(out, *r.client_id);
    }
    out.append(R"(,"parameters":)");
    out.append(r.parameters);
    out.append(R"(,"app_metadata":)");
    out.append(r.app_metadata);
    if (r.streams) {
        out.append(R"(,"streams":{"include_defaults":)");
        out.append(r.streams->include_defaults ? "true" : "false");
        out.append(R"(,"subscriptions":[)");
        bool first_sub = true;
        for (const auto& s : r.streams->subscriptions) {
            if (!first_sub) {
                out.push_back(',');
            }
            first_sub = false;
            out.append(R"({"stream":)");
            append_json_string(out, s.stream);
            out.append(R"(,"parameters":)");
            out.append(s.parameters);
            if (s.override_priority) {
                out.append(R"(,"override_priority":)");
                append_i64(out, *s.override_priority);
            }
            out.push_back('}');
        }
        out.append("]}");
    }
    out.push_back('}');
}

}  // namespace sluice::protocol::wire

#pragma GCC diagnostic pop
