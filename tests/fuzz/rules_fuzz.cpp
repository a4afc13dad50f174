// Fuzz target for the sync-rules compiler (both dialects: bucket_definitions and Sync Streams):
// YAML + SQL text in, diagnostics or a rule set out; any rule set is then exercised on a small row
// (which also feeds the lookups) and a request subscribing to every stream, twice. Must never crash,
// hang or leak.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/rules/memory_lookup.h"
#include "config/rules/rule_set.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace sluice::config::rules;
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const auto compiled = RuleSet::compile(text, "fuzz.yaml");
    if (!compiled.rules) {
        return 0;
    }
    const Row row{{"id", Value::text("r1")}, {"owner_id", Value::text("u1")}, {"n", Value::integer(2)},
                  {"tags", Value::text(R"(["a","b"])")}};
    MemoryLookup lookups;
    for (const auto& table : compiled.rules->source_tables()) {
        RowEvaluation ev;
        compiled.rules->evaluate_row(table, row, ev);
        ParameterEvaluation pe;
        compiled.rules->evaluate_parameter_row(table, row, pe);
        lookups.add(pe.entries);
    }
    auto request = Request::from_json(R"({"sub":"u1","ids":["a",1],"org":"o1"})", R"({"p":"x"})");
    std::vector<StreamSubscription> subscriptions;
    for (const auto& stream : compiled.rules->streams()) {
        subscriptions.push_back({stream.name, R"({"id":"r1","ids":["r1",2],"p":"u1"})", 1});
        subscriptions.push_back({stream.name, "{}", std::nullopt});
    }
    subscriptions.push_back({"no_such_stream", "[]", 9});
    request->set_streams(true, std::move(subscriptions));
    (void)compiled.rules->resolve_buckets(request.value(), lookups);
    return 0;
}
