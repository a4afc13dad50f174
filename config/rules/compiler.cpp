// Compiles bucket_definitions: YAML walk, then each parameter and data query from AST to the
// match terms of detail/compiled.h, collecting every problem in one pass.
#include <algorithm>
#include <functional>

#include <fmt/format.h>

#include "config/rules/detail/compiled.h"
#include "config/rules/detail/expr_compiler.h"
#include "config/rules/detail/stream_compiler.h"
#include "config/rules/detail/yaml_context.h"
#include "config/rules/parser.h"

namespace sluice::config::rules {

namespace detail {
namespace {

using protocol::ErrorCode;

constexpr std::size_t kMaxTerms = 64;

// Cheap classification of an AST subtree before compiling: which kinds of names it mentions.
unsigned classify(const Node& n, bool in_table_scope) {
    unsigned u = 0;
    if (n.kind == NodeKind::kName) {
        const auto& q = n.names[0];
        if (n.names.size() >= 2 && q == "bucket") {
            u |= kUsesBucket;
        } else if (n.names.size() >= 2 && (q == "token_parameters" || q == "user_parameters")) {
            u |= kUsesRequest;
        } else if (in_table_scope) {
            u |= kUsesRow;
        }
    } else if (n.kind == NodeKind::kCall && n.names.size() == 2 && n.names[0] == "request") {
        u |= kUsesRequest;
    }
    for (const auto& a : n.args) {
        u |= classify(a, in_table_scope);
    }
    return u;
}

// Disjunctive normal form over AND/OR, expanding only subtrees for which `split` says so.
std::vector<std::vector<const Node*>> dnf(const Node& n, const std::function<bool(const Node&)>& split) {
    if (n.kind == NodeKind::kBinary && (n.op == BinaryOp::kAnd || n.op == BinaryOp::kOr) && split(n)) {
        auto left = dnf(n.args[0], split);
        auto right = dnf(n.args[1], split);
        if (n.op == BinaryOp::kOr) {
            left.insert(left.end(), right.begin(), right.end());
            return left;
        }
        std::vector<std::vector<const Node*>> out;
        for (const auto& l : left) {
            for (const auto& r : right) {
                auto term = l;
                term.insert(term.end(), r.begin(), r.end());
                out.push_back(std::move(term));
                if (out.size() > kMaxTerms) {
                    return out;
                }
            }
        }
        return out;
    }
    return {{&n}};
}

bool is_bucket_ref(const Node& n) { return n.kind == NodeKind::kName && n.names.size() == 2 && n.names[0] == "bucket"; }

std::string output_name(const SelectItem& item) {
    if (!item.alias.empty()) {
        return item.alias;
    }
    if (item.expr.kind == NodeKind::kName) {
        return item.expr.names.back();
    }
    return {};
}

class DefinitionCompiler {
public:
    DefinitionCompiler(CompileContext& ctx, Compiled& out) : m_ctx(ctx), m_out(out) {}

