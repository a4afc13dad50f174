// Sync Streams benchmark: the same data under 20 stream definitions using subqueries and under the
// equivalent 20 bucket_definitions (older dialect). Measures, on one core, what the router does per
// replicated row (evaluate_row + evaluate_parameter_row: rows/s, bucket rows and lookup entries per
// row) and what a sync session does per checkpoint (resolve_buckets: requests/s, buckets, lookup
// rounds). Streams: each of the 100 users subscribes to one project per stream (20 subscriptions);
// the older dialect gives each user every project bucket of every definition.
// Wall-clock figures: the best of 3 runs per rule set, interleaved, so that other work on the machine
// weighs on both alike.
// Run: build/bench/streams_bench [seconds per measurement, default 0.5]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "config/rules/memory_lookup.h"
#include "config/rules/rule_set.h"

using namespace sluice::config::rules;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kStreams = 20;
constexpr int kMemberTables = 5;
constexpr int kUsers = 100;
constexpr int kProjectsPerUser = 10;  // per member table
constexpr int kProjects = 200;

std::string streams_rules() {
    std::string y = "config:\n  edition: 3\nstreams:\n";
    for (int i = 0; i < kStreams; ++i) {
        y += fmt::format(
            "  s{}:\n    query: SELECT * FROM t{} WHERE project_id = subscription.parameter('project') AND project_id "
            "IN (SELECT project_id FROM members{} WHERE user_id = auth.user_id())\n",
            i, i, i % kMemberTables);
    }
    return y;
}

std::string bucket_definitions_rules() {
    std::string y = "bucket_definitions:\n";
    for (int i = 0; i < kStreams; ++i) {
        y += fmt::format(
            "  b{}:\n    parameters: SELECT project_id FROM members{} WHERE user_id = request.user_id()\n    data:\n"
            "      - SELECT * FROM t{} WHERE project_id = bucket.project_id\n",
            i, i % kMemberTables, i);
    }
    return y;
}

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

std::string project(int p) { return fmt::format("project-{}", p); }
std::string user(int u) { return fmt::format("user-{}", u); }
// The k-th project of user u in member table m.
int project_of(int u, int m, int k) { return (u * 7 + m * 13 + k * 17) % kProjects; }

struct Figures {
    double row_rate = 0;
    double bucket_rows_per_row = 0;
    double entries_per_member_row = 0;
    double resolve_rate = 0;
    double buckets_per_request = 0;
    double rounds_per_request = 0;
};

