// The Sync Streams side of the rules API beyond the data-driven cases: lookup rounds and their keys,
// incremental lookups (a changed subquery row changes exactly the affected buckets), subscriptions
// only narrowing what auth allows (a randomized property), introspection and limits.
#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "config/rules/memory_lookup.h"
#include "config/rules/rule_set.h"
#include "config/rules/value.h"

using namespace sluice::config::rules;

namespace {

// Answers from a MemoryLookup and records each call's keys.
class RecordingLookup final : public LookupSource {
public:
    explicit RecordingLookup(MemoryLookup& inner) : m_inner(inner) {}
    std::vector<std::vector<std::string>> lookup(std::span<const std::string> keys) override {
        calls.emplace_back(keys.begin(), keys.end());
        return m_inner.lookup(keys);
    }
    std::vector<std::vector<std::string>> calls;

private:
    MemoryLookup& m_inner;
};

std::shared_ptr<const RuleSet> compile(const std::string& yaml) {
    auto compiled = RuleSet::compile(yaml, "r.yaml");
    for (const auto& d : compiled.diagnostics) {
        INFO(d.to_string());
    }
    REQUIRE(compiled.diagnostics.empty());
    REQUIRE(compiled.rules);
    return compiled.rules;
}

Request request_for(const std::string& claims, std::vector<StreamSubscription> subscriptions,
                    bool include_defaults = true) {
    auto request = Request::from_json(claims, "{}");
    REQUIRE(request.is_ok());
    request->set_streams(include_defaults, std::move(subscriptions));
    return std::move(request).value();
}

std::vector<std::string> ids(const Resolution& res) {
    std::vector<std::string> out;
    for (const auto& b : res.buckets) {
        out.push_back(b.id);
    }
    return out;
}

// Feeds one source row to the lookups the way storage does: its entries replace the row's old ones.
void put_row(const RuleSet& rules, MemoryLookup& lookups, const std::string& table, const std::string& key,
             const Row& row) {
    ParameterEvaluation pe;
    rules.evaluate_parameter_row({"public", table}, row, pe);
    REQUIRE(pe.errors.empty());
    lookups.set_row(table + "/" + key, pe.entries);
}

const char* kProjects = R"(config:
  edition: 3
with:
  my_orgs: SELECT org_id FROM org_members WHERE user_id = auth.user_id()
  my_projects: SELECT project_id FROM project_members WHERE user_id = auth.user_id()
bucket_definitions:
  by_user:
    parameters: SELECT list_id FROM shares WHERE user_id = request.user_id()
    data: [SELECT * FROM lists WHERE id = bucket.list_id]
streams:
  project_tasks:
    query: SELECT * FROM tasks WHERE project_id = subscription.parameter('project') AND project_id IN my_projects
  org_docs:
    auto_subscribe: true
    query: SELECT * FROM docs WHERE team_id IN (SELECT id FROM teams WHERE org_id IN my_orgs)
)";

}  // namespace

