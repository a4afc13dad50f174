// Data-driven sync-rules cases: every tests/data/rules/*.yaml file holds cases of rules + rows +
// requests -> expected buckets and output rows, or rules -> exact diagnostics. Format: see
// tests/data/rules/README.md.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>
#include <yaml-cpp/yaml.h>

#include "config/rules/json.h"
#include "config/rules/memory_lookup.h"
#include "config/rules/rule_set.h"
#include "config/rules/write_rules.h"
#include "config/rules/value.h"

namespace {

using namespace sluice::config::rules;

std::string read(const std::filesystem::path& p) {
    std::ifstream in(p);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// YAML -> JSON: quoted scalars are strings; plain ones are null, booleans, numbers or strings.
void to_json(const YAML::Node& n, std::string& out) {
    if (n.IsMap()) {
        out += '{';
        bool first = true;
        for (const auto& kv : n) {
            if (!first) {
                out += ',';
            }
            first = false;
            append_json_string(out, kv.first.Scalar());
            out += ':';
            to_json(kv.second, out);
        }
        out += '}';
    } else if (n.IsSequence()) {
        out += '[';
        for (std::size_t i = 0; i < n.size(); ++i) {
            if (i > 0) {
                out += ',';
            }
            to_json(n[i], out);
        }
        out += ']';
    } else if (n.IsNull()) {
        out += "null";
    } else {
        const std::string& s = n.Scalar();
        if (n.Tag() == "!") {
            append_json_string(out, s);
        } else if (s == "true" || s == "false" || s == "null") {
            out += s;
        } else if (!s.empty() && json_valid(s) && (std::isdigit(static_cast<unsigned char>(s[0])) || s[0] == '-')) {
            out += s;
        } else {
            append_json_string(out, s);
        }
    }
}

std::string json_of(const YAML::Node& n) {
    if (!n) {
        return "{}";
    }
    std::string out;
    to_json(n, out);
    return out;
}

Row row_of(const YAML::Node& n) {
    std::string error;
    auto row = json_object_to_row(json_of(n), &error);
    INFO(error);
    REQUIRE(row.has_value());
    return *row;
}

TableName table_of(const std::string& s) {
    const auto dot = s.find('.');
    return dot == std::string::npos ? TableName{"public", s} : TableName{s.substr(0, dot), s.substr(dot + 1)};
}

std::vector<std::string> strings(const YAML::Node& n) {
    std::vector<std::string> out;
    if (n) {
        for (const auto& s : n) {
            out.push_back(s.Scalar());
        }
    }
    return out;
}

std::size_t g_checks = 0;

std::vector<std::string> diagnostics_of(const CompileResult& r) {
    std::vector<std::string> out;
    for (const auto& d : r.diagnostics) {
        out.push_back(d.to_string());
    }
    return out;
}

// The value (as JSON) of expression `expr` over `row` in a data query, or the error.
std::string eval_expression(const std::string& expr, const std::string& row_json) {
    const std::string rules = "bucket_definitions:\n  b:\n    data:\n      - |\n        SELECT id, " + expr +
                              " AS v FROM t\n";
    auto compiled = RuleSet::compile(rules, "rules.yaml");
    if (!compiled.rules) {
        std::string out = "compile error:";
        for (const auto& d : compiled.diagnostics) {
            if (d.severity == sluice::config::Severity::kError) {
                out += " " + d.message + " [" + std::string(sluice::protocol::error_id(d.code)) + "]";
            }
        }
        return out;
    }
    std::string error;
    auto row = json_object_to_row(row_json, &error);
    REQUIRE(row.has_value());
    RowEvaluation ev;
    compiled.rules->evaluate_row({"public", "t"}, *row, ev);
    if (!ev.errors.empty()) {
        return "row error: " + ev.errors[0].message;
    }
    REQUIRE(ev.rows.size() == 1);
    auto v = json_extract(ev.rows[0].data, "$.v", JsonMode::kJsonText);
    return v.value.is_null() ? "missing" : v.value.bytes();
}

// The value (as JSON) of request expression `expr` as a bucket parameter, or the error.
std::string eval_request_expression(const std::string& expr, const std::string& claims, const std::string& params) {
    const std::string rules = "bucket_definitions:\n  b:\n    accept_potentially_dangerous_queries: true\n"
                              "    parameters: |\n      SELECT " +
                              expr + " AS v\n    data:\n      - SELECT id FROM t WHERE id = bucket.v\n";
    auto compiled = RuleSet::compile(rules, "rules.yaml");
    if (!compiled.rules) {
        std::string out = "compile error:";
        for (const auto& d : compiled.diagnostics) {
            out += " " + d.message + " [" + std::string(sluice::protocol::error_id(d.code)) + "]";
        }
        return out;
    }
    auto request = Request::from_json(claims, params);
    REQUIRE(request.is_ok());
    MemoryLookup none;
    auto res = compiled.rules->resolve_buckets(request.value(), none);
    REQUIRE(res.is_ok());
    if (!res->errors.empty()) {
        return "request error: " + res->errors[0].message;
    }
    if (res->buckets.empty()) {
        return "no bucket";
    }
    const std::string& id = res->buckets[0].id;
    return id.substr(2, id.size() - 3);  // b[<v>] -> <v>
}

void run_case(const YAML::Node& c, const std::string& where) {
    const std::string name = c["name"] ? c["name"].Scalar() : "";
    INFO(where << " case '" << name << "'");
    // Expression tables.
    if (c["expressions"]) {
        const std::string row = c["row"] ? json_of(c["row"]) : std::string(R"({"id":"r1"})");
        for (const auto& line : c["expressions"]) {
            const std::string s = line.Scalar();
            const auto sep = s.find(" => ");
            REQUIRE(sep != std::string::npos);
            INFO("expression: " << s);
            CHECK(eval_expression(s.substr(0, sep), row) == s.substr(sep + 4));
            ++g_checks;
        }
    }
    if (c["request_expressions"]) {
        const std::string claims = c["claims"] ? json_of(c["claims"]) : std::string(R"({"sub":"u1"})");
        const std::string params = c["parameters"] ? json_of(c["parameters"]) : std::string("{}");
        for (const auto& line : c["request_expressions"]) {
            const std::string s = line.Scalar();
            const auto sep = s.find(" => ");
            REQUIRE(sep != std::string::npos);
            INFO("request expression: " << s);
            CHECK(eval_request_expression(s.substr(0, sep), claims, params) == s.substr(sep + 4));
            ++g_checks;
        }
    }
    if (!c["rules"]) {
        return;
    }
    CompileOptions options;
    if (c["prefix"]) {
        options.bucket_id_prefix = c["prefix"].Scalar();
    }
    auto compiled = RuleSet::compile(c["rules"].Scalar(), "rules.yaml", options);
    if (c["errors"]) {
        CHECK(diagnostics_of(compiled) == strings(c["errors"]));
        ++g_checks;
    } else {
        INFO("diagnostics: " << [&] {
            std::string all;
            for (const auto& d : compiled.diagnostics) {
                all += d.to_string() + "\n";
            }
            return all;
        }());
        CHECK(compiled.rules);
    }
    if (!compiled.rules) {
        return;
    }
    const auto& rules = *compiled.rules;
    if (c["source_tables"]) {
        std::vector<std::string> tables;
        for (const auto& t : rules.source_tables()) {
            tables.push_back(t.to_string());
        }
        CHECK(tables == strings(c["source_tables"]));
        ++g_checks;
    }
    for (const auto& r : c["rows"]) {
        RowEvaluation ev;
        rules.evaluate_row(table_of(r["table"].Scalar()), row_of(r["row"]), ev);
        std::vector<std::string> got;
        for (const auto& b : ev.rows) {
            got.push_back(b.bucket + " " + b.table + " " + b.id + " " + b.data);
        }
        std::vector<std::string> errors;
        for (const auto& e : ev.errors) {
            errors.push_back(e.definition + " " + e.query + ": " + e.message);
        }
        INFO("row " << json_of(r["row"]));
        CHECK(got == strings(r["buckets"]));
        CHECK(errors == strings(r["errors"]));
        ++g_checks;
    }
    MemoryLookup lookups;
    for (const auto& r : c["parameter_rows"]) {
        ParameterEvaluation ev;
        rules.evaluate_parameter_row(table_of(r["table"].Scalar()), row_of(r["row"]), ev);
        lookups.add(ev.entries);
        if (r["entries"] || r["errors"]) {
            std::vector<std::string> got;
            for (const auto& e : ev.entries) {
                got.push_back(e.key + " => " + e.values);
            }
            std::vector<std::string> errors;
            for (const auto& e : ev.errors) {
                errors.push_back(e.definition + " " + e.query + ": " + e.message);
            }
            INFO("parameter row " << json_of(r["row"]));
            CHECK(got == strings(r["entries"]));
            CHECK(errors == strings(r["errors"]));
            ++g_checks;
        }
    }
    if (c["stream_definitions"]) {
        std::vector<std::string> got;
        for (const auto& s : rules.streams()) {
            std::string line = s.name + (s.auto_subscribe ? " auto" : "") + " @" + std::to_string(s.priority) + ":";
            for (const auto& d : s.definitions) {
                line += " " + d;
            }
            got.push_back(line);
        }
        CHECK(got == strings(c["stream_definitions"]));
        ++g_checks;
    }
    for (const auto& q : c["requests"]) {
        auto request = Request::from_json(json_of(q["claims"]), q["parameters"] ? json_of(q["parameters"]) : "{}");
        REQUIRE(request.is_ok());
        if (q["subscriptions"] || q["include_defaults"]) {
            std::vector<StreamSubscription> subscriptions;
            for (const auto& s : q["subscriptions"]) {
                StreamSubscription sub;
                sub.stream = s["stream"].Scalar();
                if (s["parameters"]) {
                    sub.parameters = s["parameters"].IsScalar() ? s["parameters"].Scalar() : json_of(s["parameters"]);
                }
                if (s["override_priority"]) {
                    sub.override_priority = s["override_priority"].as<int>();
                }
                subscriptions.push_back(std::move(sub));
            }
            request->set_streams(!q["include_defaults"] || q["include_defaults"].as<bool>(), std::move(subscriptions));
        }
        ResolveOptions limits;
        if (q["max_buckets"]) {
            limits.max_buckets = q["max_buckets"].as<std::size_t>();
        }
        if (q["max_parameter_results"]) {
            limits.max_parameter_results = q["max_parameter_results"].as<std::size_t>();
        }
        auto res = rules.resolve_buckets(request.value(), lookups, limits);
        INFO("request " << json_of(q["claims"]) << " " << json_of(q["parameters"]));
        if (q["fails"]) {
            REQUIRE_FALSE(res.is_ok());
            CHECK(res.status().message() == q["fails"].Scalar());
            ++g_checks;
            continue;
        }
        REQUIRE(res.is_ok());
        std::vector<std::string> got;
        const bool with_priority = q["priorities"] && q["priorities"].as<bool>();
        const bool with_sources = q["sources"] && q["sources"].as<bool>();
        for (const auto& b : res->buckets) {
            std::string line = with_priority ? b.id + " @" + std::to_string(b.priority) : b.id;
            if (with_sources) {
                line += " <-";
                for (std::size_t i = 0; i < b.sources.size(); ++i) {
                    line += i == 0 ? " " : ",";
                    line += b.sources[i].kind == BucketSource::Kind::kDefault ? "default:" : "sub:";
                    line += std::to_string(b.sources[i].index);
                }
            }
            got.push_back(line);
        }
        if (q["stream_status"]) {
            std::vector<std::string> status;
            for (const auto& s : res->streams) {
                std::string line = s.name + (s.is_default ? " (default)" : "");
                for (const auto& e : s.errors) {
                    line += " | " + (e.subscription ? "sub " + std::to_string(*e.subscription) : std::string("default")) +
                            ": " + e.message;
                }
                status.push_back(line);
            }
            CHECK(status == strings(q["stream_status"]));
        }
        if (q["lookup_rounds"]) {
            CHECK(res->lookup_rounds == q["lookup_rounds"].as<int>());
        }
        std::vector<std::string> errors;
        for (const auto& e : res->errors) {
            errors.push_back(e.definition + " " + e.query + ": " + e.message);
        }
        CHECK(got == strings(q["buckets"]));
        CHECK(errors == strings(q["errors"]));
        ++g_checks;
    }
    for (const auto& w : c["writes"]) {
        const std::string op_name = w["op"].Scalar();
        WriteCheck check;
        check.op = op_name == "insert" ? WriteOp::kInsert : op_name == "update" ? WriteOp::kUpdate : WriteOp::kDelete;
        std::optional<Row> old_row;
        std::optional<Row> new_row;
        if (w["old"]) {
            old_row = row_of(w["old"]);
            check.old_row = &*old_row;
        }
        if (w["new"]) {
            new_row = row_of(w["new"]);
            check.new_row = &*new_row;
        }
        const auto columns = strings(w["columns"]);
        check.written_columns = columns;
        auto request = Request::from_json(w["claims"] ? json_of(w["claims"]) : R"({"sub":"u1"})", "{}");
        REQUIRE(request.is_ok());
        const auto decision = rules.write_rules().check(table_of(w["table"].Scalar()), check, request.value());
        INFO("write " << op_name << " " << w["table"].Scalar());
        CHECK(decision.allowed == w["allowed"].as<bool>());
        if (w["reason"]) {
            CHECK(decision.reason == w["reason"].Scalar());
        }
        ++g_checks;
    }
}

}  // namespace

TEST_CASE("sync-rules data-driven cases") {
    const std::filesystem::path dir = std::filesystem::path(SLUICE_SOURCE_DIR) / "tests/data/rules";
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        if (entry.path().extension() == ".yaml") {
            files.push_back(entry.path());
        }
    }
    std::sort(files.begin(), files.end());
    REQUIRE_FALSE(files.empty());
    for (const auto& file : files) {
        const YAML::Node doc = YAML::Load(read(file));
        REQUIRE(doc["cases"]);
        for (std::size_t i = 0; i < doc["cases"].size(); ++i) {
            run_case(doc["cases"][i], file.filename().string() + " #" + std::to_string(i));
        }
    }
    WARN("rules cases checked: " << g_checks);
    CHECK(g_checks >= 200);
}