    void definitions(const YAML::Node& node) {
        if (!node.IsMap()) {
            m_ctx.report(node.Mark(), "bucket_definitions", ErrorCode::kRulesStructure,
                         "expected a mapping of bucket names to definitions");
            return;
        }
        for (const auto& entry : node) {
            definition(entry.first, entry.second);
        }
    }

private:
    void definition(const YAML::Node& key, const YAML::Node& node) {
        const std::string name = key.Scalar();
        const std::string path = "bucket_definitions." + name;
        if (name.empty() || name.find_first_of("[]\"/# \t\n") != std::string::npos) {
            m_ctx.report(key.Mark(), path, ErrorCode::kRulesStructure,
                         fmt::format("bucket name '{}' is not valid; expected a name without spaces, quotes, "
                                     "brackets, '/' or '#'",
                                     name));
        }
        if (!node.IsMap()) {
            m_ctx.report(node.Mark(), path, ErrorCode::kRulesStructure,
                         "expected a mapping with 'data' and optional 'parameters', 'priority'");
            return;
        }
        Definition def;
        def.name = name;
        const int def_index = static_cast<int>(m_out.definitions.size());
        bool accept_dangerous = false;
        YAML::Node parameters;
        YAML::Node data;
        bool has_parameters = false;
        bool has_data = false;
        for (const auto& entry : node) {
            const std::string k = entry.first.Scalar();
            const YAML::Node& v = entry.second;
            if (k == "parameters") {
                parameters.reset(v);
                has_parameters = true;
            } else if (k == "data") {
                data.reset(v);
                has_data = true;
            } else if (k == "priority") {
                int p = -1;
                if (!v.IsScalar() || !YAML::convert<int>::decode(v, p) || p < 0 || p > 3) {
                    m_ctx.report(v.Mark(), path + ".priority", ErrorCode::kRulesStructure,
                                 fmt::format("priority '{}' is not valid; expected 0, 1, 2 or 3 (lower is synced "
                                             "first; default 3)",
                                             v.IsScalar() ? v.Scalar() : std::string("...")));
                } else {
                    def.priority = p;
                }
            } else if (k == "accept_potentially_dangerous_queries") {
                if (!v.IsScalar() || !YAML::convert<bool>::decode(v, accept_dangerous)) {
                    m_ctx.report(v.Mark(), path + "." + k, ErrorCode::kRulesStructure,
                                 fmt::format("'{}' is not a boolean; expected true or false",
                                             v.IsScalar() ? v.Scalar() : std::string("...")));
                }
            } else {
                m_ctx.report(entry.first.Mark(), path + "." + k, ErrorCode::kRulesUnknownKey,
                             fmt::format("unknown key '{}' in a bucket definition; expected data, parameters, "
                                         "priority or accept_potentially_dangerous_queries{}",
                                         k,
                                         CompileContext::suggestion(k, {"data", "parameters", "priority",
                                                                        "accept_potentially_dangerous_queries"})));
            }
        }
        // Parameter queries first: they define the bucket parameters.
        bool params_known = true;
        bool have_names = false;
        if (has_parameters) {
            def.has_parameters_key = true;
            int next_index = 0;
            for_each_query(parameters, path + ".parameters", [&](const YAML::Node& q, const std::string& qpath) {
                std::vector<std::string> names;
                bool parsed = false;
                auto pq = parameter_query(q, qpath, def_index, next_index++, accept_dangerous, names, parsed);
                if (!parsed) {
                    params_known = false;
                    return;
                }
                if (!have_names) {
                    def.params = names;
                    have_names = true;
                } else if (pq) {
                    auto sorted_a = def.params;
                    auto sorted_b = names;
                    std::sort(sorted_a.begin(), sorted_a.end());
                    std::sort(sorted_b.begin(), sorted_b.end());
                    if (sorted_a != sorted_b) {
                        m_ctx.report(q.Mark(), qpath, ErrorCode::kRulesParameterMismatch,
                                     fmt::format("this parameter query outputs ({}) but the first one outputs ({}); "
                                                 "expected the same columns in every parameter query of '{}'",
                                                 fmt::join(names, ", "), fmt::join(def.params, ", "), name));
                        return;
                    }
                }
                if (!pq) {
                    return;
                }
                // Map output names to parameter indexes.
                for (auto& o : pq->outputs) {
                    o.param = static_cast<int>(std::find(def.params.begin(), def.params.end(), names[static_cast<std::size_t>(o.param)]) -
                                               def.params.begin());
                }
                pq->stored_in_order = pq->kind == ParameterKind::kTable;
                for (std::size_t i = 0; i < pq->outputs.size(); ++i) {
                    if (!pq->outputs[i].row_side || pq->outputs[i].param != static_cast<int>(i)) {
                        pq->stored_in_order = false;
                    }
                }
                def.parameter_queries.push_back(std::move(*pq));
            });
        }
        if (!has_data) {
            m_ctx.report(key.Mark(), path, ErrorCode::kRulesStructure,
                         "missing 'data': a bucket needs at least one data query");
        } else {
            int next_index = 0;
            for_each_query(data, path + ".data", [&](const YAML::Node& q, const std::string& qpath) {
                data_query(q, qpath, def_index, next_index++, def, params_known);
            });
        }
        m_out.definitions.push_back(std::move(def));
    }

    void for_each_query(const YAML::Node& node, const std::string& path,
                        const std::function<void(const YAML::Node&, const std::string&)>& fn) {
        if (node.IsScalar()) {
            fn(node, path);
            return;
        }
        if (!node.IsSequence() || node.size() == 0) {
            m_ctx.report(node.Mark(), path, ErrorCode::kRulesStructure,
                         "expected a query or a list of queries (SELECT ...)");
            return;
        }
        for (std::size_t i = 0; i < node.size(); ++i) {
            const auto qpath = fmt::format("{}[{}]", path, i);
            if (!node[i].IsScalar()) {
                m_ctx.report(node[i].Mark(), qpath, ErrorCode::kRulesStructure, "expected a query (SELECT ...) as text");
                continue;
            }
            fn(node[i], qpath);
        }
    }