TEST_CASE("streams: one lookup call per subquery level, the first shared with bucket_definitions") {
    const auto rules = compile(kProjects);
    MemoryLookup memory;
    put_row(*rules, memory, "org_members", "1", {{"id", Value::integer(1)}, {"org_id", Value::text("o1")},
                                                 {"user_id", Value::text("u1")}});
    put_row(*rules, memory, "teams", "t1", {{"id", Value::text("t1")}, {"org_id", Value::text("o1")}});
    put_row(*rules, memory, "project_members", "1",
            {{"id", Value::integer(1)}, {"project_id", Value::text("p1")}, {"user_id", Value::text("u1")}});
    RecordingLookup lookup(memory);
    const auto request = request_for(R"({"sub":"u1"})", {{"project_tasks", R"({"project":"p1"})", std::nullopt}});
    auto res = rules->resolve_buckets(request, lookup);
    REQUIRE(res.is_ok());
    REQUIRE(lookup.calls.size() == 2);
    CHECK(res->lookup_rounds == 2);
    CHECK(lookup.calls[0] == std::vector<std::string>{R"(by_user/0/0["u1"])", R"(my_orgs/0["u1"])",
                                                      R"(my_projects/0["u1"])"});
    CHECK(lookup.calls[1] == std::vector<std::string>{R"(org_docs.0/0["o1"])"});
    CHECK(ids(*res) == std::vector<std::string>{R"(org_docs|0["t1"])", R"(project_tasks|0["p1"])"});
    REQUIRE(res->streams.size() == 3);
    CHECK(res->streams[0].name == "by_user");
    CHECK(res->streams[1].name == "project_tasks");
    CHECK_FALSE(res->streams[1].is_default);
    CHECK(res->streams[2].name == "org_docs");
    CHECK(res->streams[2].is_default);
    CHECK(res->buckets[0].sources == std::vector<BucketSource>{{BucketSource::Kind::kDefault, 2}});
    CHECK(res->buckets[1].sources == std::vector<BucketSource>{{BucketSource::Kind::kSubscription, 0}});
    CHECK(res->buckets[1].stream == "project_tasks");
    CHECK(res->buckets[1].definition == "project_tasks|0");

    // Without streams the bucket_definitions still take one call, as before.
    RecordingLookup plain(memory);
    const auto no_streams = request_for(R"({"sub":"u1"})", {}, false);
    auto res2 = rules->resolve_buckets(no_streams, plain);
    REQUIRE(res2.is_ok());
    CHECK(plain.calls.size() == 1);
    CHECK(ids(*res2).empty());
}

TEST_CASE("streams: a change to a subquery row changes exactly the affected buckets") {
    const auto rules = compile(kProjects);
    MemoryLookup memory;
    auto member = [&](const std::string& key, const std::string& project, const std::string& user) {
        put_row(*rules, memory, "project_members", key,
                {{"id", Value::text(key)}, {"project_id", Value::text(project)}, {"user_id", Value::text(user)}});
    };
    member("m1", "p1", "u1");
    member("m2", "p2", "u1");
    member("m3", "p1", "u2");
    const std::vector<StreamSubscription> both{{"project_tasks", R"({"project":"p1"})", std::nullopt},
                                               {"project_tasks", R"({"project":"p2"})", std::nullopt}};
    auto buckets = [&](const std::string& user) {
        auto res = rules->resolve_buckets(request_for(fmt::format(R"({{"sub":"{}"}})", user), both, false), memory);
        REQUIRE(res.is_ok());
        return ids(*res);
    };
    CHECK(buckets("u1") == std::vector<std::string>{R"(project_tasks|0["p1"])", R"(project_tasks|0["p2"])"});
    CHECK(buckets("u2") == std::vector<std::string>{R"(project_tasks|0["p1"])"});
    // Rows of tasks go to their project's bucket whoever is a member: membership is not in the data.
    RowEvaluation ev;
    rules->evaluate_row({"public", "tasks"}, {{"id", Value::text("t1")}, {"project_id", Value::text("p1")}}, ev);
    REQUIRE(ev.rows.size() == 1);
    CHECK(ev.rows[0].bucket == R"(project_tasks|0["p1"])");

    // u1 moves from p1 to p3 (the row m1 changes): only u1's p1 bucket goes.
    member("m1", "p3", "u1");
    CHECK(buckets("u1") == std::vector<std::string>{R"(project_tasks|0["p2"])"});
    CHECK(buckets("u2") == std::vector<std::string>{R"(project_tasks|0["p1"])"});
    // m2 is deleted: u1 loses p2 too; u2 is untouched.
    memory.set_row("project_members/m2", {});
    CHECK(buckets("u1").empty());
    CHECK(buckets("u2") == std::vector<std::string>{R"(project_tasks|0["p1"])"});
}

