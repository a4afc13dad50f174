// Evaluation of a compiled rule set: source rows -> bucket rows, parameter rows -> lookup entries,
// requests -> bucket ids (see rule_set.h). Bucket ids are `<name>[<JSON array of parameters>]`.
#include <algorithm>

#include <fmt/format.h>

#include "config/rules/detail/compiled.h"
#include "config/rules/detail/json_writer.h"
#include "config/rules/detail/stream_resolver.h"
#include "config/rules/json.h"

namespace sluice::config::rules {

namespace {

// Whether every condition holds for the row in `ctx` (stops at the first that does not, or errs).
template <typename Conditions, typename Context>
bool all_hold(const Conditions& conditions, Context& ctx) {
    for (const auto& condition : conditions) {
        if (!detail::eval_condition(condition, ctx)) {
            return false;
        }
    }
    return true;
}

using detail::CExpr;
using detail::EvalContext;

// Appends the JSON array of values, e.g. ["u1",2].
void append_values(std::string& out, const std::vector<Value>& values) {
    out += '[';
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (i > 0) {
            out += ',';
        }
        append_json(out, values[i]);
    }
    out += ']';
}

bool bucketable(const Value& v, std::string& error) {
    if (v.type() == ValueType::kBlob) {
        error = "a blob cannot be a bucket parameter; expected text or a number (use hex() or base64())";
        return false;
    }
    return true;
}

// Candidate values of one binding: one value for =, the array's elements for IN.
bool binding_values(const detail::Binding& b, EvalContext& ctx, std::vector<Value>& out) {
    out.clear();
    Value scratch;
    const Value& v = detail::eval_ref(b.expr, ctx, scratch);
    if (!ctx.error.empty()) {
        return false;
    }
    if (!b.in_array) {
        if (!v.is_null()) {
            out.push_back(v);
        }
        return true;
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
    for (auto& e : *elements) {
        if (!e.is_null()) {
            out.push_back(std::move(e));
        }
    }
    return true;
}

// Cross product of per-slot candidates, calling fn with one combination at a time.
template <typename Fn>
void for_each_combination(const std::vector<std::vector<Value>>& slots, Fn&& fn) {
    if (slots.empty()) {
        fn(std::vector<Value>{});
        return;
    }
    for (const auto& s : slots) {
        if (s.empty()) {
            return;
        }
    }
    std::vector<std::size_t> idx(slots.size(), 0);
    std::vector<Value> current(slots.size());
    for (;;) {
        for (std::size_t i = 0; i < slots.size(); ++i) {
            current[i] = slots[i][idx[i]];
        }
        fn(current);
        std::size_t k = slots.size();
        while (k > 0) {
            --k;
            if (++idx[k] < slots[k].size()) {
                break;
            }
            idx[k] = 0;
            if (k == 0) {
                return;
            }
        }
    }
}

std::string query_name(const char* kind, int index) { return fmt::format("{}[{}]", kind, index); }

// Appends a value's text (CAST AS TEXT) without a temporary; the value must not be null.
void append_text(std::string& out, const Value& v) {
    switch (v.type()) {
        case ValueType::kNull: break;
        case ValueType::kInteger: append_json(out, v); break;  // decimal, as to_text()
        case ValueType::kReal: append_real(out, v.as_real()); break;
        case ValueType::kText:
        case ValueType::kBlob: out += v.bytes(); break;
    }
}

// The output row of a data query as JSON, and its id. False with ctx.error on a problem.
bool output_row(const detail::DataQuery& dq, const Row& row, EvalContext& ctx, std::string& json, std::string& id) {
    json.clear();
    json += '{';
    const Value* id_value = nullptr;
    Value id_scratch;
    if (dq.star_only) {
        detail::JsonWriter w(json);
        bool first = true;
        for (const auto& [name, value] : row) {
            if (!first) {
                w.raw(',');
            }
            first = false;
            w.string(name);
            w.raw(':');
            w.value(value);
            if (name == "id") {
                id_value = &value;
            }
        }
        w.finish();
    } else {
        std::vector<std::pair<std::string_view, Value>> columns;
        for (const auto& col : dq.columns) {
            auto put = [&](std::string_view name, Value v) {
                for (auto& c : columns) {
                    if (c.first == name) {
                        c.second = std::move(v);
                        return;
                    }
                }
                columns.emplace_back(name, std::move(v));
            };
            if (col.star) {
                for (const auto& [name, value] : row) {
                    put(name, value);
                }
            } else {
                put(col.name, detail::eval(col.expr, ctx));
                if (!ctx.error.empty()) {
                    return false;
                }
            }
        }
        bool first = true;
        for (const auto& [name, value] : columns) {
            if (!first) {
                json += ',';
            }
            first = false;
            append_json_string(json, name);
            json += ':';
            append_json(json, value);
            if (name == "id") {
                id_scratch = value;
                id_value = &id_scratch;
            }
        }
    }
    json += '}';
    if (id_value == nullptr) {
        ctx.error = "the output row has no id column; expected the query to output id";
        return false;
    }
    if (id_value->is_null()) {
        ctx.error = "the output row's id is NULL";
        return false;
    }
    id.clear();
    append_text(id, *id_value);
    return true;
}

// The next output row: a spare one (its buffers kept by RowEvaluation::clear()) or a new one.
BucketRow& next_row(std::vector<BucketRow>& rows, std::vector<BucketRow>& spare) {
    if (spare.empty()) {
        return rows.emplace_back();
    }
    rows.push_back(std::move(spare.back()));
    spare.pop_back();
    return rows.back();
}

}  // namespace

void RuleSet::evaluate_row(const TableName& table, const Row& row, RowEvaluation& out) const {
    const detail::TableIndex* index = m_impl->find_table(table);
    if (index == nullptr) {
        return;
    }
    const std::string& prefix = m_impl->options.bucket_id_prefix;
    std::vector<std::string>& buckets = out.m_buckets;
    std::size_t bucket_count = 0;  // buckets[0, bucket_count) hold this query's ids; the rest are buffers
    // The next bucket id buffer, emptied.
    auto new_bucket = [&]() -> std::string& {
        if (bucket_count == buckets.size()) {
            buckets.emplace_back();
        }
        std::string& b = buckets[bucket_count++];
        b.clear();
        return b;
    };
    std::vector<std::vector<Value>> slots;
    std::vector<Value> candidates;
    std::string& json = out.m_json;
    std::string& id = out.m_id;
    bool star_json_ready = false;  // json/id hold the SELECT * output of this row
    for (const int dq_index : index->data) {
        const auto& dq = m_impl->data[static_cast<std::size_t>(dq_index)];
        const auto& def = m_impl->definitions[static_cast<std::size_t>(dq.definition)];
        EvalContext ctx;
        ctx.row = &row;
        bucket_count = 0;
        auto fail = [&]() {
            out.errors.push_back({def.name, dq.label.empty() ? query_name("data", dq.index) : dq.label, ctx.error});
        };
        bool failed = false;
        for (const auto& term : dq.terms) {
            const bool pass = all_hold(term.filters, ctx);
            if (!ctx.error.empty()) {
                failed = true;
                break;
            }
            if (!pass) {
                continue;
            }
            if (dq.simple) {
                // One value per parameter, in any binding order.
                std::string& bucket = new_bucket();
                detail::JsonWriter w(bucket);
                w.raw(prefix);
                w.raw(def.name);
                w.raw('[');
                const std::size_t n = def.params.size();
                bool ok = true;
                for (std::size_t p = 0; p < n && ok; ++p) {
                    for (const auto& b : term.bindings) {
                        if (static_cast<std::size_t>(b.param) != p) {
                            continue;
                        }
                        Value scratch;
                        const Value& v = detail::eval_ref(b.expr, ctx, scratch);
                        if (v.is_null() || !ctx.error.empty()) {
                            ok = false;
                            break;
                        }
                        if (!bucketable(v, ctx.error)) {
                            ok = false;
                            break;
                        }
                        if (p > 0) {
                            w.raw(',');
                        }
                        w.value(v);
                    }
                }
                if (ok) {
                    w.raw(']');
                }
                w.finish();
                if (!ctx.error.empty()) {
                    failed = true;
                    break;
                }
                if (!ok) {
                    --bucket_count;
                }
                continue;
            }
            slots.assign(def.params.size(), {});
            std::vector<bool> bound(def.params.size(), false);
            for (const auto& b : term.bindings) {
                if (!binding_values(b, ctx, candidates)) {
                    break;
                }
                auto& slot = slots[static_cast<std::size_t>(b.param)];
                if (!bound[static_cast<std::size_t>(b.param)]) {
                    slot = candidates;
                    bound[static_cast<std::size_t>(b.param)] = true;
                } else {  // bound twice in one term: both must hold
                    std::erase_if(slot, [&](const Value& v) {
                        return std::none_of(candidates.begin(), candidates.end(),
                                            [&](const Value& c) { return sql_equal(v, c); });
                    });
                }
            }
            if (!ctx.error.empty()) {
                failed = true;
                break;
            }
            for (const auto& slot : slots) {
                for (const auto& v : slot) {
                    if (!bucketable(v, ctx.error)) {
                        break;
                    }
                }
            }
            if (!ctx.error.empty()) {
                failed = true;
                break;
            }
            for_each_combination(slots, [&](const std::vector<Value>& values) {
                std::string& bucket = new_bucket();
                bucket += prefix;
                bucket += def.name;
                append_values(bucket, values);
            });
        }
        if (failed) {
            fail();
            continue;
        }
        if (bucket_count == 0) {
            continue;
        }
        if (bucket_count > 1) {
            const auto first = buckets.begin();
            const auto last = first + static_cast<std::ptrdiff_t>(bucket_count);
            std::sort(first, last);
            bucket_count = static_cast<std::size_t>(std::unique(first, last) - first);
        }
        // SELECT * gives the same output for every query on this row: build it once.
        if (!(dq.star_only && star_json_ready)) {
            if (!output_row(dq, row, ctx, json, id)) {
                star_json_ready = false;
                fail();
                continue;
            }
            star_json_ready = dq.star_only;
        }
        for (std::size_t i = 0; i < bucket_count; ++i) {
            BucketRow& r = next_row(out.rows, out.m_spare);
            r.bucket.swap(buckets[i]);  // the row's old buffer becomes the next bucket's
            r.table.assign(dq.output_table);
            r.id.assign(id);
            r.data.assign(json);
            r.definition.assign(def.name);
            r.data_query = dq.index;
        }
    }
}

void RuleSet::evaluate_parameter_row(const TableName& table, const Row& row, ParameterEvaluation& out) const {
    const detail::TableIndex* index = m_impl->find_table(table);
    if (index == nullptr) {
        return;
    }
    std::vector<std::vector<Value>> slots;
    for (const auto& [def_index, q_index] : index->parameters) {
        const auto& def = m_impl->definitions[static_cast<std::size_t>(def_index)];
        const auto& pq = def.parameter_queries[static_cast<std::size_t>(q_index)];
        EvalContext ctx;
        ctx.row = &row;
        std::string values;
        bool values_done = false;
        bool failed = false;
        std::vector<LookupEntry> entries;
        for (const auto& term : pq.terms) {
            const bool pass = all_hold(term.row_filters, ctx);
            if (!ctx.error.empty()) {
                failed = true;
                break;
            }
            if (!pass) {
                continue;
            }
            slots.assign(term.keys.size(), {});
            for (std::size_t k = 0; k < term.keys.size(); ++k) {
                const auto& part = term.keys[k];
                detail::Binding b{0, part.row, part.kind == detail::KeyKind::kRowArray};
                if (!binding_values(b, ctx, slots[k])) {
                    break;
                }
            }
            if (!ctx.error.empty()) {
                failed = true;
                break;
            }
            if (!values_done) {
                std::vector<Value> row_values;
                for (const auto& o : pq.outputs) {
                    if (o.row_side) {
                        row_values.push_back(detail::eval(o.expr, ctx));
                        bucketable(row_values.back(), ctx.error);
                    }
                }
                if (!ctx.error.empty()) {
                    failed = true;
                    break;
                }
                append_values(values, row_values);
                values_done = true;
            }
            for_each_combination(slots, [&](const std::vector<Value>& key_values) {
                std::string key = term.key_prefix;
                append_values(key, key_values);
                entries.push_back({std::move(key), values});
            });
        }
        if (failed) {
            out.errors.push_back({def.name, query_name("parameters", pq.index), ctx.error});
            continue;
        }
        std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.key < b.key; });
        entries.erase(std::unique(entries.begin(), entries.end(),
                                  [](const auto& a, const auto& b) { return a.key == b.key; }),
                      entries.end());
        for (auto& e : entries) {
            out.entries.push_back(std::move(e));
        }
    }
    // Stream subqueries: one entry per key combination, holding the selected value.
    for (const int sq_index : index->subqueries) {
        const auto& q = m_impl->subqueries[static_cast<std::size_t>(sq_index)];
        EvalContext ctx;
        ctx.row = &row;
        std::string values;
        bool values_done = false;
        bool skip = false;  // the selected value is NULL: nothing to match
        std::vector<LookupEntry> entries;
        for (std::size_t t = 0; t < q.terms.size() && !skip; ++t) {
            const auto& term = q.terms[t];
            const bool pass = all_hold(term.row_filters, ctx);
            if (!ctx.error.empty()) {
                break;
            }
            if (!pass) {
                continue;
            }
            if (!values_done) {
                const Value v = detail::eval(q.output, ctx);
                if (!ctx.error.empty() || !bucketable(v, ctx.error)) {
                    break;
                }
                if (v.is_null()) {
                    skip = true;
                    break;
                }
                append_values(values, {v});
                values_done = true;
            }
            slots.assign(term.keys.size(), {});
            for (std::size_t k = 0; k < term.keys.size(); ++k) {
                detail::Binding b{0, term.keys[k].row, term.keys[k].row_array};
                if (!binding_values(b, ctx, slots[k])) {
                    break;
                }
                for (const auto& v : slots[k]) {
                    if (!bucketable(v, ctx.error)) {
                        break;
                    }
                }
                if (!ctx.error.empty()) {
                    break;
                }
            }
            if (!ctx.error.empty()) {
                break;
            }
            for_each_combination(slots, [&](const std::vector<Value>& key_values) {
                std::string key = term.key_prefix;
                append_values(key, key_values);
                entries.push_back({std::move(key), values});
            });
        }
        if (!ctx.error.empty()) {
            out.errors.push_back({q.id, "subquery", ctx.error});
            continue;
        }
        std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.key < b.key; });
        entries.erase(std::unique(entries.begin(), entries.end(),
                                  [](const auto& a, const auto& b) { return a.key == b.key; }),
                      entries.end());
        for (auto& e : entries) {
            out.entries.push_back(std::move(e));
        }
    }
}