    void report(const YAML::Node& node, const std::string& sql, const std::string& path, Span span, ErrorCode code,
                std::string message, Severity severity = Severity::kError) {
        m_ctx.report_sql(node, sql, path, {{span, code, std::move(message)}}, severity);
    }

    std::optional<ParameterQuery> parameter_query(const YAML::Node& node, const std::string& path, int def_index,
                                                  int index, bool accept_dangerous, std::vector<std::string>& names,
                                                  bool& parsed_ok) {
        const std::string sql = node.Scalar();
        auto parsed = parse_select(sql);
        std::vector<SqlError> errors = std::move(parsed.errors);
        if (!parsed.statement) {
            m_ctx.report_sql(node, sql, path, errors);
            return std::nullopt;
        }
        parsed_ok = true;
        const SelectStatement& stmt = *parsed.statement;
        ParameterQuery pq;
        pq.definition = def_index;
        pq.index = index;
        pq.sql = sql;
        NameScope scope;
        scope.kind = NameScope::Kind::kParameterRequest;
        unsigned all_uses = 0;
        ExprCompiler compiler(sql, scope, errors);
        if (stmt.from) {
            const auto& from = *stmt.from;
            if (from.is_function) {
                const Node& call = from.call;
                if (call.names.size() != 1 || call.names[0] != "json_each") {
                    errors.push_back({call.span, ErrorCode::kRulesUnsupported,
                                      fmt::format("{} cannot be used in FROM; expected a table or json_each(...)",
                                                  quote(sql, call.span))});
                } else if (call.args.size() != 1) {
                    errors.push_back({call.span, ErrorCode::kRulesWrongArguments,
                                      fmt::format("json_each() takes 1 argument, got {} in {}; expected "
                                                  "json_each(<request JSON array>)",
                                                  call.args.size(), quote(sql, call.span))});
                } else {
                    unsigned uses = 0;
                    pq.each_source = compiler.compile(call.args[0], uses);
                    all_uses |= uses;
                }
                pq.kind = ParameterKind::kJsonEach;
                scope.kind = NameScope::Kind::kParameterEach;
                scope.each_name = from.alias.empty() ? "json_each" : from.alias;
            } else {
                pq.kind = ParameterKind::kTable;
                scope.kind = NameScope::Kind::kParameterTable;
                scope.table = from.table.back();
                scope.schema = from.table.size() == 2 ? from.table[0] : "";
                scope.alias = from.alias;
                pq.table = TableName{from.table.size() == 2 ? from.table[0] : "public", from.table.back()};
            }
        }
        // Outputs.
        for (const auto& item : stmt.items) {
            if (item.star) {
                errors.push_back({item.span, ErrorCode::kRulesWrongContext,
                                  fmt::format("{} is not allowed in a parameter query; expected the columns that "
                                              "become bucket parameters",
                                              quote(sql, item.span))});
                continue;
            }
            unsigned uses = 0;
            ParameterOutput out;
            out.expr = compiler.compile(item.expr, uses);
            all_uses |= uses;
            const std::string oname = output_name(item);
            if (oname.empty()) {
                errors.push_back({item.span, ErrorCode::kRulesMissingAlias,
                                  fmt::format("{} has no name; expected {} AS <parameter name>",
                                              quote(sql, item.span), quote(sql, item.span))});
                continue;
            }
            if (std::find(names.begin(), names.end(), oname) != names.end()) {
                errors.push_back({item.span, ErrorCode::kRulesParameterMismatch,
                                  fmt::format("parameter '{}' is output twice; expected distinct names", oname)});
                continue;
            }
            if (pq.kind == ParameterKind::kTable) {
                if ((uses & kUsesRow) && (uses & kUsesRequest)) {
                    errors.push_back({item.span, ErrorCode::kRulesWrongContext,
                                      fmt::format("{} mixes table columns and request values; expected either a "
                                                  "column expression or a request expression",
                                                  quote(sql, item.span))});
                }
                out.row_side = (uses & kUsesRequest) == 0;
            }
            out.param = static_cast<int>(names.size());
            names.push_back(oname);
            pq.outputs.push_back(std::move(out));
        }
        // WHERE.
        if (stmt.where) {
            const Node& where = *stmt.where;
            if (pq.kind != ParameterKind::kTable) {
                unsigned uses = 0;
                pq.where = compiler.compile(where, uses);
                pq.has_where = true;
                all_uses |= uses;
            } else {
                auto terms = dnf(where, [](const Node& n) {
                    const unsigned u = classify(n, true);
                    return (u & kUsesRow) && (u & kUsesRequest);
                });
                if (terms.size() > kMaxTerms) {
                    errors.push_back({where.span, ErrorCode::kRulesUnsupported,
                                      fmt::format("WHERE has more than {} OR alternatives; expected a simpler "
                                                  "condition",
                                                  kMaxTerms)});
                    terms.clear();
                }
                for (std::size_t t = 0; t < terms.size(); ++t) {
                    LookupTerm term;
                    term.key_prefix = fmt::format("/{}/{}", index, t);
                    for (const Node* atom : terms[t]) {
                        lookup_atom(*atom, sql, compiler, term, errors, all_uses);
                    }
                    pq.terms.push_back(std::move(term));
                }
            }
        } else if (pq.kind == ParameterKind::kTable) {
            LookupTerm term;
            term.key_prefix = fmt::format("/{}/0", index);
            pq.terms.push_back(std::move(term));
        }
        const bool had_errors = !errors.empty();
        m_ctx.report_sql(node, sql, path, errors);
        if (const Span* client = compiler.first_client_use();
            client != nullptr && !accept_dangerous && (all_uses & kUsesAuth) == 0) {
            report(node, sql, path, *client, ErrorCode::kRulesClientParameter,
                   fmt::format("{} is supplied by the client and decides access here: any user can set it to "
                               "anything; expected request.user_id() or request.jwt() claims to decide access (or "
                               "set accept_potentially_dangerous_queries: true if this is intended)",
                               quote(sql, *client)),
                   Severity::kWarning);
        }
        if (had_errors) {
            return std::nullopt;
        }
        return pq;
    }

