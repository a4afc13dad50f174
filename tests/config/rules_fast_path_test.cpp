// The row-evaluation fast paths against their plain definitions: JSON string escaping at every
// length and position (word-at-a-time checks), reused RowEvaluation buffers (clear()) giving the same
// rows as fresh ones, and per-table dispatch matching exactly the schema-qualified names the rules read.
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "config/rules/detail/json_writer.h"
#include "config/rules/rule_set.h"
#include "config/rules/value.h"

using namespace sluice::config::rules;

namespace {

// append_json_string as written before the fast path: one character at a time.
std::string reference_json_string(std::string_view text) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out = "\"";
    for (const char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            default:
                if (c < 0x20) {
                    out += "\\u00";
                    out += kHex[c >> 4];
                    out += kHex[c & 15];
                } else {
                    out += ch;
                }
        }
    }
    return out + "\"";
}

std::vector<std::string> row_strings(const RowEvaluation& ev) {
    std::vector<std::string> out;
    for (const auto& r : ev.rows) {
        out.push_back(r.bucket + " " + r.table + " " + r.id + " " + r.data + " " + r.definition + " " +
                      std::to_string(r.data_query));
    }
    for (const auto& e : ev.errors) {
        out.push_back("error " + e.definition + " " + e.query + " " + e.message);
    }
    return out;
}

}  // namespace

TEST_CASE("JSON strings are escaped exactly, whatever the length and position of the special byte") {
    // Bytes that must be escaped, bytes next to them in value (borrow edge cases) and UTF-8 bytes.
    const std::vector<char> specials{'"', '\\', '\n', '\0', '\x1f', '\x01', ' ', '!', '#', '[', ']', '\x7f',
                                     '\x80', '\xc3', '\xff'};
    for (std::size_t length = 0; length <= 40; ++length) {
        const std::string clean(length, 'a');
        std::string out = "x";
        append_json_string(out, clean);
        REQUIRE(out == "x" + reference_json_string(clean));
        for (std::size_t at = 0; at < length; ++at) {
            for (const char c : specials) {
                std::string text = clean;
                text[at] = c;
                std::string got;
                append_json_string(got, text);
                INFO("length " << length << " at " << at << " byte "
                               << static_cast<int>(static_cast<unsigned char>(c)));
                REQUIRE(got == reference_json_string(text));
            }
        }
    }
    std::string all;
    for (int c = 0; c < 256; ++c) {
        all += static_cast<char>(c);
    }
    std::string got;
    append_json_string(got, all);
    CHECK(got == reference_json_string(all));
}

TEST_CASE("JsonWriter writes what append_json and append_json_string write") {
    const std::vector<Value> values{Value::null(), Value::integer(0), Value::integer(-9223372036854775807 - 1),
                                    Value::real(0.1), Value::real(1e21), Value::blob("b"), Value::text("")};
    std::string out = "prefix";
    std::string expected = "prefix";
    {
        sluice::config::rules::detail::JsonWriter w(out);
        for (std::size_t length = 0; length <= 40; ++length) {
            std::string text(length, 'x');
            for (std::size_t i = 0; i < length; ++i) {
                text[i] = static_cast<char>('a' + i % 26);
            }
            if (length % 3 == 1) {
                text[length / 2] = '"';
            }
            w.raw(',');
            w.raw(text);
            w.string(text);
            w.value(Value::text(text));
            expected += ',' + text;
            append_json_string(expected, text);
            append_json(expected, Value::text(text));
        }
        for (const auto& v : values) {
            w.value(v);
            append_json(expected, v);
        }
        w.finish();
    }
    CHECK(out == expected);
}

TEST_CASE("a RowEvaluation reused with clear() gives the same rows as a fresh one") {
    const auto compiled = RuleSet::compile(R"(bucket_definitions:
  by_owner:
    parameters: SELECT request.user_id() AS owner
    data:
      - SELECT * FROM todos WHERE todos.owner_id = bucket.owner
      - SELECT id, title AS name FROM todos WHERE todos.owner_id = bucket.owner
  by_tag:
    parameters: SELECT value AS tag FROM json_each(request.parameters() -> 'tags')
    data:
      - SELECT * FROM todos WHERE bucket.tag IN todos.tags
  everything:
    data:
      - SELECT * FROM todos
)",
                                           "r.yaml", {"1#"});
    REQUIRE(compiled.rules);
    const std::vector<Row> rows{
        Row{{"id", Value::text("t1")}, {"owner_id", Value::text("u1")}, {"title", Value::text("a \"quoted\" title")},
            {"tags", Value::text(R"(["x","y","x"])")}},
        Row{{"id", Value::integer(7)}, {"owner_id", Value::text("a much longer owner id than sixteen bytes")},
            {"title", Value::null()}, {"tags", Value::text("[]")}},
        Row{{"id", Value::real(2.5)}, {"owner_id", Value::integer(3)}, {"title", Value::text("t")},
            {"tags", Value::text("not json")}},
        Row{{"id", Value::null()}, {"owner_id", Value::text("u1")}},
        Row{{"tags", Value::text(R"(["z"])")}, {"owner_id", Value::text("u2")}, {"id", Value::text("reordered")}},
    };
    RowEvaluation reused;
    for (int round = 0; round < 3; ++round) {
        for (const auto& row : rows) {
            RowEvaluation fresh;
            compiled.rules->evaluate_row({"public", "todos"}, row, fresh);
            reused.clear();
            compiled.rules->evaluate_row({"public", "todos"}, row, reused);
            CHECK(row_strings(reused) == row_strings(fresh));
        }
    }
    // Appending without clearing still accumulates, as before.
    RowEvaluation appended;
    compiled.rules->evaluate_row({"public", "todos"}, rows[0], appended);
    const auto once = appended.rows.size();
    compiled.rules->evaluate_row({"public", "todos"}, rows[0], appended);
    CHECK(appended.rows.size() == 2 * once);
}

TEST_CASE("rows are dispatched by exact schema-qualified table name") {
    std::string yaml = "bucket_definitions:\n";
    for (int t = 0; t < 40; ++t) {  // enough tables to fill several hash slots
        yaml += "  d" + std::to_string(t) + ":\n    data:\n      - SELECT * FROM t" + std::to_string(t) + "\n";
    }
    yaml += "  other:\n    data:\n      - SELECT * FROM app.t1\n";
    const auto compiled = RuleSet::compile(yaml, "r.yaml");
    REQUIRE(compiled.rules);
    const Row row{{"id", Value::text("r")}};
    auto buckets = [&](const TableName& table) {
        RowEvaluation ev;
        compiled.rules->evaluate_row(table, row, ev);
        std::vector<std::string> out;
        for (const auto& r : ev.rows) {
            out.push_back(r.bucket);
        }
        return out;
    };
    for (int t = 0; t < 40; ++t) {
        CHECK(buckets({"public", "t" + std::to_string(t)}) == std::vector<std::string>{"d" + std::to_string(t) + "[]"});
    }
    CHECK(buckets({"app", "t1"}) == std::vector<std::string>{"other[]"});
    CHECK(buckets({"public", "t40"}).empty());
    CHECK(buckets({"app", "t2"}).empty());
    CHECK(buckets({"public", "T1"}).empty());
    CHECK(buckets({"publi", "c.t1"}).empty());
    CHECK(buckets({"", "t1"}).empty());
}