TEST_CASE("streams: a subscription only narrows what auth allows (randomized)") {
    const auto rules = compile(kProjects);
    std::mt19937 rng(20261127);
    const std::vector<std::string> users{"u0", "u1", "u2", "u3", "u4"};
    const std::vector<std::string> projects{"p0", "p1", "p2", "p3", "p4", "p5"};
    for (int round = 0; round < 40; ++round) {
        MemoryLookup memory;
        std::set<std::pair<std::string, std::string>> members;
        for (const auto& u : users) {
            for (const auto& p : projects) {
                if (rng() % 3 == 0) {
                    members.emplace(u, p);
                    put_row(*rules, memory, "project_members", u + p,
                            {{"id", Value::text(u + p)}, {"project_id", Value::text(p)}, {"user_id", Value::text(u)}});
                }
            }
        }
        for (const auto& u : users) {
            std::vector<StreamSubscription> subs;
            std::vector<std::string> asked;
            const int n = static_cast<int>(rng() % 6);
            for (int i = 0; i < n; ++i) {
                switch (rng() % 4) {
                    case 0: subs.push_back({"project_tasks", "{}", std::nullopt}); asked.emplace_back(); break;
                    case 1: subs.push_back({"project_tasks", R"({"project":["p1","p2"]})", std::nullopt});
                            asked.emplace_back();
                            break;
                    default: {
                        const std::string p = projects[rng() % projects.size()];
                        subs.push_back({"project_tasks", fmt::format(R"({{"project":"{}"}})", p), std::nullopt});
                        asked.push_back(p);
                    }
                }
            }
            auto res = rules->resolve_buckets(request_for(fmt::format(R"({{"sub":"{}"}})", u), subs, false), memory);
            REQUIRE(res.is_ok());
            std::set<std::string> expected;
            for (const auto& p : asked) {
                if (!p.empty() && members.contains({u, p})) {
                    expected.insert(fmt::format(R"(project_tasks|0["{}"])", p));
                }
            }
            const auto got = ids(*res);
            INFO("user " << u << " round " << round);
            CHECK(std::set<std::string>(got.begin(), got.end()) == expected);
            for (const auto& b : res->buckets) {
                for (const auto& s : b.sources) {
                    REQUIRE(s.kind == BucketSource::Kind::kSubscription);
                    CHECK(b.id == fmt::format(R"(project_tasks|0["{}"])", asked[s.index]));
                }
            }
        }
    }
}

TEST_CASE("streams: introspection, prefixes and the request API") {
    const auto rules = compile(kProjects);
    CHECK(rules->definitions() == std::vector<std::string>{"by_user"});
    const auto streams = rules->streams();
    REQUIRE(streams.size() == 2);
    CHECK(streams[0].name == "project_tasks");
    CHECK_FALSE(streams[0].auto_subscribe);
    CHECK(streams[0].definitions == std::vector<std::string>{"project_tasks|0"});
    CHECK(streams[1].auto_subscribe);
    std::vector<std::string> tables;
    for (const auto& t : rules->parameter_tables()) {
        tables.push_back(t.to_string());
    }
    CHECK(tables == std::vector<std::string>{"public.shares", "public.project_members", "public.org_members",
                                             "public.teams"});
    const auto queries = rules->data_queries();
    REQUIRE(queries.size() == 3);
    CHECK(queries[1].definition == "project_tasks|0");
    CHECK(queries[1].source.to_string() == "public.tasks");

    auto prefixed = RuleSet::compile(kProjects, "r.yaml", CompileOptions{"2#"});
    REQUIRE(prefixed.rules);
    RowEvaluation ev;
    prefixed.rules->evaluate_row({"public", "tasks"}, {{"id", Value::text("t1")}, {"project_id", Value::integer(2)}},
                                 ev);
    REQUIRE(ev.rows.size() == 1);
    CHECK(ev.rows[0].bucket == "2#project_tasks|0[2]");
    MemoryLookup memory;
    put_row(*prefixed.rules, memory, "project_members", "m",
            {{"id", Value::text("m")}, {"project_id", Value::real(2.0)}, {"user_id", Value::text("u1")}});
    auto res = prefixed.rules->resolve_buckets(
        request_for(R"({"sub":"u1"})", {{"project_tasks", R"({"project":2})", 0}}, false), memory);
    REQUIRE(res.is_ok());
    REQUIRE(res->buckets.size() == 1);
    CHECK(res->buckets[0].id == "2#project_tasks|0[2]");
    CHECK(res->buckets[0].priority == 0);

    auto request = Request::from_json(R"({"sub":"u1","org":{"id":7},"n":2})", "{}");
    REQUIRE(request.is_ok());
    CHECK(request->claim("n") == Value::integer(2));
    CHECK(request->claim("org").bytes() == R"({"id":7})");
    CHECK(request->claim("missing").is_null());
    request->set_streams(false, {{"s", "[1]", std::nullopt}, {"s", "", std::nullopt}, {"s", R"({"a":1})", 1}});
    CHECK_FALSE(request->include_defaults());
    CHECK(request->subscription_parameters(0) == nullptr);
    CHECK(request->subscription_error(0) == "subscription parameters: expected a JSON object");
    REQUIRE(request->subscription_parameters(1) != nullptr);
    CHECK(request->subscription_parameters(1)->json() == "{}");
    CHECK(request->subscription_parameters(2)->parameter("a") == Value::integer(1));
}

