// Bucket id formatting and parsing (see bucket_id.h); the parameter array is read with simdjson.
#include "protocol/wire/bucket_id.h"

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

struct ParameterWriter {
    std::string& out;
    void operator()(std::monostate /*null*/) const { out.append("null"); }
    void operator()(std::int64_t v) const { append_i64(out, v); }
    void operator()(double v) const { append_js_number(out, v); }
    void operator()(const std::string& v) const { append_json_string(out, v); }
};

Status malformed(std::string_view text, std::string_view why) {
    return {ErrorCode::kBucketIdMalformed, fmt::format("bucket id '{}': {}", text, why)};
}

}  // namespace

void append_bucket_id(std::string& out, std::string_view name, std::span<const BucketParameter> parameters,
                      std::optional<std::uint32_t> version) {
    if (version) {
        append_u64(out, *version);
        out.push_back('#');
    }
    out.append(name);
    out.push_back('[');
    bool first = true;
    for (const auto& p : parameters) {
        if (!first) {
            out.push_back(',');
        }
        first = false;
        std::visit(ParameterWriter{out}, p);
    }
    out.push_back(']');
}

std::string format_bucket_id(const BucketId& id) {
    std::string out;
    append_bucket_id(out, id.name, id.parameters, id.version);
    return out;
}

Result<BucketId> parse_bucket_id(std::string_view text) {
    BucketId id;
    std::string_view rest = text;
    if (const auto hash = rest.find('#'); hash != std::string_view::npos && hash < rest.find('[')) {
        std::uint32_t version = 0;
        const auto* end = rest.data() + hash;
        const auto res = std::from_chars(rest.data(), end, version);
        if (hash == 0 || res.ec != std::errc{} || res.ptr != end) {
            return malformed(text, "the part before '#' is not a version number");
        }
        id.version = version;
        rest.remove_prefix(hash + 1);
    }
    const auto bracket = rest.find('[');
    if (bracket == std::string_view::npos) {
        return malformed(text, "no '[' starts the parameter list");
    }
    if (bracket == 0) {
        return malformed(text, "the definition name is empty");
    }
    id.name = std::string(rest.substr(0, bracket));
    rest.remove_prefix(bracket);

    thread_local simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (auto err = parser.parse(rest.data(), rest.size()).get(doc); err) {
        return malformed(text, fmt::format("the parameters are not a JSON array ({})", simdjson::error_message(err)));
    }
    simdjson::dom::array array;
    if (doc.get_array().get(array) != simdjson::SUCCESS) {
        return malformed(text, "the parameters are not a JSON array");
    }
    for (simdjson::dom::element e : array) {
        switch (e.type()) {
            case simdjson::dom::element_type::NULL_VALUE:
                id.parameters.emplace_back(std::monostate{});
                break;
            case simdjson::dom::element_type::INT64:
                id.parameters.emplace_back(e.get_int64().value_unsafe());
                break;
            case simdjson::dom::element_type::UINT64:
                id.parameters.emplace_back(static_cast<double>(e.get_uint64().value_unsafe()));
                break;
            case simdjson::dom::element_type::DOUBLE:
                id.parameters.emplace_back(e.get_double().value_unsafe());
                break;
            case simdjson::dom::element_type::STRING:
                id.parameters.emplace_back(std::string(e.get_string().value_unsafe()));
                break;
            default:
                return malformed(text, "a parameter is not a string, number or null");
        }
    }
    return id;
}

}  // namespace sluice::protocol::wire

#pragma GCC diagnostic pop
