// Resolves Sync Streams subscriptions to bucket ids (see detail/stream_resolver.h). Values are
// handled as their JSON text (as in bucket ids and lookup keys), so 2 and 2.0 are one value and
// '2' and 2 are two, as SQL = without coercion.
#include "config/rules/detail/stream_resolver.h"

#include <algorithm>
#include <limits>

#include <fmt/format.h>

#include "config/rules/json.h"

namespace sluice::config::rules::detail {
namespace {

constexpr std::size_t kShared = std::numeric_limits<std::size_t>::max();

void sort_unique(std::vector<std::string>& v) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
}

// The JSON text of a value usable as a bucket parameter or lookup key; false (with error) for a blob.
bool json_of(const Value& v, std::string& out, std::string& error) {
    if (v.type() == ValueType::kBlob) {
        error = "a blob cannot be a bucket parameter; expected text or a number (use hex() or base64())";
        return false;
    }
    out.clear();
    append_json(out, v);
    return true;
}

bool all_true(const std::vector<CExpr>& conditions, EvalContext& ctx) {
    for (const auto& c : conditions) {
        if (!eval_condition(c, ctx) || !ctx.error.empty()) {
            return false;
        }
    }
    return true;
}

// Every combination of one value per slot, as "[a,b,...]" appended to prefix.
template <typename Fn>
void for_each_key(const std::string& prefix, const std::vector<std::vector<std::string>>& slots, Fn&& fn) {
    for (const auto& s : slots) {
        if (s.empty()) {
            return;
        }
    }
    std::vector<std::size_t> idx(slots.size(), 0);
    std::string key;
    for (;;) {
        key = prefix;
        key += '[';
        for (std::size_t i = 0; i < slots.size(); ++i) {
            if (i > 0) {
                key += ',';
            }
            key += slots[i][idx[i]];
        }
        key += ']';
        fn(key);
        std::size_t k = slots.size();
        for (;;) {
            if (k == 0) {
                return;
            }
            --k;
            if (++idx[k] < slots[k].size()) {
                break;
            }
            idx[k] = 0;
        }
    }
}

}  // namespace

StreamResolve::StreamResolve(const Compiled& rules, const Request& request, Resolution& out)
    : m_rules(rules), m_request(request), m_out(out) {}

void StreamResolve::error(std::size_t context, const std::string& where, const std::string& message) {
    const Context& c = m_contexts[context];
    auto& errors = m_out.streams[c.status].errors;
    StreamError e{c.subscription, where.empty() ? message : where + ": " + message};
    if (std::find(errors.begin(), errors.end(), e) == errors.end()) {
        errors.push_back(std::move(e));
    }
}

