// JSON functions of the rules dialect on top of simdjson's DOM parser (one parser per thread).
#include "config/rules/json.h"

#include <charconv>
#include <cstdint>

#include <simdjson.h>

namespace sluice::config::rules {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

// Containers copied out of their simdjson_result (never iterate a temporary result's value).
simdjson::dom::array as_array(element e) {
    simdjson::dom::array a;
    if (e.get_array().get(a) != simdjson::SUCCESS) {
        return {};
    }
    return a;
}

simdjson::dom::object as_object(element e) {
    simdjson::dom::object o;
    if (e.get_object().get(o) != simdjson::SUCCESS) {
        return {};
    }
    return o;
}

simdjson::dom::parser& parser() {
    thread_local simdjson::dom::parser p;
    return p;
}

void write_json(std::string& out, element e) {
    switch (e.type()) {
        case element_type::ARRAY: {
            out += '[';
            bool first = true;
            for (element child : as_array(e)) {
                if (!first) {
                    out += ',';
                }
                first = false;
                write_json(out, child);
            }
            out += ']';
            break;
        }
        case element_type::OBJECT: {
            out += '{';
            bool first = true;
            for (auto field : as_object(e)) {
                if (!first) {
                    out += ',';
                }
                first = false;
                append_json_string(out, field.key);
                out += ':';
                write_json(out, field.value);
            }
            out += '}';
            break;
        }
        case element_type::INT64: append_json(out, Value::integer(e.get_int64().value_unsafe())); break;
        case element_type::UINT64: out += std::to_string(e.get_uint64().value_unsafe()); break;
        case element_type::DOUBLE: append_json(out, Value::real(e.get_double().value_unsafe())); break;
        case element_type::STRING: append_json_string(out, e.get_string().value_unsafe()); break;
        case element_type::BOOL: out += e.get_bool().value_unsafe() ? "true" : "false"; break;
        case element_type::NULL_VALUE: out += "null"; break;
    }
}

Value to_value(element e, JsonMode mode) {
    if (mode == JsonMode::kJsonText) {
        std::string out;
        write_json(out, e);
        return Value::text(std::move(out));
    }
    switch (e.type()) {
        case element_type::ARRAY:
        case element_type::OBJECT: {
            std::string out;
            write_json(out, e);
            return Value::text(std::move(out));
        }
        case element_type::INT64: return Value::integer(e.get_int64().value_unsafe());
        case element_type::UINT64: return Value::real(static_cast<double>(e.get_uint64().value_unsafe()));
        case element_type::DOUBLE: return Value::real(e.get_double().value_unsafe());
        case element_type::STRING: return Value::text(std::string(e.get_string().value_unsafe()));
        case element_type::BOOL: return Value::integer(e.get_bool().value_unsafe() ? 1 : 0);
        case element_type::NULL_VALUE: return Value::null();
    }
    return Value::null();
}

bool parse(std::string_view json, element& out, std::string& error) {
    auto res = parser().parse(json.data(), json.size(), true);
    if (res.error()) {
        error = "malformed JSON";
        return false;
    }
    out = res.value_unsafe();
    return true;
}

// Follows a SQLite JSON path; false with error on a bad path; found=false when absent.
bool follow(element root, std::string_view path, element& out, bool& found, std::string& error) {
    found = false;
    if (path.empty() || path[0] != '$') {
        error = "bad JSON path: '" + std::string(path) + "'";
        return false;
    }
    element cur = root;
    std::size_t i = 1;
    while (i < path.size()) {
        if (path[i] == '.') {
            ++i;
            std::string key;
            if (i < path.size() && path[i] == '"') {
                const auto close = path.find('"', i + 1);
                if (close == std::string_view::npos) {
                    error = "bad JSON path: '" + std::string(path) + "'";
                    return false;
                }
                key = std::string(path.substr(i + 1, close - i - 1));
                i = close + 1;
            } else {
                const std::size_t start = i;
                while (i < path.size() && path[i] != '.' && path[i] != '[') {
                    ++i;
                }
                key = std::string(path.substr(start, i - start));
                if (key.empty()) {
                    error = "bad JSON path: '" + std::string(path) + "'";
                    return false;
                }
            }
            if (cur.type() != element_type::OBJECT) {
                return true;
            }
            auto child = as_object(cur).at_key(key);
            if (child.error()) {
                return true;
            }
            cur = child.value_unsafe();
        } else if (path[i] == '[') {
            const auto close = path.find(']', i);
            if (close == std::string_view::npos) {
                error = "bad JSON path: '" + std::string(path) + "'";
                return false;
            }
            std::string_view index_text = path.substr(i + 1, close - i - 1);
            bool from_end = false;
            if (!index_text.empty() && index_text[0] == '#') {
                from_end = true;
                index_text.remove_prefix(1);
                if (!index_text.empty() && index_text[0] == '-') {
                    index_text.remove_prefix(1);
                } else if (!index_text.empty()) {
                    error = "bad JSON path: '" + std::string(path) + "'";
                    return false;
                }
            }
            std::int64_t index = 0;
            if (!index_text.empty()) {
                auto res = std::from_chars(index_text.data(), index_text.data() + index_text.size(), index);
                if (res.ec != std::errc() || res.ptr != index_text.data() + index_text.size()) {
                    error = "bad JSON path: '" + std::string(path) + "'";
                    return false;
                }
            } else if (!from_end) {
                error = "bad JSON path: '" + std::string(path) + "'";
                return false;
            }
            i = close + 1;
            if (cur.type() != element_type::ARRAY) {
                return true;
            }
            auto array = as_array(cur);
            const auto size = static_cast<std::int64_t>(array.size());
            if (from_end) {
                index = size - index;
            }
            if (index < 0 || index >= size) {
                return true;
            }
            cur = array.at(static_cast<std::size_t>(index)).value_unsafe();
        } else {
            error = "bad JSON path: '" + std::string(path) + "'";
            return false;
        }
    }
    out = cur;
    found = true;
    return true;
}

}  // namespace

