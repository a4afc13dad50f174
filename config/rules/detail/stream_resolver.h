// Resolution of a request's Sync Streams subscriptions to bucket ids (see rule_set.h (3)), round by
// round: each round gathers the lookup keys of the subqueries whose inputs are known, the caller
// fetches them in one LookupSource call, and take() stores the values. Internal.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "config/rules/detail/compiled.h"
#include "protocol/status.h"

namespace sluice::config::rules::detail {

class StreamResolve {
public:
    StreamResolve(const Compiled& rules, const Request& request, Resolution& out);

    // Fills out.streams for the streams the request reads and computes what needs no lookup.
    void start();
    // Number of lookup rounds needed (0 when no subquery reads a table).
    [[nodiscard]] int rounds() const { return m_rounds; }
    // Appends the keys of round r (1-based) to keys (which may already hold others).
    void keys(int round, std::vector<std::string>& keys);
    // The lookup results of the whole batch keys(round) appended to (found[i] for keys[i]). Counts
    // the results of its own keys in results; fails (SL2019) past max_results.
    [[nodiscard]] protocol::Status take(int round, std::span<const std::vector<std::string>> found,
                                        std::size_t& results, std::size_t max_results);
    // Appends the buckets of every subscription to out.buckets (unsorted, possibly repeated).
    // Fails (SL2018) when their number is out of all proportion to max_buckets.
    [[nodiscard]] protocol::Status finish(std::size_t max_buckets);

private:
    // One way the request reads a stream: its default subscription or one request subscription.
    struct Context {
        int stream = 0;
        std::optional<std::size_t> subscription;  // none: default
        const SubscriptionParameters* parameters = nullptr;
        std::size_t status = 0;       // index into out.streams
        std::optional<int> priority;  // override_priority
    };
    // The values of a subquery in a context (shared by every context when it reads no subscription.*).
    struct Set {
        int subquery = 0;
        std::size_t context = 0;  // the context that evaluates it (its errors go there)
        bool done = false;
        std::vector<std::string> values;  // JSON texts, sorted, unique
        std::vector<std::size_t> keys;  // this round: positions of its keys in the batch
    };

    std::size_t set_of(int subquery, std::size_t context);
    void need(const ValueSet& set, std::size_t context);
    // The values of set in context as JSON texts (sorted, unique); false with an error in ctx.
    bool values_of(const ValueSet& set, std::size_t context, EvalContext& ctx, std::vector<std::string>& out);
    bool members(const Membership& m, std::size_t context, EvalContext& ctx);
    void compute_request_set(Set& s);
    void error(std::size_t context, const std::string& where, const std::string& message);

    const Compiled& m_rules;
    const Request& m_request;
    Resolution& m_out;
    std::vector<Context> m_contexts;
    std::vector<Set> m_sets;
    std::map<std::pair<int, std::size_t>, std::size_t> m_set_index;  // (subquery, context or SIZE_MAX) -> set
    int m_rounds = 0;
};

}  // namespace sluice::config::rules::detail
