// Sync-rules benchmark: 50 bucket definitions over 20 tables. Measures row evaluations per second on
// one core (simple equality rules; target >= 1M/s) and bucket-set resolutions per request, plus
// instructions per row evaluation, which stay comparable when the machine is busy.
// Run: build/bench/rules_bench [seconds per measurement, default 1]
//      build/bench/rules_bench --rows N   evaluates exactly N rows and nothing else timed; under
//      callgrind (bench/rules_bench_callgrind.sh) only that loop is counted, giving instructions/row.
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#else
#define CALLGRIND_START_INSTRUMENTATION
#define CALLGRIND_STOP_INSTRUMENTATION
#endif

#include <fmt/format.h>

#include "config/rules/memory_lookup.h"
#include "config/rules/rule_set.h"

using namespace sluice::config::rules;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kTables = 20;
constexpr int kDefinitions = 50;
constexpr int kLookupDefinitions = 10;  // of the 50, these resolve through a parameter table

std::string rules_text() {
    std::string y = "bucket_definitions:\n";
    for (int d = 0; d < kDefinitions; ++d) {
        const int table = d % kTables;
        y += fmt::format("  def{}:\n", d);
        if (d < kLookupDefinitions) {
            y += fmt::format("    parameters: SELECT group_id AS owner FROM members{} WHERE members{}.user_id = "
                             "request.user_id()\n",
                             d, d);
        } else {
            y += "    parameters: SELECT request.user_id() AS owner\n";
        }
        y += fmt::format("    data:\n      - SELECT * FROM t{} WHERE t{}.owner_id = bucket.owner\n", table, table);
    }
    return y;
}

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// User-space instructions retired by this thread, from the hardware counter; absent where the
// kernel or the VM offers none (then use bench/rules_bench_callgrind.sh).
class InstructionCounter {
public:
    InstructionCounter() {
        perf_event_attr attr{};
        attr.type = PERF_TYPE_HARDWARE;
        attr.size = sizeof attr;
        attr.config = PERF_COUNT_HW_INSTRUCTIONS;
        attr.exclude_kernel = 1;
        attr.exclude_hv = 1;
        m_fd = static_cast<int>(syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0));
    }
    ~InstructionCounter() {
        if (m_fd >= 0) {
            close(m_fd);
        }
    }
    InstructionCounter(const InstructionCounter&) = delete;
    InstructionCounter& operator=(const InstructionCounter&) = delete;

    [[nodiscard]] std::optional<std::uint64_t> read_count() const {
        std::uint64_t count = 0;
        if (m_fd < 0 || read(m_fd, &count, sizeof count) != static_cast<ssize_t>(sizeof count)) {
            return std::nullopt;
        }
        return count;
    }

private:
    int m_fd = -1;
};

}  // namespace