    void lookup_atom(const Node& atom, const std::string& sql, ExprCompiler& compiler, LookupTerm& term,
                     std::vector<SqlError>& errors, unsigned& all_uses) {
        unsigned uses = 0;
        CExpr whole = compiler.compile(atom, uses);
        all_uses |= uses;
        if ((uses & kUsesRequest) == 0) {
            term.row_filters.push_back(std::move(whole));
            return;
        }
        if ((uses & kUsesRow) == 0) {
            term.request_filters.push_back(std::move(whole));
            return;
        }
        auto side = [&](const Node& n, CExpr& out) {
            out = whole.args[&n == &atom.args[0] ? 0 : 1];
            return classify(n, true);
        };
        const bool binary_eq = atom.kind == NodeKind::kBinary && atom.op == BinaryOp::kEq;
        if (binary_eq || atom.kind == NodeKind::kIn) {
            CExpr l;
            CExpr r;
            const unsigned ul = side(atom.args[0], l);
            const unsigned ur = side(atom.args[1], r);
            const bool l_row = (ul & kUsesRequest) == 0;
            const bool l_req = (ul & kUsesRow) == 0 && (ul & kUsesRequest);
            const bool r_row = (ur & kUsesRequest) == 0;
            const bool r_req = (ur & kUsesRow) == 0 && (ur & kUsesRequest);
            KeyPart part;
            if (binary_eq && l_row && r_req) {
                part = {KeyKind::kEqual, std::move(l), std::move(r)};
            } else if (binary_eq && l_req && r_row) {
                part = {KeyKind::kEqual, std::move(r), std::move(l)};
            } else if (!binary_eq && l_req && r_row) {
                part = {KeyKind::kRowArray, std::move(r), std::move(l)};
            } else if (!binary_eq && l_row && r_req) {
                part = {KeyKind::kRequestArray, std::move(l), std::move(r)};
            } else {
                errors.push_back({atom.span, ErrorCode::kRulesInvalidMatch,
                                  fmt::format("{} mixes table columns and request values on one side; expected "
                                              "<column> = <request value>, <request value> IN <array column> or "
                                              "<column> IN <request array>",
                                              quote(sql, atom.span))});
                return;
            }
            term.keys.push_back(std::move(part));
            return;
        }
        errors.push_back({atom.span, ErrorCode::kRulesInvalidMatch,
                          fmt::format("{} compares table columns with request values in a way that cannot be "
                                      "indexed; expected <column> = <request value>, <request value> IN <array "
                                      "column> or <column> IN <request array>",
                                      quote(sql, atom.span))});
    }