Figures measure(const RuleSet& rules, bool streams, double budget) {
    Figures f;
    // Replicated rows: 1000 per data table, 1000 per member table (the lookups).
    std::vector<std::pair<TableName, Row>> rows;
    for (int i = 0; i < kStreams * 1000; ++i) {
        rows.emplace_back(TableName{"public", fmt::format("t{}", i % kStreams)},
                          Row{{"id", Value::text(fmt::format("{:08x}-0000-4000-8000-{:012x}", i, i))},
                              {"project_id", Value::text(project(i % kProjects))},
                              {"title", Value::text("a task")},
                              {"n", Value::integer(i)}});
    }
    for (int m = 0; m < kMemberTables; ++m) {
        for (int u = 0; u < kUsers; ++u) {
            for (int k = 0; k < kProjectsPerUser; ++k) {
                rows.emplace_back(TableName{"public", fmt::format("members{}", m)},
                                  Row{{"id", Value::integer(u * 100 + k)},
                                      {"user_id", Value::text(user(u))},
                                      {"project_id", Value::text(project(project_of(u, m, k)))}});
            }
        }
    }
    RowEvaluation ev;
    ParameterEvaluation pe;
    std::size_t evaluated = 0;
    std::size_t bucket_rows = 0;
    std::size_t entries = 0;
    std::size_t member_rows = 0;
    const auto start = Clock::now();
    double elapsed = 0;
    while (elapsed < budget) {
        for (int k = 0; k < 5000; ++k) {
            const auto& [table, row] = rows[evaluated % rows.size()];
            ev.clear();
            pe.entries.clear();
            rules.evaluate_row(table, row, ev);
            rules.evaluate_parameter_row(table, row, pe);
            bucket_rows += ev.rows.size();
            entries += pe.entries.size();
            member_rows += table.name[0] == 'm' ? 1 : 0;
            ++evaluated;
        }
        elapsed = seconds_since(start);
    }
    f.row_rate = static_cast<double>(evaluated) / elapsed;
    f.bucket_rows_per_row = static_cast<double>(bucket_rows) / static_cast<double>(evaluated - member_rows);
    f.entries_per_member_row = static_cast<double>(entries) / static_cast<double>(member_rows);

    // The lookup index, and one request per user.
    MemoryLookup lookups;
    for (const auto& [table, row] : rows) {
        ParameterEvaluation p;
        rules.evaluate_parameter_row(table, row, p);
        lookups.add(p.entries);
    }
    std::vector<Request> requests;
    for (int u = 0; u < kUsers; ++u) {
        auto r = Request::from_json(fmt::format(R"({{"sub":"{}","aud":"x"}})", user(u)), "{}").value();
        if (streams) {
            std::vector<StreamSubscription> subs;
            for (int i = 0; i < kStreams; ++i) {
                // Every other subscription names a project of the user; the rest one it may not read.
                const int p = i % 2 == 0 ? project_of(u, i % kMemberTables, i % kProjectsPerUser) : (u + i) % kProjects;
                subs.push_back({fmt::format("s{}", i), fmt::format(R"({{"project":"{}"}})", project(p)), std::nullopt});
            }
            r.set_streams(true, std::move(subs));
        }
        requests.push_back(std::move(r));
    }
    std::size_t resolved = 0;
    std::size_t buckets = 0;
    std::size_t rounds = 0;
    const auto start2 = Clock::now();
    elapsed = 0;
    while (elapsed < budget) {
        for (int k = 0; k < 100; ++k) {
            auto res = rules.resolve_buckets(requests[resolved % requests.size()], lookups);
            if (!res) {
                std::fprintf(stderr, "resolve failed: %s\n", res.status().to_string().c_str());
                std::exit(1);
            }
            buckets += res->buckets.size();
            rounds += static_cast<std::size_t>(res->lookup_rounds);
            ++resolved;
        }
        elapsed = seconds_since(start2);
    }
    f.resolve_rate = static_cast<double>(resolved) / elapsed;
    f.buckets_per_request = static_cast<double>(buckets) / static_cast<double>(resolved);
    f.rounds_per_request = static_cast<double>(rounds) / static_cast<double>(resolved);
    return f;
}

std::shared_ptr<const RuleSet> compile_or_exit(const std::string& text) {
    auto compiled = RuleSet::compile(text, "bench.yaml");
    if (!compiled.rules) {
        for (const auto& d : compiled.diagnostics) {
            std::fprintf(stderr, "%s\n", d.to_string().c_str());
        }
        std::exit(1);
    }
    return compiled.rules;
}

void print(const char* name, const Figures& f) {
    fmt::print("  {:<22} {:>10.0f} rows/s  {:>4.2f} bucket rows/data row  {:>4.2f} lookup entries/member row\n", name,
               f.row_rate, f.bucket_rows_per_row, f.entries_per_member_row);
    fmt::print("  {:<22} {:>10.0f} requests/s ({:.1f} us each)  {:.1f} buckets/request  {:.1f} lookup rounds\n", "",
               f.resolve_rate, 1e6 / f.resolve_rate, f.buckets_per_request, f.rounds_per_request);
}

}  // namespace

int main(int argc, char** argv) {
    const double budget = argc > 1 ? std::atof(argv[1]) : 0.5;
    const auto streams = compile_or_exit(streams_rules());
    const auto definitions = compile_or_exit(bucket_definitions_rules());
    Figures s;
    Figures b;
    auto best = [](Figures& into, const Figures& f) {
        if (f.row_rate > into.row_rate) {
            const double resolve = into.resolve_rate;
            into = f;
            into.resolve_rate = std::max(resolve, f.resolve_rate);
        } else {
            into.resolve_rate = std::max(into.resolve_rate, f.resolve_rate);
        }
    };
    for (int run = 0; run < 3; ++run) {
        best(s, measure(*streams, true, budget));
        best(b, measure(*definitions, false, budget));
    }
    fmt::print("sync streams benchmark: {} definitions over {} data tables and {} member tables, {} users, one core\n",
               kStreams, kStreams, kMemberTables, kUsers);
    fmt::print("  (router: evaluate_row + evaluate_parameter_row per replicated row; session: resolve_buckets)\n");
    print("streams (subqueries)", s);
    print("bucket_definitions", b);
    fmt::print("  streams / bucket_definitions: row evaluation {:.2f}x, resolution {:.2f}x\n", s.row_rate / b.row_rate,
               s.resolve_rate / b.resolve_rate);
    return 0;
}