namespace {

struct PendingLookup {
    std::size_t key_index;
    const detail::Definition* def;
    const detail::ParameterQuery* query;
};

// A bucket of a bucket definition; it serves the definition's default stream, whose index in
// Resolution::streams is the definition's index (bucket definitions come first in both).
void add_bucket(std::vector<ResolvedBucket>& out, const std::string& prefix, const detail::Definition& def,
                std::size_t def_index, int query, const std::vector<Value>& params, std::string lookup_key) {
    std::string id = prefix + def.name;
    append_values(id, params);
    out.push_back({std::move(id), def.priority, def.name, query, std::move(lookup_key), {},
                   {BucketSource{BucketSource::Kind::kDefault, def_index}}});
}

}  // namespace

protocol::Result<Resolution> RuleSet::resolve_buckets(const Request& request, LookupSource& lookups,
                                                      const ResolveOptions& options) const {
    Resolution res;
    res.buckets.reserve(m_impl->definitions.size() * 2);
    const std::string& prefix = m_impl->options.bucket_id_prefix;
    std::vector<std::string> keys;
    std::vector<PendingLookup> pending;
    std::vector<std::vector<Value>> slots;
    for (std::size_t def_index = 0; def_index < m_impl->definitions.size(); ++def_index) {
        const auto& def = m_impl->definitions[def_index];
        if (def.stream >= 0) {
            continue;
        }
        res.streams.push_back({def.name, true, {}});
        if (def.parameter_queries.empty() && !def.has_parameters_key) {
            add_bucket(res.buckets, prefix, def, def_index, -1, {}, "");
            continue;
        }
        for (const auto& pq : def.parameter_queries) {
            EvalContext ctx;
            ctx.request = &request;
            auto outputs = [&](std::vector<Value>& params) {
                params.assign(def.params.size(), Value{});
                for (const auto& o : pq.outputs) {
                    params[static_cast<std::size_t>(o.param)] = detail::eval(o.expr, ctx);
                }
            };
            std::vector<Value> params;
            switch (pq.kind) {
                case detail::ParameterKind::kRequest:
                    if (!pq.has_where || detail::eval_condition(pq.where, ctx)) {
                        outputs(params);
                        if (ctx.error.empty()) {
                            add_bucket(res.buckets, prefix, def, def_index, pq.index, params, "");
                        }
                    }
                    break;
                case detail::ParameterKind::kJsonEach: {
                    const Value source = detail::eval(pq.each_source, ctx);
                    if (!ctx.error.empty() || source.is_null()) {
                        break;
                    }
                    std::string error;
                    auto entries = json_each_entries(*source.to_text(), &error);
                    if (!entries) {
                        ctx.error = "json_each: " + error;
                        break;
                    }
                    for (const auto& [k, v] : *entries) {
                        ctx.each_key = &k;
                        ctx.each_value = &v;
                        if (!pq.has_where || detail::eval_condition(pq.where, ctx)) {
                            outputs(params);
                            if (ctx.error.empty()) {
                                add_bucket(res.buckets, prefix, def, def_index, pq.index, params, "");
                            }
                        }
                        if (!ctx.error.empty()) {
                            break;
                        }
                    }
                    ctx.each_key = nullptr;
                    ctx.each_value = nullptr;
                    break;
                }
                case detail::ParameterKind::kTable:
                    for (const auto& term : pq.terms) {
                        bool pass = true;
                        for (const auto& f : term.request_filters) {
                            if (!detail::eval_condition(f, ctx)) {
                                pass = false;
                                break;
                            }
                        }
                        if (!pass || !ctx.error.empty()) {
                            continue;
                        }
                        slots.assign(term.keys.size(), {});
                        for (std::size_t k = 0; k < term.keys.size(); ++k) {
                            const auto& part = term.keys[k];
                            detail::Binding b{0, part.request, part.kind == detail::KeyKind::kRequestArray};
                            if (!binding_values(b, ctx, slots[k])) {
                                break;
                            }
                        }
                        if (!ctx.error.empty()) {
                            break;
                        }
                        for_each_combination(slots, [&](const std::vector<Value>& key_values) {
                            std::string key = term.key_prefix;
                            append_values(key, key_values);
                            pending.push_back({keys.size(), &def, &pq});
                            keys.push_back(std::move(key));
                        });
                    }
                    break;
            }
            if (!ctx.error.empty()) {
                res.errors.push_back({def.name, query_name("parameters", pq.index), ctx.error});
            }
        }
    }
    // Lookups, round by round: bucket_definitions' keys and the first level of stream subqueries in
    // the first round, nested stream subqueries in the next ones.
    detail::StreamResolve streams(*m_impl, request, res);
    streams.start();
    const int rounds = std::max(streams.rounds(), keys.empty() ? 0 : 1);
    std::size_t results = 0;
    for (int round = 1; round <= rounds; ++round) {
        std::vector<std::string> batch;
        if (round == 1) {
            batch = keys;
        }
        streams.keys(round, batch);
        if (batch.empty()) {
            continue;
        }
        const auto found = lookups.lookup(batch);
        ++res.lookup_rounds;
        if (auto status = streams.take(round, found, results, options.max_parameter_results); !status) {
            return status;
        }
        if (round > 1) {
            continue;
        }
        for (const auto& p : pending) {
            if (p.key_index >= found.size()) {
                continue;
            }
            const auto& rows = found[p.key_index];
            results += rows.size();
            if (results > options.max_parameter_results) {
                return protocol::Status(protocol::ErrorCode::kRulesTooManyParameterResults,
                                        fmt::format("parameter queries returned more than {} results for this "
                                                    "connection (the limit)",
                                                    options.max_parameter_results));
            }
            for (const auto& stored : rows) {
                const auto& pq = *p.query;
                const auto& def = *p.def;
                std::string id;
                if (pq.stored_in_order) {
                    id = prefix + def.name + stored;
                    res.buckets.push_back({std::move(id), def.priority, def.name, pq.index, keys[p.key_index], {},
                                           {BucketSource{BucketSource::Kind::kDefault,
                                                         static_cast<std::size_t>(p.def - m_impl->definitions.data())}}});
                    continue;
                }
                std::string error;
                auto row_values = json_array_values(stored, &error);
                if (!row_values) {
                    res.errors.push_back({def.name, query_name("parameters", pq.index),
                                          "stored lookup values are not a JSON array: " + stored});
                    continue;
                }
                EvalContext ctx;
                ctx.request = &request;
                std::vector<Value> params(def.params.size());
                std::size_t next_row_value = 0;
                for (const auto& o : pq.outputs) {
                    if (o.row_side) {
                        if (next_row_value < row_values->size()) {
                            params[static_cast<std::size_t>(o.param)] = (*row_values)[next_row_value];
                        }
                        ++next_row_value;
                    } else {
                        params[static_cast<std::size_t>(o.param)] = detail::eval(o.expr, ctx);
                    }
                }
                add_bucket(res.buckets, prefix, def, static_cast<std::size_t>(p.def - m_impl->definitions.data()),
                           pq.index, params, keys[p.key_index]);
            }
        }
    }
    if (auto status = streams.finish(options.max_buckets); !status) {
        return status;
    }
    // Sorted by id, one entry per bucket: the first, with every source it serves and the most urgent
    // priority. The order is sorted as indexes, so each bucket moves once.
    std::vector<std::uint32_t> order(res.buckets.size());
    for (std::uint32_t i = 0; i < order.size(); ++i) {
        order[i] = i;
    }
    std::stable_sort(order.begin(), order.end(),
                     [&](std::uint32_t a, std::uint32_t b) { return res.buckets[a].id < res.buckets[b].id; });
    std::vector<ResolvedBucket> sorted;
    sorted.reserve(order.size());
    for (const std::uint32_t i : order) {
        ResolvedBucket& b = res.buckets[i];
        if (!sorted.empty() && sorted.back().id == b.id) {
            auto& into = sorted.back();
            into.priority = std::min(into.priority, b.priority);
            into.sources.insert(into.sources.end(), b.sources.begin(), b.sources.end());
            continue;
        }
        sorted.push_back(std::move(b));
    }
    for (auto& b : sorted) {
        if (b.sources.size() > 1) {
            std::sort(b.sources.begin(), b.sources.end());
            b.sources.erase(std::unique(b.sources.begin(), b.sources.end()), b.sources.end());
        }
    }
    res.buckets = std::move(sorted);
    if (res.buckets.size() > options.max_buckets) {
        return protocol::Status(protocol::ErrorCode::kRulesTooManyBuckets,
                                fmt::format("this connection would receive {} buckets, more than the limit of {}",
                                            res.buckets.size(), options.max_buckets));
    }
    return res;
}

}  // namespace sluice::config::rules