    void data_query(const YAML::Node& node, const std::string& path, int def_index, int index, const Definition& def,
                    bool params_known) {
        const std::string sql = node.Scalar();
        auto parsed = parse_select(sql);
        std::vector<SqlError> errors = std::move(parsed.errors);
        if (!parsed.statement) {
            m_ctx.report_sql(node, sql, path, errors);
            return;
        }
        const SelectStatement& stmt = *parsed.statement;
        DataQuery dq;
        dq.definition = def_index;
        dq.index = index;
        dq.sql = sql;
        if (!stmt.from) {
            errors.push_back({stmt.select_span, ErrorCode::kRulesSqlSyntax,
                              "a data query needs FROM <table>; expected SELECT <columns> FROM <table> [WHERE ...]"});
            m_ctx.report_sql(node, sql, path, errors);
            return;
        }
        const auto& from = *stmt.from;
        if (from.is_function) {
            errors.push_back({from.span, ErrorCode::kRulesWrongContext,
                              fmt::format("a data query reads a table, not {}; expected FROM <table> (json_each "
                                          "belongs in parameter queries)",
                                          quote(sql, from.span))});
            m_ctx.report_sql(node, sql, path, errors);
            return;
        }
        dq.table = TableName{from.table.size() == 2 ? from.table[0] : "public", from.table.back()};
        dq.output_table = from.alias.empty() ? from.table.back() : from.alias;
        NameScope scope;
        scope.kind = NameScope::Kind::kData;
        scope.table = from.table.back();
        scope.schema = from.table.size() == 2 ? from.table[0] : "";
        scope.alias = from.alias;
        scope.bucket_params = &def.params;
        scope.definition = def.name;
        scope.lenient_bucket = !params_known;
        ExprCompiler compiler(sql, scope, errors);
        bool has_star = false;
        bool has_id = false;
        for (const auto& item : stmt.items) {
            OutputColumn col;
            if (item.star) {
                const std::string& own = from.alias.empty() ? from.table.back() : from.alias;
                if (!item.star_qualifier.empty() && item.star_qualifier != own) {
                    errors.push_back({item.span, ErrorCode::kRulesUnknownName,
                                      fmt::format("unknown table or alias '{}' in {}; expected '{}.*' or '*'",
                                                  item.star_qualifier, quote(sql, item.span), own)});
                }
                col.star = true;
                has_star = true;
                dq.columns.push_back(std::move(col));
                continue;
            }
            unsigned uses = 0;
            col.expr = compiler.compile(item.expr, uses);
            if (uses & kUsesBucket) {
                errors.push_back({item.span, ErrorCode::kRulesWrongContext,
                                  fmt::format("{} selects a bucket parameter; expected table columns (select the "
                                              "column that matches it instead)",
                                              quote(sql, item.span))});
            }
            col.name = output_name(item);
            if (col.name.empty()) {
                errors.push_back({item.span, ErrorCode::kRulesMissingAlias,
                                  fmt::format("{} has no name; expected {} AS <column name>", quote(sql, item.span),
                                              quote(sql, item.span))});
            }
            has_id = has_id || col.name == "id";
            dq.columns.push_back(std::move(col));
        }
        if (stmt.items.empty()) {
            errors.push_back({stmt.select_span, ErrorCode::kRulesMissingId,
                              "a data query selects no columns; expected * or a column list including id"});
        } else if (!has_star && !has_id) {
            const Span items{stmt.items.front().span.begin, stmt.items.back().span.end};
            errors.push_back({items, ErrorCode::kRulesMissingId,
                              fmt::format("the output columns {} have no id; expected an id column (e.g. "
                                          "<key column> AS id)",
                                          quote(sql, items))});
        }
        dq.star_only = dq.columns.size() == 1 && dq.columns[0].star;
        // WHERE -> terms.
        std::vector<std::vector<const Node*>> terms;
        if (stmt.where) {
            terms = dnf(*stmt.where, [](const Node& n) { return (classify(n, true) & kUsesBucket) != 0; });
            if (terms.size() > kMaxTerms) {
                errors.push_back({stmt.where->span, ErrorCode::kRulesUnsupported,
                                  fmt::format("WHERE has more than {} OR alternatives; expected a simpler condition",
                                              kMaxTerms)});
                terms.clear();
            }
        } else {
            terms.push_back({});
        }
        bool reported_missing = false;
        bool suppress_missing = false;  // a bucket reference was already reported as wrong
        for (const auto& atoms : terms) {
            DataTerm term;
            std::vector<bool> bound(def.params.size(), false);
            for (const Node* atom : atoms) {
                unsigned uses = 0;
                CExpr e = compiler.compile(*atom, uses);
                if ((uses & kUsesBucket) == 0) {
                    term.filters.push_back(std::move(e));
                    continue;
                }
                const bool eq = atom->kind == NodeKind::kBinary && atom->op == BinaryOp::kEq;
                const bool in = atom->kind == NodeKind::kIn;
                auto bucket_free = [](const Node& n) { return (classify(n, true) & kUsesBucket) == 0; };
                if (eq && is_bucket_ref(atom->args[1]) && bucket_free(atom->args[0])) {
                    term.bindings.push_back({e.args[1].index, std::move(e.args[0]), false});
                } else if (eq && is_bucket_ref(atom->args[0]) && bucket_free(atom->args[1])) {
                    term.bindings.push_back({e.args[0].index, std::move(e.args[1]), false});
                } else if (in && is_bucket_ref(atom->args[0]) && bucket_free(atom->args[1])) {
                    term.bindings.push_back({e.args[0].index, std::move(e.args[1]), true});
                } else if (in && is_bucket_ref(atom->args[1])) {
                    errors.push_back({atom->span, ErrorCode::kRulesInvalidMatch,
                                      fmt::format("{}: a bucket parameter is one value, not an array; expected "
                                                  "<column> = bucket.{} or bucket.{} IN <array column>",
                                                  quote(sql, atom->span), atom->args[1].names[1],
                                                  atom->args[1].names[1])});
                    suppress_missing = true;
                    continue;
                } else {
                    errors.push_back({atom->span, ErrorCode::kRulesInvalidMatch,
                                      fmt::format("{} uses a bucket parameter in a way that cannot be indexed; "
                                                  "expected <column expression> = bucket.<parameter> or "
                                                  "bucket.<parameter> IN <array column>",
                                                  quote(sql, atom->span))});
                    suppress_missing = true;
                    continue;
                }
                if (term.bindings.back().param >= 0) {
                    bound[static_cast<std::size_t>(term.bindings.back().param)] = true;
                } else {
                    term.bindings.pop_back();  // unknown parameter: already reported
                    suppress_missing = true;
                }
            }
            for (std::size_t p = 0; p < def.params.size() && params_known && !reported_missing && !suppress_missing;
                 ++p) {
                if (!bound[p]) {
                    const Span where_span = stmt.where ? stmt.where->span : stmt.select_span;
                    errors.push_back({where_span, ErrorCode::kRulesParameterNotUsed,
                                      fmt::format("the data query does not match bucket.{}{}; expected <column> = "
                                                  "bucket.{} (or bucket.{} IN <array column>) so rows can be "
                                                  "assigned to buckets",
                                                  def.params[p], terms.size() > 1 ? " in every OR alternative" : "",
                                                  def.params[p], def.params[p])});
                    reported_missing = true;
                }
            }
            dq.terms.push_back(std::move(term));
        }
        if (dq.terms.size() == 1) {
            const auto& t = dq.terms[0];
            std::vector<bool> seen(def.params.size(), false);
            dq.simple = t.bindings.size() == def.params.size();
            for (const auto& b : t.bindings) {
                if (b.in_array || seen[static_cast<std::size_t>(b.param)]) {
                    dq.simple = false;
                } else {
                    seen[static_cast<std::size_t>(b.param)] = true;
                }
            }
        }
        const bool had_errors = !errors.empty();
        m_ctx.report_sql(node, sql, path, errors);
        if (!had_errors) {
            m_out.data.push_back(std::move(dq));
            // Registered in the definition by index once it is stored.
            m_pending_data.push_back(static_cast<int>(m_out.data.size()) - 1);
        }
    }

public:
    std::vector<int> m_pending_data;

private:
    CompileContext& m_ctx;
    Compiled& m_out;
};

}  // namespace
}  // namespace detail

RuleSet::RuleSet(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
RuleSet::~RuleSet() = default;

CompileResult RuleSet::compile(std::string_view yaml, const std::string& file, const CompileOptions& options) {
    using protocol::ErrorCode;
    CompileResult result;
    auto impl = std::make_unique<Impl>();
    impl->options = options;
    detail::CompileContext ctx(yaml, file, result.diagnostics);
    YAML::Node root;
    try {
        root = YAML::Load(std::string(yaml));
    } catch (const YAML::Exception& e) {
        ctx.report(e.mark, "", ErrorCode::kRulesSyntax, e.msg + "; expected valid YAML");
        return result;
    }
    if (!root.IsMap()) {
        ctx.report(root.Mark(), "", ErrorCode::kRulesStructure,
                   "expected a mapping with sections (bucket_definitions, write_rules, config)");
        return result;
    }
    // The edition decides the dialect: 1 (or none) bucket_definitions; 2 and 3 also Sync Streams.
    int edition = 1;
    const YAML::Node& sections = root;  // const: a lookup must not insert a key (it would invalidate iterators)
    if (const YAML::Node config = sections["config"]; config && config.IsMap()) {
        if (const YAML::Node e = config["edition"]; e && e.IsScalar() && (e.Scalar() == "2" || e.Scalar() == "3")) {
            edition = e.Scalar()[0] - '0';
        }
    }
    const std::string_view top_level = edition >= 2 ? "bucket_definitions, streams, with, write_rules, config"
                                                    : "bucket_definitions, write_rules, config";
    detail::DefinitionCompiler definitions(ctx, *impl);
    bool has_definitions = false;
    YAML::Node streams;
    YAML::Node with;
    YAML::Mark streams_mark;
    bool has_streams = false;
    bool has_streams_key = false;  // also when rejected
    bool has_with = false;
    for (const auto& section : root) {
        const std::string key = section.first.Scalar();
        const YAML::Node& value = section.second;
        if (key == "bucket_definitions") {
            has_definitions = true;
            definitions.definitions(value);
        } else if (key == "write_rules") {
            compile_write_rules(ctx, value, impl->write_rules);
        } else if (key == "config") {
            if (!value.IsMap()) {
                ctx.report(value.Mark(), "config", ErrorCode::kRulesStructure,
                           "expected a mapping (edition: 1, 2 or 3)");
                continue;
            }
            for (const auto& c : value) {
                const std::string ck = c.first.Scalar();
                if (ck == "edition") {
                    const std::string e = c.second.IsScalar() ? c.second.Scalar() : std::string("...");
                    if (e != "1" && e != "2" && e != "3") {
                        ctx.report(c.second.Mark(), "config.edition", ErrorCode::kRulesUnsupported,
                                   fmt::format("edition '{}' is not supported; expected 1 (bucket_definitions), or 2 "
                                               "or 3 (Sync Streams, with bucket_definitions allowed too)",
                                               e));
                    }
                } else {
                    ctx.report(c.first.Mark(), "config." + ck, ErrorCode::kRulesUnknownKey,
                               fmt::format("unknown key '{}' in config; expected edition", ck));
                }
            }
        } else if (key == "streams" || key == "with") {
            has_streams_key = has_streams_key || key == "streams";
            if (edition < 2) {
                ctx.report(section.first.Mark(), key, ErrorCode::kRulesUnsupported,
                           fmt::format("'{}' (Sync Streams) needs config: edition: 3 in this file; expected "
                                       "config:\n  edition: 3",
                                       key));
                continue;
            }
            if (key == "streams") {
                streams.reset(value);
                streams_mark = section.first.Mark();
                has_streams = true;
            } else {
                with.reset(value);
                has_with = true;
                if (!sections["streams"]) {
                    ctx.report(section.first.Mark(), key, ErrorCode::kRulesStructure,
                               "with: queries are read by streams; expected a streams: section");
                }
            }
        } else {
            ctx.report(section.first.Mark(), key, ErrorCode::kRulesUnknownKey,
                       edition >= 2
                           ? fmt::format("unknown section '{}'; expected one of: {}{}", key, top_level,
                                         detail::CompileContext::suggestion(key, {"bucket_definitions", "streams",
                                                                                  "with", "write_rules", "config"}))
                           : fmt::format("unknown section '{}'; expected one of: {}{}", key, top_level,
                                         detail::CompileContext::suggestion(key, {"bucket_definitions", "write_rules",
                                                                                  "config"})));
        }
    }
    if (!has_definitions && !has_streams_key) {
        ctx.report(root.Mark(), "", ErrorCode::kRulesStructure,
                   edition >= 2 ? "no bucket_definitions or streams section: clients would receive nothing; expected "
                                  "streams:"
                                : "no bucket_definitions section: clients would receive nothing; expected "
                                  "bucket_definitions:");
    }
    // Attach data queries to their definitions and index by table.
    for (int idx : definitions.m_pending_data) {
        auto& dq = impl->data[static_cast<std::size_t>(idx)];
        impl->definitions[static_cast<std::size_t>(dq.definition)].data_queries.push_back(idx);
        impl->tables[dq.table.to_string()].data.push_back(idx);
    }
    for (std::size_t d = 0; d < impl->definitions.size(); ++d) {
        auto& def = impl->definitions[d];
        for (std::size_t q = 0; q < def.parameter_queries.size(); ++q) {
            auto& pq = def.parameter_queries[q];
            for (auto& t : pq.terms) {
                t.key_prefix = def.name + t.key_prefix;
            }
            if (pq.kind == detail::ParameterKind::kTable) {
                impl->tables[pq.table.to_string()].parameters.emplace_back(static_cast<int>(d), static_cast<int>(q));
            }
        }
    }
    if (has_streams) {
        detail::compile_streams(ctx, edition, has_with ? &with : nullptr, streams, *impl);
        // Stream variants are named "<stream>|<n>": a bucket definition may not take such a name.
        for (const auto& def : impl->definitions) {
            if (def.stream >= 0) {
                continue;
            }
            for (const auto& other : impl->definitions) {
                if (other.stream >= 0 && other.name == def.name) {
                    ctx.report(streams_mark, "streams", ErrorCode::kRulesStructure,
                               fmt::format("bucket definition '{}' has the name of a bucket of stream '{}'; "
                                           "expected distinct names",
                                           def.name, impl->streams[static_cast<std::size_t>(other.stream)].name));
                }
            }
        }
    }
    impl->index_tables();
    std::stable_sort(result.diagnostics.begin(), result.diagnostics.end(), [](const Diagnostic& a, const Diagnostic& b) {
        return std::pair(a.pos.line, a.pos.column) < std::pair(b.pos.line, b.pos.column);
    });
    if (!has_errors(result.diagnostics)) {
        result.rules = std::make_shared<const RuleSet>(std::move(impl));
    }
    return result;
}

std::vector<TableName> RuleSet::source_tables() const {
    std::vector<TableName> out;
    for (const auto& dq : m_impl->data) {
        if (std::find(out.begin(), out.end(), dq.table) == out.end()) {
            out.push_back(dq.table);
        }
    }
    for (const auto& t : parameter_tables()) {
        if (std::find(out.begin(), out.end(), t) == out.end()) {
            out.push_back(t);
        }
    }
    return out;
}

std::vector<TableName> RuleSet::parameter_tables() const {
    std::vector<TableName> out;
    for (const auto& def : m_impl->definitions) {
        for (const auto& pq : def.parameter_queries) {
            if (pq.kind == detail::ParameterKind::kTable && std::find(out.begin(), out.end(), pq.table) == out.end()) {
                out.push_back(pq.table);
            }
        }
    }
    for (const auto& q : m_impl->subqueries) {
        if (q.used && q.kind == detail::SubqueryKind::kTable && std::find(out.begin(), out.end(), q.table) == out.end()) {
            out.push_back(q.table);
        }
    }
    return out;
}

std::vector<std::string> RuleSet::definitions() const {
    std::vector<std::string> out;
    for (const auto& def : m_impl->definitions) {
        if (def.stream < 0) {
            out.push_back(def.name);
        }
    }
    return out;
}

std::vector<StreamDefinition> RuleSet::streams() const {
    std::vector<StreamDefinition> out;
    for (const auto& s : m_impl->streams) {
        StreamDefinition d{s.name, s.auto_subscribe, s.priority, {}};
        for (const auto& v : s.variants) {
            d.definitions.push_back(m_impl->definitions[static_cast<std::size_t>(v.definition)].name);
        }
        out.push_back(std::move(d));
    }
    return out;
}

std::vector<RuleSet::DataQueryInfo> RuleSet::data_queries() const {
    std::vector<DataQueryInfo> out;
    for (const auto& dq : m_impl->data) {
        out.push_back({m_impl->definitions[static_cast<std::size_t>(dq.definition)].name, dq.index, dq.table,
                       dq.output_table, dq.sql});
    }
    return out;
}

const WriteRules& RuleSet::write_rules() const { return m_impl->write_rules; }

}  // namespace sluice::config::rules