TEST_CASE("streams: many streams with inline subqueries keep their own lookups") {
    std::string yaml = "config:\n  edition: 3\nstreams:\n";
    std::vector<std::string> expected;
    for (int i = 0; i < 40; ++i) {
        yaml += fmt::format("  s{}:\n    query: SELECT * FROM t{} WHERE p IN (SELECT p FROM m{} WHERE u = auth.user_id())\n",
                            i, i, i);
        expected.push_back(fmt::format("public.m{}", i));
    }
    const auto rules = compile(yaml);
    std::vector<std::string> tables;
    for (const auto& t : rules->parameter_tables()) {
        tables.push_back(t.to_string());
    }
    CHECK(tables == expected);
    for (int i = 0; i < 40; ++i) {
        ParameterEvaluation pe;
        rules->evaluate_parameter_row({"public", fmt::format("m{}", i)},
                                      {{"p", Value::text("x")}, {"u", Value::text("u1")}}, pe);
        REQUIRE(pe.entries.size() == 1);
        CHECK(pe.entries[0].key == fmt::format(R"(s{}.0/0["u1"])", i));
    }
}

TEST_CASE("streams: limits fail the whole request with their codes") {
    const auto rules = compile(R"(config:
  edition: 3
streams:
  tagged:
    query: SELECT * FROM t WHERE tag IN subscription.parameter('tags') AND owner = auth.user_id()
  shared:
    query: SELECT * FROM t WHERE id IN (SELECT doc_id FROM shares WHERE user_id = auth.user_id())
)");
    MemoryLookup memory;
    for (int i = 0; i < 5; ++i) {
        put_row(*rules, memory, "shares", std::to_string(i),
                {{"id", Value::integer(i)}, {"doc_id", Value::integer(i)}, {"user_id", Value::text("u1")}});
    }
    ResolveOptions limits;
    limits.max_buckets = 3;
    limits.max_parameter_results = 4;
    auto too_many = rules->resolve_buckets(
        request_for(R"({"sub":"u1"})", {{"tagged", R"({"tags":["a","b","c","d"]})", std::nullopt}}), memory, limits);
    REQUIRE_FALSE(too_many.is_ok());
    CHECK(too_many.status().code() == sluice::protocol::ErrorCode::kRulesTooManyBuckets);
    auto too_many_results =
        rules->resolve_buckets(request_for(R"({"sub":"u1"})", {{"shared", "{}", std::nullopt}}), memory, limits);
    REQUIRE_FALSE(too_many_results.is_ok());
    CHECK(too_many_results.status().code() == sluice::protocol::ErrorCode::kRulesTooManyParameterResults);
    limits.max_parameter_results = 5;
    limits.max_buckets = 5;
    auto fits = rules->resolve_buckets(request_for(R"({"sub":"u1"})", {{"shared", "{}", std::nullopt}}), memory, limits);
    REQUIRE(fits.is_ok());
    CHECK(fits->buckets.size() == 5);
}