void StreamResolve::start() {
    const auto& streams = m_rules.streams;
    const auto& subs = m_request.subscriptions();
    // Which streams are read, and how.
    std::vector<bool> by_default(streams.size(), false);
    std::vector<bool> subscribed(streams.size(), false);
    std::vector<int> stream_of(subs.size(), -1);
    for (std::size_t s = 0; s < streams.size(); ++s) {
        by_default[s] = m_request.include_defaults() && streams[s].auto_subscribe;
    }
    for (std::size_t i = 0; i < subs.size(); ++i) {
        for (std::size_t s = 0; s < streams.size(); ++s) {
            if (streams[s].name == subs[i].stream) {
                stream_of[i] = static_cast<int>(s);
                subscribed[s] = true;
            }
        }
    }
    std::vector<std::size_t> status_of(streams.size(), 0);
    for (std::size_t s = 0; s < streams.size(); ++s) {
        if (by_default[s] || subscribed[s]) {
            status_of[s] = m_out.streams.size();
            m_out.streams.push_back({streams[s].name, by_default[s], {}});
        }
        if (by_default[s]) {
            m_contexts.push_back({static_cast<int>(s), std::nullopt, nullptr, status_of[s], std::nullopt});
        }
    }
    for (std::size_t i = 0; i < subs.size(); ++i) {
        if (stream_of[i] < 0) {
            auto it = std::find_if(m_out.streams.begin(), m_out.streams.end(),
                                   [&](const StreamStatus& st) { return st.name == subs[i].stream; });
            if (it == m_out.streams.end()) {
                m_out.streams.push_back({subs[i].stream, false, {}});
                it = m_out.streams.end() - 1;
            }
            it->errors.push_back({i, fmt::format("unknown stream '{}'; expected one of the streams of the sync rules",
                                                 subs[i].stream)});
            continue;
        }
        const std::size_t status = status_of[static_cast<std::size_t>(stream_of[i])];
        const SubscriptionParameters* params = m_request.subscription_parameters(i);
        if (params == nullptr) {
            m_out.streams[status].errors.push_back({i, m_request.subscription_error(i)});
            continue;
        }
        std::optional<int> priority = subs[i].override_priority;
        if (priority && (*priority < 0 || *priority > 3)) {
            m_out.streams[status].errors.push_back(
                {i, fmt::format("override_priority {} is not valid; expected 0, 1, 2 or 3 (the stream's priority "
                                "is used)",
                                *priority)});
            priority.reset();
        }
        m_contexts.push_back({stream_of[i], i, params, status, priority});
    }
    // The subquery values every context needs.
    for (std::size_t c = 0; c < m_contexts.size(); ++c) {
        const Stream& stream = streams[static_cast<std::size_t>(m_contexts[c].stream)];
        for (const auto& v : stream.variants) {
            for (const auto& r : v.resolvers) {
                for (const auto& m : r.memberships) {
                    need(m.set, c);
                }
                for (const auto& sets : r.params) {
                    for (const auto& set : sets) {
                        need(set, c);
                    }
                }
            }
        }
    }
    for (auto& s : m_sets) {
        const auto& q = m_rules.subqueries[static_cast<std::size_t>(s.subquery)];
        if (q.kind != SubqueryKind::kTable) {
            compute_request_set(s);
        } else {
            m_rounds = std::max(m_rounds, q.level);
        }
    }
}

std::size_t StreamResolve::set_of(int subquery, std::size_t context) {
    const auto& q = m_rules.subqueries[static_cast<std::size_t>(subquery)];
    const std::size_t key = q.per_subscription ? context : kShared;
    return m_set_index.at({subquery, key});
}

void StreamResolve::need(const ValueSet& set, std::size_t context) {
    if (set.kind != SetKind::kSubquery) {
        return;
    }
    const auto& q = m_rules.subqueries[static_cast<std::size_t>(set.subquery)];
    const std::size_t key = q.per_subscription ? context : kShared;
    if (m_set_index.contains({set.subquery, key})) {
        return;
    }
    m_set_index[{set.subquery, key}] = m_sets.size();
    m_sets.push_back({set.subquery, context, false, {}, {}});
    for (const auto& t : q.terms) {
        for (const auto& m : t.memberships) {
            need(m.set, context);
        }
        for (const auto& k : t.keys) {
            need(k.values, context);
        }
    }
}

bool StreamResolve::values_of(const ValueSet& set, std::size_t context, EvalContext& ctx,
                              std::vector<std::string>& out) {
    out.clear();
    switch (set.kind) {
        case SetKind::kSubquery: out = m_sets[set_of(set.subquery, context)].values; return true;
        case SetKind::kScalar: {
            const Value v = eval(set.expr, ctx);
            if (!ctx.error.empty()) {
                return false;
            }
            if (!v.is_null()) {
                std::string text;
                if (!json_of(v, text, ctx.error)) {
                    return false;
                }
                out.push_back(std::move(text));
            }
            return true;
        }
        case SetKind::kArray: {
            const Value v = eval(set.expr, ctx);
            if (!ctx.error.empty()) {
                return false;
            }
            if (v.is_null()) {
                return true;
            }
            std::string error;
            std::optional<std::vector<Value>> elements;
            if (v.type() == ValueType::kText) {
                elements = json_array_values(v.bytes(), &error);
            }
            if (!elements) {
                std::string shown = v.to_text().value_or("");
                if (shown.size() > 40) {
                    shown.resize(37);
                    shown += "...";
                }
                ctx.error = fmt::format("IN expects a JSON array, got {} '{}'", v.type_name(), shown);
                return false;
            }
            for (const auto& e : *elements) {
                if (e.is_null()) {
                    continue;
                }
                std::string text;
                if (!json_of(e, text, ctx.error)) {
                    return false;
                }
                out.push_back(std::move(text));
            }
            sort_unique(out);
            return true;
        }
    }
    return true;
}

