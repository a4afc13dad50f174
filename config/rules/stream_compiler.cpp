// Compiles the Sync Streams dialect (docs/powersync-compat.md, "Sync Streams dialect") into the same
// machinery as bucket_definitions (detail/compiled.h):
//   - each stream query is split into OR alternatives; an alternative's conditions between a row
//     column and request values (=, IN, IN (SELECT ...)) become bucket parameters, its row-only
//     conditions filter rows at replication time, its request-only conditions are checked when a
//     subscription is resolved. Alternatives with the same row conditions and parameters share one
//     bucket definition "<stream>|<n>" (a variant) with one data query;
//   - every IN (SELECT ...), with: query and INNER JOIN becomes a StreamSubquery: a lookup over its
//     table keyed by its own conditions on request values (or on the values of a nested subquery),
//     maintained row by row like the parameter lookups of bucket_definitions (joins and OR
//     alternatives are shaped in stream_shape.cpp).
// Collects every problem in one pass, placed at file:line:col.
#include "config/rules/detail/stream_compiler.h"

#include <algorithm>
#include <cctype>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>

#include <fmt/format.h>

#include "config/rules/detail/expr_compiler.h"
#include "config/rules/detail/stream_shape.h"
#include "config/rules/parser.h"

namespace sluice::config::rules::detail {
namespace {

using protocol::ErrorCode;

constexpr int kMaxLevel = 8;

// One SQL text of the file (a stream query or a with: query) and the errors found in it.
struct Source {
    YAML::Node node;
    std::string sql;
    std::string path;
    std::vector<SqlError> errors;
    bool failed = false;  // a subquery it reads failed (reported in that subquery's own source)
};

struct WithQuery {
    std::string name;
    std::string id;  // subquery id
    Source source;
    std::optional<SelectStatement> stmt;
    enum class State : std::uint8_t { kNew, kCompiling, kDone } state = State::kNew;
    int subquery = -1;
    const std::map<std::string, std::unique_ptr<WithQuery>>* scope = nullptr;  // locals visible to it
};

using WithMap = std::map<std::string, std::unique_ptr<WithQuery>>;

// The result of compiling one OR alternative against one table.
struct KeyedAtom {
    CExpr row;
    bool row_array = false;
    ValueSet values;
    std::string text;  // the row side as written
};

struct TermOut {
    std::vector<CExpr> row_filters;
    std::vector<CExpr> request_filters;
    std::vector<Membership> memberships;
    std::vector<KeyedAtom> keys;
    unsigned request_uses = 0;  // kUsesAuth / kUsesClient / kUsesSubscription, nested subqueries included
    int level = 0;              // deepest subquery level read
};

// Drops repeated errors (an atom shared by several OR alternatives is compiled for each).
void drop_repeats(std::vector<SqlError>& errors) {
    std::vector<SqlError> kept;
    for (auto& e : errors) {
        const bool seen = std::any_of(kept.begin(), kept.end(), [&](const SqlError& k) {
            return k.span.begin == e.span.begin && k.span.end == e.span.end && k.message == e.message;
        });
        if (!seen) {
            kept.push_back(std::move(e));
        }
    }
    errors = std::move(kept);
}

// Uses bits of a compiled expression.
unsigned uses_of(const CExpr& e) {
    unsigned u = 0;
    switch (e.op) {
        case Op::kColumn: u |= kUsesRow; break;
        case Op::kEachValue:
        case Op::kEachKey: u |= kUsesEach; break;
        case Op::kUserId:
        case Op::kJwt:
        case Op::kClaim:
        case Op::kTokenParam: u |= kUsesRequest | kUsesAuth; break;
        case Op::kClientParams:
        case Op::kUserParam: u |= kUsesRequest | kUsesClient; break;
        case Op::kSubParam:
        case Op::kSubParams: u |= kUsesRequest | kUsesClient | kUsesSubscription; break;
        default: break;
    }
    for (const auto& a : e.args) {
        u |= uses_of(a);
    }
    return u;
}

bool same_set(const ValueSet& a, const ValueSet& b) {
    return a.kind == b.kind && a.subquery == b.subquery && same_expr(a.expr, b.expr);
}

template <typename T, typename Eq>
bool same_list(const std::vector<T>& a, const std::vector<T>& b, Eq eq) {
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (!eq(a[i], b[i])) {
            return false;
        }
    }
    return true;
}

bool same_exprs(const std::vector<CExpr>& a, const std::vector<CExpr>& b) { return same_list(a, b, same_expr); }

bool same_subquery(const StreamSubquery& a, const StreamSubquery& b) {
    if (a.kind != b.kind || !(a.table == b.table) || !same_expr(a.each_source, b.each_source) ||
        !same_expr(a.output, b.output)) {
        return false;
    }
    return same_list(a.terms, b.terms, [](const SubqueryTerm& x, const SubqueryTerm& y) {
        return same_exprs(x.row_filters, y.row_filters) && same_exprs(x.request_filters, y.request_filters) &&
               same_list(x.memberships, y.memberships,
                         [](const Membership& m, const Membership& n) {
                             return same_expr(m.needle, n.needle) && same_set(m.set, n.set);
                         }) &&
               same_list(x.keys, y.keys, [](const StreamKey& k, const StreamKey& l) {
                   return k.row_array == l.row_array && same_expr(k.row, l.row) && same_set(k.values, l.values);
               });
    });
}

std::string feature_name(Feature f) {
    switch (f) {
        case Feature::kJoin: return "INNER JOIN";
        case Feature::kNestedSubquery: return "a nested subquery";
        case Feature::kBetween: return "BETWEEN";
        case Feature::kCase: return "CASE";
        case Feature::kList: return "ARRAY[...]/ROW(...)";
    }
    return "";
}

bool valid_stream_name(const std::string& name) {
    return !name.empty() && name.find_first_of("[]\"/#.|: \t\n") == std::string::npos;
}

bool identifier(const std::string& name) {
    if (name.empty() || !(std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_')) {
        return false;
    }
    return std::all_of(name.begin(), name.end(),
                       [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

std::string output_name(const SelectItem& item) {
    if (!item.alias.empty()) {
        return item.alias;
    }
    if (item.expr.kind == NodeKind::kName) {
        return item.expr.names.back();
    }
    return {};
}

class StreamCompiler {
public:
    StreamCompiler(CompileContext& ctx, Compiled& out, int edition) : m_ctx(ctx), m_out(out), m_edition(edition) {}

    void run(const YAML::Node* with, const YAML::Node& streams) {
        if (with != nullptr) {
            if (m_edition < 3) {
                m_ctx.report(with->Mark(), "with", ErrorCode::kRulesUnsupported,
                             "with: queries need config: edition: 3; expected edition 3 or the subqueries written "
                             "inline");
            } else {
                with_section(*with, "with", "", m_global);
            }
        }
        if (!streams.IsMap()) {
            m_ctx.report(streams.Mark(), "streams", ErrorCode::kRulesStructure,
                         "expected a mapping of stream names to streams");
        } else {
            for (const auto& entry : streams) {
                stream(entry.first, entry.second);
            }
        }
        // with: queries no stream reads are still checked.
        for (auto& [name, w] : m_global) {
            (void)with_subquery(*w, nullptr, {});
        }
        finish();
    }

private:
    // ---- with: queries

    void with_section(const YAML::Node& node, const std::string& path, const std::string& stream, WithMap& into) {
        if (!node.IsMap()) {
            m_ctx.report(node.Mark(), path, ErrorCode::kRulesStructure,
                         "expected a mapping of names to subqueries (name: SELECT <column> FROM ...)");
            return;
        }
        for (const auto& entry : node) {
            const std::string name = entry.first.Scalar();
            const std::string qpath = path + "." + name;
            if (!identifier(name)) {
                m_ctx.report(entry.first.Mark(), qpath, ErrorCode::kRulesStructure,
                             fmt::format("with query name '{}' is not valid; expected a name of letters, digits "
                                         "and _ (it is used in SQL as IN {})",
                                         name, name));
                continue;
            }
            if (!entry.second.IsScalar()) {
                m_ctx.report(entry.second.Mark(), qpath, ErrorCode::kRulesStructure,
                             "expected a subquery (SELECT <column> FROM ...) as text");
                continue;
            }
            auto w = std::make_unique<WithQuery>();
            w->name = name;
            w->id = stream.empty() ? name : stream + ".with." + name;
            w->source = Source{entry.second, entry.second.Scalar(), qpath, {}, false};
            auto parsed = parse_select(w->source.sql, Dialect::kStreams);
            w->source.errors = std::move(parsed.errors);
            w->stmt = std::move(parsed.statement);
            w->scope = stream.empty() ? nullptr : &into;
            into[name] = std::move(w);
        }
    }

    [[nodiscard]] WithQuery* find_with(const std::string& name) const {
        if (m_local != nullptr) {
            if (auto it = m_local->find(name); it != m_local->end()) {
                return it->second.get();
            }
        }
        if (auto it = m_global.find(name); it != m_global.end()) {
            return it->second.get();
        }
        return nullptr;
    }

    [[nodiscard]] bool is_with_ref(const Node& n) const {
        return n.kind == NodeKind::kName && n.names.size() == 1 && find_with(n.names[0]) != nullptr;
    }

    // The subquery of a with: query, compiled on first use; -1 when it has errors. user/use: where it
    // is read (for a cycle), null when checked on its own.
    int with_subquery(WithQuery& w, Source* user, Span use) {
        if (w.state == WithQuery::State::kDone) {
            return w.subquery;
        }
        if (w.state == WithQuery::State::kCompiling) {
            if (user != nullptr) {
                user->errors.push_back({use, ErrorCode::kRulesUnsupported,
                                        fmt::format("with query '{}' is part of a cycle (it reads, directly or "
                                                    "through other queries, the query using it); expected subqueries "
                                                    "that do not refer back",
                                                    w.name)});
            }
            return -1;
        }
        w.state = WithQuery::State::kCompiling;
        const WithMap* saved = m_local;
        std::string saved_base = std::move(m_id_base);
        const int saved_next = m_next_inline;
        m_local = w.scope;
        m_id_base = w.id;
        m_next_inline = 0;
        if (w.stmt) {
            w.subquery = compile_subquery(*w.stmt, w.source, w.id);
        }
        m_local = saved;
        m_id_base = std::move(saved_base);
        m_next_inline = saved_next;
        drop_repeats(w.source.errors);
        m_ctx.report_sql(w.source.node, w.source.sql, w.source.path, w.source.errors);
        if (!w.source.errors.empty() || w.source.failed) {
            w.subquery = -1;
        }
        w.state = WithQuery::State::kDone;
        return w.subquery;
    }

    // ---- streams

    void stream(const YAML::Node& key, const YAML::Node& node) {
        const std::string name = key.Scalar();
        const std::string path = "streams." + name;
        if (!valid_stream_name(name)) {
            m_ctx.report(key.Mark(), path, ErrorCode::kRulesStructure,
                         fmt::format("stream name '{}' is not valid; expected a name without spaces, quotes, "
                                     "brackets, '/', '#', '.', '|' or ':'",
                                     name));
        }
        if (!node.IsMap()) {
            m_ctx.report(node.Mark(), path, ErrorCode::kRulesStructure,
                         "expected a mapping with 'query' (or 'queries') and optional 'with', 'auto_subscribe', "
                         "'priority'");
            return;
        }
        Stream s;
        s.name = name;
        YAML::Node query;
        YAML::Node queries;
        YAML::Node with;
        bool has_query = false;
        bool has_queries = false;
        bool has_with = false;
        bool accept_dangerous = false;
        auto boolean = [&](const YAML::Node& v, const std::string& k, bool& out) {
            if (!v.IsScalar() || !YAML::convert<bool>::decode(v, out)) {
                m_ctx.report(v.Mark(), path + "." + k, ErrorCode::kRulesStructure,
                             fmt::format("'{}' is not a boolean; expected true or false",
                                         v.IsScalar() ? v.Scalar() : std::string("...")));
            }
        };
        for (const auto& entry : node) {
            const std::string k = entry.first.Scalar();
            const YAML::Node& v = entry.second;
            if (k == "query") {
                query.reset(v);
                has_query = true;
            } else if (k == "queries") {
                queries.reset(v);
                has_queries = true;
                if (m_edition < 3) {
                    m_ctx.report(entry.first.Mark(), path + ".queries", ErrorCode::kRulesUnsupported,
                                 "queries: needs config: edition: 3; expected one query: in edition 2");
                }
            } else if (k == "with") {
                with.reset(v);
                has_with = true;
                if (m_edition < 3) {
                    m_ctx.report(entry.first.Mark(), path + ".with", ErrorCode::kRulesUnsupported,
                                 "with: queries need config: edition: 3; expected edition 3 or the subqueries "
                                 "written inline");
                    has_with = false;
                }
            } else if (k == "auto_subscribe") {
                boolean(v, k, s.auto_subscribe);
            } else if (k == "accept_potentially_dangerous_queries") {
                boolean(v, k, accept_dangerous);
            } else if (k == "priority") {
                int p = -1;
                if (!v.IsScalar() || !YAML::convert<int>::decode(v, p) || p < 0 || p > 3) {
                    m_ctx.report(v.Mark(), path + ".priority", ErrorCode::kRulesStructure,
                                 fmt::format("priority '{}' is not valid; expected 0, 1, 2 or 3 (lower is synced "
                                             "first; default 3)",
                                             v.IsScalar() ? v.Scalar() : std::string("...")));
                } else {
                    s.priority = p;
                }
            } else {
                m_ctx.report(entry.first.Mark(), path + "." + k, ErrorCode::kRulesUnknownKey,
                             fmt::format("unknown key '{}' in a stream; expected query, queries, with, "
                                         "auto_subscribe, priority or accept_potentially_dangerous_queries{}",
                                         k,
                                         CompileContext::suggestion(k, {"query", "queries", "with", "auto_subscribe",
                                                                        "priority",
                                                                        "accept_potentially_dangerous_queries"})));
            }
        }
        const int stream_index = static_cast<int>(m_out.streams.size());
        m_out.streams.push_back(std::move(s));
        WithMap local;
        if (has_with) {
            with_section(with, path + ".with", name, local);
        }
        m_local = &local;
        m_stream_name = name;
        m_id_base = name;
        m_stream_index = stream_index;
        m_next_inline = 0;
        m_next_variant = 0;
        m_accept_dangerous = accept_dangerous;
        if (has_query && has_queries) {
            m_ctx.report(key.Mark(), path, ErrorCode::kRulesStructure,
                         "a stream has either 'query' or 'queries', not both; expected one of them");
        } else if (has_query) {
            if (!query.IsScalar()) {
                m_ctx.report(query.Mark(), path + ".query", ErrorCode::kRulesStructure,
                             "expected a query (SELECT ...) as text; use queries: for a list");
            } else {
                stream_query(query, path + ".query", 0, "query");
            }
        } else if (has_queries) {
            if (!queries.IsSequence() || queries.size() == 0) {
                m_ctx.report(queries.Mark(), path + ".queries", ErrorCode::kRulesStructure,
                             "expected a list of queries (SELECT ...)");
            } else {
                const YAML::Node& list = queries;
                for (std::size_t i = 0; i < list.size(); ++i) {
                    const auto qpath = fmt::format("{}.queries[{}]", path, i);
                    const YAML::Node q = list[i];
                    if (!q.IsScalar()) {
                        m_ctx.report(q.Mark(), qpath, ErrorCode::kRulesStructure, "expected a query (SELECT ...) as text");
                        continue;
                    }
                    stream_query(q, qpath, static_cast<int>(i), fmt::format("queries[{}]", i));
                }
            }
        } else {
            m_ctx.report(key.Mark(), path, ErrorCode::kRulesStructure,
                         "missing 'query': a stream needs a query (or queries:)");
        }
        for (auto& [wname, w] : local) {
            (void)with_subquery(*w, nullptr, {});
        }
        m_local = nullptr;
    }

    [[nodiscard]] WithRefTest with_ref_test() const {
        return [this](const Node& n) { return is_with_ref(n); };
    }
    bool shape(const SelectStatement& stmt, Source& src, Shaped& out) {
        return shape_query(stmt, src.sql, with_ref_test(), src.errors, m_synth, out);
    }

    // ---- compiling conditions

    // A with: reference or an IN (SELECT ...) anywhere but at the top of an atom.
    [[nodiscard]] const Node* nested_subquery(const Node& n) const {
        if (n.kind == NodeKind::kSubquery) {
            return &n;
        }
        if (n.kind == NodeKind::kIn && is_with_ref(n.args[1])) {
            return &n;
        }
        for (const auto& a : n.args) {
            if (const Node* found = nested_subquery(a)) {
                return found;
            }
        }
        return nullptr;
    }

    void term_atom(const Node& atom, Source& src, ExprCompiler& compiler, TermOut& out) {
        const std::string_view sql = src.sql;
        if (atom.kind == NodeKind::kIn && (atom.args[1].kind == NodeKind::kSubquery || is_with_ref(atom.args[1]))) {
            const Node& rhs = atom.args[1];
            int sq = -1;
            if (rhs.kind == NodeKind::kSubquery) {
                if (const Node* inner = nested_subquery(atom.args[0])) {
                    src.errors.push_back({inner->span, ErrorCode::kRulesWrongContext,
                                          "a subquery cannot be used on the left of IN; expected a column or a "
                                          "request value"});
                    return;
                }
                // An atom repeated in several OR alternatives is compiled once.
                if (auto it = m_compiled.find(rhs.subquery.get()); it != m_compiled.end()) {
                    sq = it->second;
                } else {
                    sq = compile_subquery(*rhs.subquery, src, fmt::format("{}.{}", m_id_base, m_next_inline++));
                    m_compiled[rhs.subquery.get()] = sq;
                }
            } else {
                sq = with_subquery(*find_with(rhs.names[0]), &src, rhs.span);
            }
            unsigned uses = 0;
            CExpr lhs = compiler.compile(atom.args[0], uses);
            if (sq < 0) {
                src.failed = true;
                return;
            }
            const StreamSubquery& q = m_out.subqueries[static_cast<std::size_t>(sq)];
            out.request_uses |= q.uses | (uses & (kUsesAuth | kUsesClient | kUsesSubscription));
            out.level = std::max(out.level, q.level);
            const ValueSet set{SetKind::kSubquery, {}, sq};
            if ((uses & kUsesRow) != 0 && (uses & kUsesRequest) == 0) {
                out.keys.push_back({std::move(lhs), false, set, std::string(quote(sql, atom.args[0].span))});
            } else if ((uses & kUsesRow) == 0) {
                out.memberships.push_back({std::move(lhs), set});
            } else {
                src.errors.push_back({atom.args[0].span, ErrorCode::kRulesInvalidMatch,
                                      fmt::format("{} mixes table columns and request values on the left of IN; "
                                                  "expected a column expression or a request value",
                                                  quote(sql, atom.args[0].span))});
            }
            return;
        }
        if (const Node* inner = nested_subquery(atom)) {
            src.errors.push_back({inner->span, ErrorCode::kRulesWrongContext,
                                  fmt::format("{}: a subquery can only be used as <expression> IN (SELECT ...) in "
                                              "WHERE, combined with AND or OR (not under NOT nor inside another "
                                              "expression)",
                                              quote(sql, inner->span))});
            return;
        }
        unsigned uses = 0;
        CExpr whole = compiler.compile(atom, uses);
        if ((uses & kUsesRequest) == 0) {
            out.row_filters.push_back(std::move(whole));
            return;
        }
        out.request_uses |= uses & (kUsesAuth | kUsesClient | kUsesSubscription);
        if ((uses & kUsesRow) == 0) {
            out.request_filters.push_back(std::move(whole));
            return;
        }
        const bool eq = atom.kind == NodeKind::kBinary && atom.op == BinaryOp::kEq;
        const bool in = atom.kind == NodeKind::kIn;
        if ((eq || in) && whole.args.size() == 2) {
            const unsigned ul = uses_of(whole.args[0]);
            const unsigned ur = uses_of(whole.args[1]);
            const bool l_row = (ul & kUsesRequest) == 0 && (ul & kUsesRow) != 0;
            const bool l_req = (ul & kUsesRow) == 0;
            const bool r_row = (ur & kUsesRequest) == 0 && (ur & kUsesRow) != 0;
            const bool r_req = (ur & kUsesRow) == 0;
            const std::string l_text = quote(sql, atom.args[0].span);
            const std::string r_text = quote(sql, atom.args[1].span);
            if (eq && l_row && r_req) {
                out.keys.push_back({std::move(whole.args[0]), false, {SetKind::kScalar, std::move(whole.args[1]), -1},
                                    l_text});
                return;
            }
            if (eq && l_req && r_row) {
                out.keys.push_back({std::move(whole.args[1]), false, {SetKind::kScalar, std::move(whole.args[0]), -1},
                                    r_text});
                return;
            }
            if (in && l_row && r_req) {
                out.keys.push_back({std::move(whole.args[0]), false, {SetKind::kArray, std::move(whole.args[1]), -1},
                                    l_text});
                return;
            }
            if (in && l_req && r_row) {
                out.keys.push_back({std::move(whole.args[1]), true, {SetKind::kScalar, std::move(whole.args[0]), -1},
                                    r_text});
                return;
            }
        }
        src.errors.push_back({atom.span, ErrorCode::kRulesInvalidMatch,
                              fmt::format("{} compares table columns with request values in a way that cannot be "
                                          "indexed; expected <column> = <value>, <column> IN <array value>, <value> "
                                          "IN <array column> or <column> IN (SELECT ...)",
                                          quote(sql, atom.span))});
    }

    // ---- subqueries

    // Compiles a subquery (IN (SELECT ...), a with: query or a join); its index in m_out.subqueries
    // (an identical earlier one when there is one), or -1 with errors in src.
    int compile_subquery(const SelectStatement& stmt, Source& src, const std::string& id) {
        const std::size_t errors_before = src.errors.size();
        StreamSubquery q;
        q.id = id;
        if (stmt.items.size() != 1 || stmt.items[0].star) {
            const Span span = stmt.items.empty() ? stmt.select_span
                                                 : Span{stmt.items.front().span.begin, stmt.items.back().span.end};
            src.errors.push_back({span, ErrorCode::kRulesUnsupported,
                                  fmt::format("a subquery selects {}; expected exactly one column (SELECT <column> "
                                              "FROM ...)",
                                              stmt.items.empty() ? std::string("nothing") : quote(src.sql, span))});
            return -1;
        }
        const SelectItem& item = stmt.items[0];
        NameScope scope;
        scope.streams = true;
        if (!stmt.from) {
            q.kind = SubqueryKind::kRequest;
            scope.kind = NameScope::Kind::kParameterRequest;
            ExprCompiler compiler(src.sql, scope, src.errors);
            request_subquery(stmt, src, compiler, q);
        } else if (stmt.from->is_function) {
            const Node& call = stmt.from->call;
            q.kind = SubqueryKind::kJsonEach;
            if (call.names.size() != 1 || call.names[0] != "json_each" || call.args.size() != 1) {
                src.errors.push_back({call.span, ErrorCode::kRulesUnsupported,
                                      fmt::format("{} cannot be used in FROM; expected a table or "
                                                  "json_each(<request JSON array>)",
                                                  quote(src.sql, call.span))});
                return -1;
            }
            scope.kind = NameScope::Kind::kParameterRequest;
            {
                ExprCompiler source_compiler(src.sql, scope, src.errors);
                unsigned uses = 0;
                q.each_source = source_compiler.compile(call.args[0], uses);
                q.uses |= uses & (kUsesAuth | kUsesClient | kUsesSubscription);
            }
            scope.kind = NameScope::Kind::kParameterEach;
            scope.each_name = stmt.from->alias.empty() ? "json_each" : stmt.from->alias;
            ExprCompiler compiler(src.sql, scope, src.errors);
            request_subquery(stmt, src, compiler, q);
        } else {
            q.kind = SubqueryKind::kTable;
            Shaped shaped;
            if (!shape(stmt, src, shaped)) {
                return -1;
            }
            q.table = shaped.root.name();
            scope.kind = NameScope::Kind::kParameterTable;
            scope.table = shaped.root.parts.back();
            scope.schema = shaped.root.parts.size() == 2 ? shaped.root.parts[0] : "";
            scope.alias = shaped.root.alias;
            ExprCompiler compiler(src.sql, scope, src.errors);
            unsigned uses = 0;
            q.output = compiler.compile(item.expr, uses);
            if ((uses & kUsesRequest) != 0 || (uses & kUsesRow) == 0) {
                src.errors.push_back({item.span, ErrorCode::kRulesWrongContext,
                                      fmt::format("a subquery from a table selects {}; expected a column expression "
                                                  "of {}",
                                                  quote(src.sql, item.span), shaped.root.ref())});
            }
            q.level = 1;
            for (std::size_t t = 0; t < shaped.terms.size(); ++t) {
                TermOut term;
                for (const Node* atom : shaped.terms[t]) {
                    term_atom(*atom, src, compiler, term);
                }
                SubqueryTerm st;
                st.row_filters = std::move(term.row_filters);
                st.request_filters = std::move(term.request_filters);
                st.memberships = std::move(term.memberships);
                for (auto& k : term.keys) {
                    st.keys.push_back({std::move(k.row), k.row_array, std::move(k.values)});
                }
                st.key_prefix = fmt::format("{}/{}", id, t);
                q.uses |= term.request_uses;
                q.level = std::max(q.level, term.level + 1);
                q.terms.push_back(std::move(st));
            }
        }
        if (src.errors.size() != errors_before || src.failed) {
            return -1;
        }
        if (q.level > kMaxLevel) {
            src.errors.push_back({stmt.span, ErrorCode::kRulesUnsupported,
                                  fmt::format("subqueries nested more than {} deep; expected fewer levels", kMaxLevel)});
            return -1;
        }
        q.per_subscription = (q.uses & kUsesSubscription) != 0;
        for (std::size_t i = 0; i < m_out.subqueries.size(); ++i) {
            if (same_subquery(m_out.subqueries[i], q)) {
                return static_cast<int>(i);
            }
        }
        m_out.subqueries.push_back(std::move(q));
        return static_cast<int>(m_out.subqueries.size()) - 1;
    }

    // SELECT <value> [FROM json_each(...)] [WHERE ...]: request side only.
    void request_subquery(const SelectStatement& stmt, Source& src, ExprCompiler& compiler, StreamSubquery& q) {
        unsigned uses = 0;
        q.output = compiler.compile(stmt.items[0].expr, uses);
        if (stmt.where) {
            if (const Node* inner = nested_subquery(*stmt.where)) {
                src.errors.push_back({inner->span, ErrorCode::kRulesUnsupported,
                                      fmt::format("{} in a subquery without a table; expected conditions on request "
                                                  "values (a subquery from a table can use subqueries)",
                                                  quote(src.sql, inner->span))});
                return;
            }
            SubqueryTerm term;
            term.request_filters.push_back(compiler.compile(*stmt.where, uses));
            q.terms.push_back(std::move(term));
        } else {
            q.terms.emplace_back();
        }
        q.uses |= uses & (kUsesAuth | kUsesClient | kUsesSubscription);
    }

    // ---- stream queries

    void stream_query(const YAML::Node& node, const std::string& path, int query_index, const std::string& label) {
        // m_compiled is keyed by statements of this query's parse, which dies with this call.
        m_compiled.clear();
        struct ClearCompiled {
            std::map<const SelectStatement*, int>& map;
            ~ClearCompiled() { map.clear(); }
        } clear_compiled{m_compiled};
        Source src{node, node.Scalar(), path, {}, false};
        auto parsed = parse_select(src.sql, Dialect::kStreams);
        src.errors = std::move(parsed.errors);
        if (m_edition < 3) {
            for (const auto& [feature, span] : parsed.features) {
                src.errors.push_back({span, ErrorCode::kRulesUnsupported,
                                      fmt::format("{} needs config: edition: 3; expected edition 3, or no {} in "
                                                  "edition 2",
                                                  feature_name(feature), feature_name(feature))});
            }
        }
        if (!parsed.statement) {
            m_ctx.report_sql(node, src.sql, path, src.errors);
            return;
        }
        const SelectStatement& stmt = *parsed.statement;
        if (!stmt.from || stmt.from->is_function) {
            src.errors.push_back({stmt.from ? stmt.from->span : stmt.select_span, ErrorCode::kRulesSqlSyntax,
                                  "a stream query reads a table; expected SELECT <columns> FROM <table> [WHERE ...]"});
            m_ctx.report_sql(node, src.sql, path, src.errors);
            return;
        }
        Shaped shaped;
        if (!shape(stmt, src, shaped)) {
            m_ctx.report_sql(node, src.sql, path, src.errors);
            return;
        }
        NameScope scope;
        scope.streams = true;
        scope.kind = NameScope::Kind::kParameterTable;
        scope.table = shaped.root.parts.back();
        scope.schema = shaped.root.parts.size() == 2 ? shaped.root.parts[0] : "";
        scope.alias = shaped.root.alias;
        ExprCompiler compiler(src.sql, scope, src.errors);
        DataQuery dq;
        dq.index = query_index;
        dq.table = shaped.root.name();
        dq.output_table = shaped.root.ref();
        dq.sql = src.sql;
        dq.label = label;
        columns(stmt, shaped.root, src, compiler, dq);
        // Variants: OR alternatives grouped by their row side (filters and parameter expressions).
        struct Variant {
            std::vector<CExpr> filters;
            std::vector<std::pair<CExpr, bool>> params;  // row expression, row array
            std::vector<std::string> names;
            std::vector<StreamResolver> resolvers;
        };
        std::vector<Variant> variants;
        bool dangerous = false;
        for (const auto& atoms : shaped.terms) {
            TermOut term;
            for (const Node* atom : atoms) {
                term_atom(*atom, src, compiler, term);
            }
            Variant v;
            v.filters = std::move(term.row_filters);
            StreamResolver r;
            r.request_filters = std::move(term.request_filters);
            r.memberships = std::move(term.memberships);
            r.query = label;
            for (auto& k : term.keys) {
                std::size_t p = 0;
                while (p < v.params.size() &&
                       !(v.params[p].second == k.row_array && same_expr(v.params[p].first, k.row))) {
                    ++p;
                }
                if (p == v.params.size()) {
                    v.params.emplace_back(std::move(k.row), k.row_array);
                    v.names.push_back(k.text);
                    r.params.emplace_back();
                }
                r.params[p].push_back(std::move(k.values));
            }
            if ((term.request_uses & kUsesClient) != 0 && (term.request_uses & kUsesAuth) == 0) {
                dangerous = true;
            }
            bool merged = false;
            for (auto& existing : variants) {
                if (same_exprs(existing.filters, v.filters) &&
                    same_list(existing.params, v.params, [](const auto& a, const auto& b) {
                        return a.second == b.second && same_expr(a.first, b.first);
                    })) {
                    existing.resolvers.push_back(std::move(r));
                    merged = true;
                    break;
                }
            }
            if (!merged) {
                v.resolvers.push_back(std::move(r));
                variants.push_back(std::move(v));
            }
        }
        const bool had_errors = !src.errors.empty() || src.failed;
        drop_repeats(src.errors);
        m_ctx.report_sql(node, src.sql, path, src.errors);
        if (dangerous && !m_accept_dangerous && !had_errors) {
            m_ctx.report(node.Mark(), path, ErrorCode::kRulesClientParameter,
                         "this query gives rows to any user from subscription or connection parameters alone, which "
                         "the client sets to anything; expected a condition on auth.user_id() or "
                         "auth.parameter(...) too (or accept_potentially_dangerous_queries: true on the stream if "
                         "this is intended)",
                         Severity::kWarning);
        }
        if (had_errors) {
            return;
        }
        Stream& stream = m_out.streams[static_cast<std::size_t>(m_stream_index)];
        for (auto& v : variants) {
            Definition def;
            def.name = fmt::format("{}|{}", m_stream_name, m_next_variant++);
            def.priority = stream.priority;
            def.params = v.names;
            def.stream = m_stream_index;
            const int def_index = static_cast<int>(m_out.definitions.size());
            DataQuery q = dq;
            q.definition = def_index;
            DataTerm term;
            term.filters = std::move(v.filters);
            bool simple = true;
            for (std::size_t p = 0; p < v.params.size(); ++p) {
                term.bindings.push_back({static_cast<int>(p), std::move(v.params[p].first), v.params[p].second});
                simple = simple && !v.params[p].second;
            }
            q.terms.push_back(std::move(term));
            q.simple = simple;
            m_out.data.push_back(std::move(q));
            const int dq_index = static_cast<int>(m_out.data.size()) - 1;
            def.data_queries.push_back(dq_index);
            m_out.tables[dq.table.to_string()].data.push_back(dq_index);
            m_out.definitions.push_back(std::move(def));
            stream.variants.push_back({def_index, std::move(v.resolvers)});
        }
    }

    void columns(const SelectStatement& stmt, const QueryTable& root, Source& src, ExprCompiler& compiler,
                 DataQuery& dq) {
        bool has_star = false;
        bool has_id = false;
        for (const auto& item : stmt.items) {
            OutputColumn col;
            if (item.star) {
                if (!item.star_qualifier.empty() && item.star_qualifier != root.ref()) {
                    src.errors.push_back({item.span, ErrorCode::kRulesUnknownName,
                                          fmt::format("unknown table or alias '{}' in {}; expected '{}.*' or '*'",
                                                      item.star_qualifier, quote(src.sql, item.span), root.ref())});
                }
                col.star = true;
                has_star = true;
                dq.columns.push_back(std::move(col));
                continue;
            }
            if (const Node* inner = nested_subquery(item.expr)) {
                src.errors.push_back({inner->span, ErrorCode::kRulesWrongContext,
                                      fmt::format("{}: a subquery cannot be selected; expected table columns",
                                                  quote(src.sql, inner->span))});
                continue;
            }
            unsigned uses = 0;
            col.expr = compiler.compile(item.expr, uses);
            if ((uses & kUsesRequest) != 0) {
                src.errors.push_back({item.span, ErrorCode::kRulesWrongContext,
                                      fmt::format("{} selects a request value; expected table columns (every "
                                                  "client shares the rows of a bucket)",
                                                  quote(src.sql, item.span))});
            }
            col.name = output_name(item);
            if (col.name.empty()) {
                src.errors.push_back({item.span, ErrorCode::kRulesMissingAlias,
                                      fmt::format("{} has no name; expected {} AS <column name>",
                                                  quote(src.sql, item.span), quote(src.sql, item.span))});
            }
            has_id = has_id || col.name == "id";
            dq.columns.push_back(std::move(col));
        }
        if (stmt.items.empty()) {
            src.errors.push_back({stmt.select_span, ErrorCode::kRulesMissingId,
                                  "a stream query selects no columns; expected * or a column list including id"});
        } else if (!has_star && !has_id) {
            const Span items{stmt.items.front().span.begin, stmt.items.back().span.end};
            src.errors.push_back({items, ErrorCode::kRulesMissingId,
                                  fmt::format("the output columns {} have no id; expected an id column (e.g. "
                                              "<key column> AS id)",
                                              quote(src.sql, items))});
        }
        dq.star_only = dq.columns.size() == 1 && dq.columns[0].star;
    }

    // ---- finishing: which subqueries are read, the table index

    void mark_used(const ValueSet& set) {
        if (set.kind != SetKind::kSubquery) {
            return;
        }
        StreamSubquery& q = m_out.subqueries[static_cast<std::size_t>(set.subquery)];
        if (q.used) {
            return;
        }
        q.used = true;
        m_out.max_level = std::max(m_out.max_level, q.level);
        for (const auto& t : q.terms) {
            for (const auto& m : t.memberships) {
                mark_used(m.set);
            }
            for (const auto& k : t.keys) {
                mark_used(k.values);
            }
        }
    }

    void finish() {
        for (const auto& s : m_out.streams) {
            for (const auto& v : s.variants) {
                for (const auto& r : v.resolvers) {
                    for (const auto& m : r.memberships) {
                        mark_used(m.set);
                    }
                    for (const auto& sets : r.params) {
                        for (const auto& set : sets) {
                            mark_used(set);
                        }
                    }
                }
            }
        }
        for (std::size_t i = 0; i < m_out.subqueries.size(); ++i) {
            const auto& q = m_out.subqueries[i];
            if (q.used && q.kind == SubqueryKind::kTable) {
                m_out.tables[q.table.to_string()].subqueries.push_back(static_cast<int>(i));
            }
        }
    }

    CompileContext& m_ctx;
    Compiled& m_out;
    int m_edition = 3;
    WithMap m_global;
    const WithMap* m_local = nullptr;  // the with: queries of the stream (or with: query) being compiled
    std::string m_stream_name;
    std::string m_id_base;  // inline subquery ids: "<stream or with id>.<n>"
    int m_stream_index = -1;
    int m_next_inline = 0;
    int m_next_variant = 0;
    bool m_accept_dangerous = false;
    std::deque<Node> m_synth;  // nodes made for joins; stable addresses, live for the whole compile
    // Inline subqueries of the stream query being compiled (index or -1), by statement: an atom shared
    // by several OR alternatives is compiled once. Cleared per query (the statements die with it).
    std::map<const SelectStatement*, int> m_compiled;
};

}  // namespace

void compile_streams(CompileContext& ctx, int edition, const YAML::Node* with, const YAML::Node& streams,
                     Compiled& out) {
    StreamCompiler compiler(ctx, out, edition);
    compiler.run(with, streams);
}

}  // namespace sluice::config::rules::detail