int main(int argc, char** argv) {
    double budget = 1.0;
    std::size_t fixed_rows = 0;  // --rows N: evaluate exactly N rows, print nothing timed
    for (int i = 1; i < argc; ++i) {
        if (std::string_view(argv[i]) == "--rows" && i + 1 < argc) {
            fixed_rows = static_cast<std::size_t>(std::atoll(argv[++i]));
        } else {
            budget = std::atof(argv[i]);
        }
    }
    const auto compiled = RuleSet::compile(rules_text(), "bench.yaml");
    if (!compiled.rules) {
        for (const auto& d : compiled.diagnostics) {
            std::fprintf(stderr, "%s\n", d.to_string().c_str());
        }
        return 1;
    }
    const RuleSet& rules = *compiled.rules;

    // Rows: 1000 per table, 5 columns, owners spread over 100 users.
    std::vector<std::pair<TableName, Row>> rows;
    for (int i = 0; i < kTables * 1000; ++i) {
        const int t = i % kTables;
        rows.emplace_back(TableName{"public", fmt::format("t{}", t)},
                          Row{{"id", Value::text(fmt::format("{:08x}-0000-4000-8000-{:012x}", i, i))},
                              {"owner_id", Value::text(fmt::format("user-{}", i % 100))},
                              {"title", Value::text("a todo item")},
                              {"n", Value::integer(i)},
                              {"done", Value::integer(i % 2)}});
    }
    RowEvaluation ev;
    std::size_t evaluated = 0;
    std::size_t bucket_rows = 0;
    if (fixed_rows > 0) {
        CALLGRIND_START_INSTRUMENTATION;
        for (; evaluated < fixed_rows; ++evaluated) {
            const auto& [table, row] = rows[evaluated % rows.size()];
            ev.clear();
            rules.evaluate_row(table, row, ev);
            bucket_rows += ev.rows.size();
        }
        CALLGRIND_STOP_INSTRUMENTATION;
        fmt::print("evaluated {} rows, {} bucket rows\n", evaluated, bucket_rows);
        return 0;
    }
    const InstructionCounter counter;
    const auto instructions_before = counter.read_count();
    const auto start = Clock::now();
    double elapsed = 0;
    while (elapsed < budget) {
        for (int k = 0; k < 10000; ++k) {
            const auto& [table, row] = rows[evaluated % rows.size()];
            ev.clear();  // keeps the output rows' buffers for the next row
            rules.evaluate_row(table, row, ev);
            bucket_rows += ev.rows.size();
            ++evaluated;
        }
        elapsed = seconds_since(start);
    }
    const auto instructions_after = counter.read_count();
    const double row_rate = static_cast<double>(evaluated) / elapsed;

    // Requests: each user is in 3 groups of each lookup definition.
    MemoryLookup lookups;
    for (int d = 0; d < kLookupDefinitions; ++d) {
        for (int u = 0; u < 100; ++u) {
            for (int g = 0; g < 3; ++g) {
                ParameterEvaluation pe;
                rules.evaluate_parameter_row(
                    {"public", fmt::format("members{}", d)},
                    Row{{"id", Value::integer(u * 10 + g)}, {"user_id", Value::text(fmt::format("user-{}", u))},
                        {"group_id", Value::text(fmt::format("group-{}", (u + g) % 50))}},
                    pe);
                lookups.add(pe.entries);
            }
        }
    }
    std::vector<Request> requests;
    for (int u = 0; u < 100; ++u) {
        requests.push_back(Request::from_json(fmt::format(R"({{"sub":"user-{}","aud":"x"}})", u), "{}").value());
    }
    std::size_t resolved = 0;
    std::size_t buckets = 0;
    const auto start2 = Clock::now();
    elapsed = 0;
    while (elapsed < budget) {
        for (int k = 0; k < 200; ++k) {
            auto res = rules.resolve_buckets(requests[resolved % requests.size()], lookups);
            buckets += res->buckets.size();
            ++resolved;
        }
        elapsed = seconds_since(start2);
    }
    const double resolve_rate = static_cast<double>(resolved) / elapsed;

    fmt::print("sync-rules benchmark: {} bucket definitions over {} tables, one core\n", kDefinitions, kTables);
    fmt::print("  row evaluations:        {:>12.0f} rows/s   (target >= 1,000,000 rows/s: {})  {:.1f} bucket rows per row\n",
               row_rate, row_rate >= 1e6 ? "met" : "NOT met",
               static_cast<double>(bucket_rows) / static_cast<double>(evaluated));
    if (instructions_before && instructions_after) {
        fmt::print("  instructions per row:   {:>12.0f}         (hardware counter, this run)\n",
                   static_cast<double>(*instructions_after - *instructions_before) / static_cast<double>(evaluated));
    } else {
        fmt::print("  instructions per row:   no hardware counter here; bench/rules_bench_callgrind.sh counts them\n");
    }
    fmt::print("  bucket-set resolutions: {:>12.0f} requests/s  ({:.1f} us each, {:.0f} buckets per request, "
               "{} lookup definitions)\n",
               resolve_rate, 1e6 / resolve_rate, static_cast<double>(buckets) / static_cast<double>(resolved),
               kLookupDefinitions);
    return 0;
}