bool json_valid(std::string_view text) { return !parser().parse(text.data(), text.size(), true).error(); }

JsonResult json_extract(std::string_view json, std::string_view path, JsonMode mode) {
    JsonResult out;
    element root;
    if (!parse(json, root, out.error)) {
        return out;
    }
    element target;
    bool found = false;
    if (follow(root, path, target, found, out.error) && found) {
        out.value = to_value(target, mode);
    }
    return out;
}

JsonResult json_arrow(std::string_view json, const Value& selector, JsonMode mode) {
    switch (selector.type()) {
        case ValueType::kInteger: return json_extract(json, "$[" + std::to_string(selector.as_integer()) + "]", mode);
        case ValueType::kText: {
            const std::string& s = selector.bytes();
            if (!s.empty() && s[0] == '$') {
                return json_extract(json, s, mode);
            }
            JsonResult out;
            element root;
            if (!parse(json, root, out.error)) {
                return out;
            }
            if (root.type() == element_type::OBJECT) {
                auto child = as_object(root).at_key(s);
                if (!child.error()) {
                    out.value = to_value(child.value_unsafe(), mode);
                }
            }
            return out;
        }
        case ValueType::kNull: return {};
        default: return {Value::null(), "bad JSON path: the right side of -> must be text or an integer"};
    }
}

JsonResult json_array_length(std::string_view json, std::string_view path) {
    JsonResult out;
    element root;
    if (!parse(json, root, out.error)) {
        return out;
    }
    element target;
    bool found = false;
    if (follow(root, path, target, found, out.error) && found) {
        out.value = Value::integer(target.type() == element_type::ARRAY
                                       ? static_cast<std::int64_t>(as_array(target).size())
                                       : 0);
    }
    return out;
}

JsonResult json_keys(std::string_view json, std::string_view path) {
    JsonResult out;
    element root;
    if (!parse(json, root, out.error)) {
        return out;
    }
    element target;
    bool found = false;
    if (follow(root, path, target, found, out.error) && found && target.type() == element_type::OBJECT) {
        std::string text = "[";
        bool first = true;
        for (auto field : as_object(target)) {
            if (!first) {
                text += ',';
            }
            first = false;
            append_json_string(text, field.key);
        }
        text += ']';
        out.value = Value::text(std::move(text));
    }
    return out;
}

std::optional<std::vector<Value>> json_array_values(std::string_view json, std::string* error) {
    element root;
    std::string err;
    if (!parse(json, root, err) || root.type() != element_type::ARRAY) {
        *error = err.empty() ? "not a JSON array" : "not a JSON array (" + err + ")";
        return std::nullopt;
    }
    std::vector<Value> out;
    for (element e : as_array(root)) {
        out.push_back(to_value(e, JsonMode::kSqlValue));
    }
    return out;
}

std::optional<std::vector<std::pair<Value, Value>>> json_each_entries(std::string_view json, std::string* error) {
    element root;
    if (!parse(json, root, *error)) {
        return std::nullopt;
    }
    std::vector<std::pair<Value, Value>> out;
    if (root.type() == element_type::ARRAY) {
        std::int64_t i = 0;
        for (element e : as_array(root)) {
            out.emplace_back(Value::integer(i++), to_value(e, JsonMode::kSqlValue));
        }
    } else if (root.type() == element_type::OBJECT) {
        for (auto field : as_object(root)) {
            out.emplace_back(Value::text(std::string(field.key)), to_value(field.value, JsonMode::kSqlValue));
        }
    } else {
        out.emplace_back(Value::null(), to_value(root, JsonMode::kSqlValue));
    }
    return out;
}

std::optional<std::vector<std::pair<std::string, Value>>> json_object_members(std::string_view json,
                                                                              std::string* error) {
    element root;
    if (!parse(json, root, *error)) {
        return std::nullopt;
    }
    if (root.type() != element_type::OBJECT) {
        *error = "expected a JSON object";
        return std::nullopt;
    }
    std::vector<std::pair<std::string, Value>> out;
    for (auto field : as_object(root)) {
        Value v;
        if (field.value.type() == element_type::OBJECT) {
            auto obj = as_object(field.value);
            auto hex = obj.at_key("$blob");
            if (!hex.error() && obj.size() == 1 && hex.value_unsafe().type() == element_type::STRING) {
                const std::string_view h = hex.value_unsafe().get_string().value_unsafe();
                std::string bytes;
                bool ok = h.size() % 2 == 0;
                for (std::size_t i = 0; ok && i < h.size(); i += 2) {
                    unsigned byte = 0;
                    auto res = std::from_chars(h.data() + i, h.data() + i + 2, byte, 16);
                    ok = res.ec == std::errc() && res.ptr == h.data() + i + 2;
                    bytes += static_cast<char>(byte);
                }
                if (!ok) {
                    *error = "\"$blob\" needs an even number of hex digits";
                    return std::nullopt;
                }
                out.emplace_back(std::string(field.key), Value::blob(std::move(bytes)));
                continue;
            }
        }
        out.emplace_back(std::string(field.key), to_value(field.value, JsonMode::kSqlValue));
    }
    return out;
}

std::optional<Row> json_object_to_row(std::string_view json, std::string* error) {
    auto members = json_object_members(json, error);
    if (!members) {
        return std::nullopt;
    }
    Row row;
    for (auto& [name, value] : *members) {
        row.set(std::move(name), std::move(value));
    }
    return row;
}

}  // namespace sluice::config::rules