bool StreamResolve::members(const Membership& m, std::size_t context, EvalContext& ctx) {
    const Value needle = eval(m.needle, ctx);
    if (!ctx.error.empty() || needle.is_null() || needle.type() == ValueType::kBlob) {
        return false;
    }
    std::string text;
    append_json(text, needle);
    std::vector<std::string> set;
    if (!values_of(m.set, context, ctx, set)) {
        return false;
    }
    return std::binary_search(set.begin(), set.end(), text);
}

void StreamResolve::compute_request_set(Set& s) {
    const auto& q = m_rules.subqueries[static_cast<std::size_t>(s.subquery)];
    EvalContext ctx;
    ctx.request = &m_request;
    ctx.subscription = m_contexts[s.context].parameters;
    auto add = [&]() {
        if (!q.terms.empty() && !all_true(q.terms[0].request_filters, ctx)) {
            return;
        }
        const Value v = eval(q.output, ctx);
        if (!ctx.error.empty() || v.is_null()) {
            return;
        }
        std::string text;
        if (json_of(v, text, ctx.error)) {
            s.values.push_back(std::move(text));
        }
    };
    if (q.kind == SubqueryKind::kRequest) {
        add();
    } else {
        const Value source = eval(q.each_source, ctx);
        if (ctx.error.empty() && !source.is_null()) {
            std::string error;
            auto entries = json_each_entries(source.to_text().value_or(""), &error);
            if (!entries) {
                ctx.error = "json_each: " + error;
            } else {
                for (const auto& [k, v] : *entries) {
                    ctx.each_key = &k;
                    ctx.each_value = &v;
                    add();
                    if (!ctx.error.empty()) {
                        break;
                    }
                }
                ctx.each_key = nullptr;
                ctx.each_value = nullptr;
            }
        }
    }
    if (!ctx.error.empty()) {
        error(s.context, "subquery " + q.id, ctx.error);
        s.values.clear();
    }
    sort_unique(s.values);
    s.done = true;
}

void StreamResolve::keys(int round, std::vector<std::string>& keys) {
    std::vector<std::vector<std::string>> slots;
    for (auto& s : m_sets) {
        const auto& q = m_rules.subqueries[static_cast<std::size_t>(s.subquery)];
        s.keys.clear();
        if (s.done || q.kind != SubqueryKind::kTable || q.level != round) {
            continue;
        }
        EvalContext ctx;
        ctx.request = &m_request;
        ctx.subscription = m_contexts[s.context].parameters;
        for (const auto& term : q.terms) {
            if (!all_true(term.request_filters, ctx)) {
                if (!ctx.error.empty()) {
                    break;
                }
                continue;
            }
            bool pass = true;
            for (const auto& m : term.memberships) {
                pass = pass && members(m, s.context, ctx);
            }
            if (!ctx.error.empty()) {
                break;
            }
            if (!pass) {
                continue;
            }
            slots.assign(term.keys.size(), {});
            for (std::size_t k = 0; k < term.keys.size() && ctx.error.empty(); ++k) {
                (void)values_of(term.keys[k].values, s.context, ctx, slots[k]);
            }
            if (!ctx.error.empty()) {
                break;
            }
            for_each_key(term.key_prefix, slots, [&](const std::string& key) {
                s.keys.push_back(keys.size());
                keys.push_back(key);
            });
        }
        if (!ctx.error.empty()) {
            error(s.context, "subquery " + q.id, ctx.error);
            s.keys.clear();
        }
    }
}

