// The rules API beyond the data-driven cases: compile-once reuse, table introspection, lookup keys
// batching, request parsing errors, write-rule column lists, and the example rules file.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>

#include "config/rules/json.h"
#include "config/rules/memory_lookup.h"
#include "config/rules/rule_set.h"
#include "config/rules/value.h"
#include "config/rules/write_rules.h"
#include "config/sync_rules_check.h"

using namespace sluice::config::rules;

namespace {

class CountingLookup final : public LookupSource {
public:
    std::vector<std::vector<std::string>> lookup(std::span<const std::string> keys) override {
        ++calls;
        seen.assign(keys.begin(), keys.end());
        return std::vector<std::vector<std::string>>(keys.size());
    }
    int calls = 0;
    std::vector<std::string> seen;
};

std::string example_rules() {
    std::ifstream in(std::filesystem::path(SLUICE_SOURCE_DIR) / "deploy/sync-rules.example.yaml");
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

}  // namespace

TEST_CASE("one lookup call per request, with every key") {
    auto compiled = RuleSet::compile(R"(bucket_definitions:
  a:
    parameters: SELECT list_id FROM shares WHERE user_id = request.user_id()
    data: [SELECT * FROM todos WHERE list_id = bucket.list_id]
  b:
    parameters: SELECT org_id FROM members WHERE user_id = request.user_id() OR email = request.jwt() ->> 'email'
    data: [SELECT * FROM docs WHERE org_id = bucket.org_id]
)",
                                     "r.yaml");
    REQUIRE(compiled.rules);
    auto request = Request::from_json(R"({"sub":"u1","email":"e@x"})", "");
    REQUIRE(request.is_ok());
    CountingLookup lookup;
    auto res = compiled.rules->resolve_buckets(request.value(), lookup);
    REQUIRE(res.is_ok());
    CHECK(lookup.calls == 1);
    CHECK(lookup.seen == std::vector<std::string>{R"(a/0/0["u1"])", R"(b/0/0["u1"])", R"(b/0/1["e@x"])"});
    CHECK(compiled.rules->parameter_tables().size() == 2);
    const auto queries = compiled.rules->data_queries();
    REQUIRE(queries.size() == 2);
    CHECK(queries[1].source.to_string() == "public.docs");
    CHECK(queries[1].output_table == "docs");
}

TEST_CASE("request claims and parameters must be JSON objects") {
    CHECK_FALSE(Request::from_json("[1]", "").is_ok());
    CHECK_FALSE(Request::from_json("{}", "nope").is_ok());
    auto ok = Request::from_json(R"({"sub":"u"})", "null");
    REQUIRE(ok.is_ok());
    CHECK(ok->parameters() == "{}");
}

TEST_CASE("a compiled rule set is reused across rows without re-parsing") {
    auto compiled = RuleSet::compile("bucket_definitions:\n  g:\n    data:\n      - SELECT id, n + 1 AS m FROM t\n", "r.yaml");
    REQUIRE(compiled.rules);
    RowEvaluation ev;
    for (int i = 0; i < 1000; ++i) {
        compiled.rules->evaluate_row({"public", "t"}, Row{{"id", Value::integer(i)}, {"n", Value::integer(i)}}, ev);
    }
    REQUIRE(ev.rows.size() == 1000);
    CHECK(ev.rows[999].data == R"({"id":999,"m":1000})");
}

TEST_CASE("value formatting follows JavaScript") {
    CHECK(format_real(3.0) == "3");
    CHECK(format_real(-0.0) == "0");
    CHECK(format_real(123456789012345680000.0) == "123456789012345680000");
    CHECK(format_real(1.5e-7) == "1.5e-7");
    CHECK(format_real(2.5e25) == "2.5e+25");
    CHECK(format_real(0.000123) == "0.000123");
}

TEST_CASE("the example rules file compiles without warnings and its write rules work") {
    auto compiled = RuleSet::compile(example_rules(), "deploy/sync-rules.example.yaml");
    for (const auto& d : compiled.diagnostics) {
        INFO(d.to_string());
    }
    REQUIRE(compiled.diagnostics.empty());
    REQUIRE(compiled.rules);
    const auto& writes = compiled.rules->write_rules();
    auto me = Request::from_json(R"({"sub":"u1"})", "").value();
    Row mine{{"id", Value::text("t1")}, {"list_id", Value::text("l1")}, {"created_by", Value::text("u1")},
             {"description", Value::text("x")}, {"completed", Value::integer(0)}};
    Row theirs{{"id", Value::text("t2")}, {"list_id", Value::text("l1")}, {"created_by", Value::text("u2")}};
    CHECK(writes.check({"public", "todos"}, {WriteOp::kInsert, nullptr, &mine, {}}, me).allowed);
    CHECK_FALSE(writes.check({"public", "todos"}, {WriteOp::kInsert, nullptr, &theirs, {}}, me).allowed);
    const std::vector<std::string> patch{"completed"};
    CHECK(writes.check({"public", "todos"}, {WriteOp::kUpdate, &mine, &mine, patch}, me).allowed);
    const std::vector<std::string> bad_patch{"created_by"};
    const auto denied = writes.check({"public", "todos"}, {WriteOp::kUpdate, &mine, &mine, bad_patch}, me);
    CHECK_FALSE(denied.allowed);
    CHECK(denied.reason.find("created_by") != std::string::npos);
    CHECK_FALSE(writes.check({"public", "secrets"}, {WriteOp::kDelete, &mine, nullptr, {}}, me).allowed);
}

TEST_CASE("check_sync_rules returns the compiler's diagnostics") {
    const auto diagnostics =
        sluice::config::check_sync_rules("bucket_definitions:\n  b:\n    data: [SELECT * FROM t WHERE a LIKE b]\n",
                                         "r.yaml");
    REQUIRE(diagnostics.size() == 1);
    CHECK(diagnostics[0].to_string() ==
          "r.yaml:3:36: error: bucket_definitions.b.data[0]: LIKE is not supported by the sync-rules dialect; "
          "expected =, !=, <, >, <=, >=, IS [NOT] NULL or IN [SL2005]");
}