protocol::Status StreamResolve::take(int round, std::span<const std::vector<std::string>> found,
                                     std::size_t& results, std::size_t max_results) {
    for (auto& s : m_sets) {
        const auto& q = m_rules.subqueries[static_cast<std::size_t>(s.subquery)];
        if (s.done || q.kind != SubqueryKind::kTable || q.level != round) {
            continue;
        }
        for (const std::size_t at : s.keys) {
            if (at >= found.size()) {
                continue;
            }
            results += found[at].size();
            if (results > max_results) {
                return {protocol::ErrorCode::kRulesTooManyParameterResults,
                        fmt::format("parameter queries and stream subqueries returned more than {} results for this "
                                    "connection (the limit)",
                                    max_results)};
            }
            for (const auto& stored : found[at]) {
                std::string parse_error;
                auto values = json_array_values(stored, &parse_error);
                if (!values || values->empty()) {
                    error(s.context, "subquery " + q.id, "stored lookup values are not a JSON array: " + stored);
                    continue;
                }
                std::string text;
                append_json(text, (*values)[0]);
                s.values.push_back(std::move(text));
            }
        }
        sort_unique(s.values);
        s.keys.clear();
        s.done = true;
    }
    return protocol::Status::ok();
}

protocol::Status StreamResolve::finish(std::size_t max_buckets) {
    const std::string& prefix = m_rules.options.bucket_id_prefix;
    const std::size_t hard_limit = max_buckets * 4 + 10000;
    std::vector<std::vector<std::string>> slots;
    std::vector<std::string> other;
    for (std::size_t c = 0; c < m_contexts.size(); ++c) {
        const Context& context = m_contexts[c];
        const Stream& stream = m_rules.streams[static_cast<std::size_t>(context.stream)];
        const BucketSource source = context.subscription
                                        ? BucketSource{BucketSource::Kind::kSubscription, *context.subscription}
                                        : BucketSource{BucketSource::Kind::kDefault, context.status};
        const int priority = context.priority.value_or(stream.priority);
        EvalContext ctx;
        ctx.request = &m_request;
        ctx.subscription = context.parameters;
        for (const auto& variant : stream.variants) {
            const Definition& def = m_rules.definitions[static_cast<std::size_t>(variant.definition)];
            for (const auto& r : variant.resolvers) {
                ctx.error.clear();
                bool pass = all_true(r.request_filters, ctx);
                for (const auto& m : r.memberships) {
                    pass = pass && members(m, c, ctx);
                }
                slots.assign(r.params.size(), {});
                for (std::size_t p = 0; p < r.params.size() && pass && ctx.error.empty(); ++p) {
                    // The values every set of this parameter allows.
                    const auto& sets = r.params[p];
                    if (!values_of(sets[0], c, ctx, slots[p])) {
                        break;
                    }
                    for (std::size_t k = 1; k < sets.size() && ctx.error.empty(); ++k) {
                        if (!values_of(sets[k], c, ctx, other)) {
                            break;
                        }
                        sort_unique(slots[p]);
                        std::erase_if(slots[p], [&](const std::string& v) {
                            return !std::binary_search(other.begin(), other.end(), v);
                        });
                    }
                }
                if (!ctx.error.empty()) {
                    error(c, r.query, ctx.error);
                    continue;
                }
                if (!pass) {
                    continue;
                }
                for_each_key(prefix + def.name, slots, [&](const std::string& id) {
                    ResolvedBucket b;
                    b.id = id;
                    b.priority = priority;
                    b.definition = def.name;
                    b.stream = stream.name;
                    b.sources.push_back(source);
                    m_out.buckets.push_back(std::move(b));
                });
                if (m_out.buckets.size() > hard_limit) {
                    return {protocol::ErrorCode::kRulesTooManyBuckets,
                            fmt::format("this connection would receive more than {} buckets, more than the limit "
                                        "of {}",
                                        hard_limit, max_buckets)};
                }
            }
        }
    }
    return protocol::Status::ok();
}

}  // namespace sluice::config::rules::detail
