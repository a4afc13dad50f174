// Shaping of Sync Streams queries: tables, join edges and OR alternatives (see detail/stream_shape.h).
#include "config/rules/detail/stream_shape.h"

#include <bit>
#include <memory>

#include <fmt/format.h>

#include "config/rules/detail/expr_compiler.h"

namespace sluice::config::rules::detail {

using protocol::ErrorCode;

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

namespace {

void flatten_and(const Node& n, std::vector<const Node*>& out) {
    if (n.kind == NodeKind::kBinary && n.op == BinaryOp::kAnd) {
        flatten_and(n.args[0], out);
        flatten_and(n.args[1], out);
        return;
    }
    out.push_back(&n);
}

}  // namespace

void touch_node(const Node& n, const std::vector<QueryTable>& tables, const WithRefTest& is_with_ref, Touch& t) {
    switch (n.kind) {
        case NodeKind::kName:
            if (n.names.size() == 1) {
                t.unqualified = true;
                t.tables |= 1U;  // the only table; with joins, reported as ambiguous
            } else {
                const std::string& q = n.names[n.names.size() - 2];
                const bool schema_ok = n.names.size() == 2;
                for (std::size_t i = 0; i < tables.size(); ++i) {
                    const bool match = tables[i].ref() == q &&
                                       (schema_ok || (tables[i].alias.empty() &&
                                                      n.names[0] == tables[i].name().schema));
                    if (match) {
                        t.tables |= 1U << i;
                    }
                }
                if (q == "auth" || q == "connection" || q == "subscription" || q == "request" ||
                    q == "token_parameters" || q == "user_parameters") {
                    t.request = true;
                }
            }
            return;
        case NodeKind::kCall:
            if (n.names.size() == 2) {
                t.request = true;
            }
            break;
        case NodeKind::kSubquery: t.subquery = true; return;
        case NodeKind::kIn:
            if (is_with_ref(n.args[1])) {
                t.subquery = true;
                touch_node(n.args[0], tables, is_with_ref, t);
                return;
            }
            break;
        default: break;
    }
    for (const auto& a : n.args) {
        touch_node(a, tables, is_with_ref, t);
    }
}

bool shape_query(const SelectStatement& stmt, std::string_view sql, const WithRefTest& is_with_ref,
                 std::vector<SqlError>& errors, std::deque<Node>& synth, Shaped& out) {
    const FromClause& from = *stmt.from;
    std::vector<QueryTable> tables;
    tables.push_back({from.table, from.alias, from.span});
    for (const auto& j : from.joins) {
        tables.push_back({j.table, j.alias, j.span});
    }
    if (tables.size() > 16) {
        errors.push_back({from.span, ErrorCode::kRulesUnsupported, "more than 15 joins; expected fewer"});
        return false;
    }
    for (std::size_t i = 0; i < tables.size(); ++i) {
        for (std::size_t k = 0; k < i; ++k) {
            if (tables[i].ref() == tables[k].ref()) {
                errors.push_back({tables[i].span, ErrorCode::kRulesUnsupported,
                                      fmt::format("table name '{}' is used twice; expected an alias "
                                                  "(INNER JOIN {} AS other ...)",
                                                  tables[i].ref(), tables[i].parts.back())});
                return false;
            }
        }
    }
    const bool joined = tables.size() > 1;
    // The table whose columns are selected.
    int root = -1;
    for (const auto& item : stmt.items) {
        int t = -1;
        if (item.star) {
            if (item.star_qualifier.empty()) {
                t = joined ? -2 : 0;
            } else {
                for (std::size_t i = 0; i < tables.size(); ++i) {
                    if (tables[i].ref() == item.star_qualifier) {
                        t = static_cast<int>(i);
                    }
                }
                if (t < 0 && !joined) {
                    t = 0;  // reported when the items are compiled
                }
            }
        } else {
            Touch touched;
            touch_node(item.expr, tables, is_with_ref, touched);
            if (touched.unqualified && joined) {
                t = -2;
            } else if (std::popcount(touched.tables) > 1) {
                t = -3;
            } else if (touched.tables != 0) {
                t = std::countr_zero(touched.tables);
            }
        }
        if (t == -2 || t == -3 || (t == -1 && item.star) || (root >= 0 && t >= 0 && t != root)) {
            errors.push_back(
                {item.span, ErrorCode::kRulesUnsupported,
                 fmt::format("{} in a query with INNER JOIN; expected the selected columns of one table, "
                             "qualified (e.g. {}.* or {}.id)",
                             quote(sql, item.span), tables[0].ref(), tables[0].ref())});
            return false;
        }
        if (t >= 0) {
            root = t;
        }
    }
    if (root < 0) {
        root = 0;
    }
    // Join edges: one `a.x = b.y` per join, with an earlier table; other ON conditions stay with
    // the joined table.
    struct Edge {
        int a = 0;
        const Node* a_col = nullptr;
        int b = 0;
        const Node* b_col = nullptr;
        Span span;
    };
    std::vector<Edge> edges;
    std::vector<std::vector<const Node*>> extra(tables.size());
    for (std::size_t j = 0; j < from.joins.size(); ++j) {
        const int me = static_cast<int>(j + 1);
        std::vector<const Node*> atoms;
        flatten_and(from.joins[j].on, atoms);
        bool found = false;
        for (const Node* atom : atoms) {
            auto column_table = [&](const Node& n) {
                if (n.kind != NodeKind::kName || n.names.size() < 2) {
                    return -1;
                }
                Touch t;
                touch_node(n, tables, is_with_ref, t);
                return std::popcount(t.tables) == 1 ? std::countr_zero(t.tables) : -1;
            };
            if (!found && atom->kind == NodeKind::kBinary && atom->op == BinaryOp::kEq) {
                const int l = column_table(atom->args[0]);
                const int r = column_table(atom->args[1]);
                if (l >= 0 && r >= 0 && ((l == me && r < me) || (r == me && l < me))) {
                    edges.push_back({l, &atom->args[0], r, &atom->args[1], atom->span});
                    found = true;
                    continue;
                }
            }
            Touch t;
            touch_node(*atom, tables, is_with_ref, t);
            if (t.subquery || (t.tables & ~(1U << me)) != 0 || t.unqualified) {
                errors.push_back(
                    {atom->span, ErrorCode::kRulesUnsupported,
                     fmt::format("{} in ON; expected <table>.<column> = {}.<column> with an earlier table, and "
                                 "other conditions on {} only",
                                 quote(sql, atom->span), tables[static_cast<std::size_t>(me)].ref(),
                                 tables[static_cast<std::size_t>(me)].ref())});
                return false;
            }
            extra[static_cast<std::size_t>(me)].push_back(atom);
        }
        if (!found) {
            errors.push_back({from.joins[j].on.span, ErrorCode::kRulesUnsupported,
                                  fmt::format("{} does not join {} on an equality; expected ON "
                                              "<table>.<column> = {}.<column>",
                                              quote(sql, from.joins[j].on.span),
                                              tables[j + 1].ref(), tables[j + 1].ref())});
            return false;
        }
    }
    // The join tree from the selected table: children[t] = (edge index, child table).
    std::vector<std::vector<std::pair<std::size_t, int>>> children(tables.size());
    std::vector<bool> seen(tables.size(), false);
    std::vector<int> order{root};
    seen[static_cast<std::size_t>(root)] = true;
    for (std::size_t k = 0; k < order.size(); ++k) {
        const int t = order[k];
        for (std::size_t e = 0; e < edges.size(); ++e) {
            const int other = edges[e].a == t ? edges[e].b : edges[e].b == t ? edges[e].a : -1;
            if (other >= 0 && !seen[static_cast<std::size_t>(other)]) {
                seen[static_cast<std::size_t>(other)] = true;
                children[static_cast<std::size_t>(t)].emplace_back(e, other);
                order.push_back(other);
            }
        }
    }
    // OR alternatives.
    std::vector<std::vector<const Node*>> terms;
    if (stmt.where) {
        terms = dnf(*stmt.where, [&](const Node& n) {
            Touch t;
            touch_node(n, tables, is_with_ref, t);
            return t.subquery || (t.request && t.tables != 0) || std::popcount(t.tables) > 1;
        });
        if (terms.size() > kMaxTerms) {
            errors.push_back({stmt.where->span, ErrorCode::kRulesUnsupported,
                                  fmt::format("WHERE has more than {} OR alternatives; expected a simpler "
                                              "condition",
                                              kMaxTerms)});
            return false;
        }
    } else {
        terms.emplace_back();
    }
    out.root = tables[static_cast<std::size_t>(root)];
    bool ok = true;
    for (const auto& atoms : terms) {
        std::vector<std::vector<const Node*>> per_table(tables.size());
        for (const Node* atom : atoms) {
            Touch t;
            touch_node(*atom, tables, is_with_ref, t);
            if (joined && t.unqualified) {
                errors.push_back({atom->span, ErrorCode::kRulesUnknownName,
                                      fmt::format("{} names a column without its table in a query with INNER "
                                                  "JOIN; expected <table>.<column>",
                                                  quote(sql, atom->span))});
                ok = false;
                continue;
            }
            if (std::popcount(t.tables) > 1) {
                errors.push_back({atom->span, ErrorCode::kRulesUnsupported,
                                      fmt::format("{} compares columns of two tables; expected each condition "
                                                  "on one table (join tables with INNER JOIN ... ON a.x = b.y)",
                                                  quote(sql, atom->span))});
                ok = false;
                continue;
            }
            const int t_index = t.tables == 0 ? root : std::countr_zero(t.tables);
            per_table[static_cast<std::size_t>(t_index)].push_back(atom);
        }
        // Bottom-up: each joined table becomes `<parent column> IN (SELECT <its column> FROM it
        // WHERE <its conditions>)` on its parent.
        std::function<std::vector<const Node*>(int)> build = [&](int t) {
            std::vector<const Node*> mine = per_table[static_cast<std::size_t>(t)];
            mine.insert(mine.end(), extra[static_cast<std::size_t>(t)].begin(),
                        extra[static_cast<std::size_t>(t)].end());
            for (const auto& [e, child] : children[static_cast<std::size_t>(t)]) {
                const Edge& edge = edges[e];
                const Node* parent_col = edge.a == t ? edge.a_col : edge.b_col;
                const Node* child_col = edge.a == t ? edge.b_col : edge.a_col;
                const auto child_atoms = build(child);
                auto sub = std::make_shared<SelectStatement>();
                SelectItem item;
                item.expr = *child_col;
                item.span = child_col->span;
                sub->items.push_back(std::move(item));
                FromClause f;
                f.table = tables[static_cast<std::size_t>(child)].parts;
                f.alias = tables[static_cast<std::size_t>(child)].alias;
                f.span = tables[static_cast<std::size_t>(child)].span;
                sub->from = std::move(f);
                sub->select_span = edge.span;
                sub->span = edge.span;
                if (!child_atoms.empty()) {
                    Node chain = *child_atoms[0];
                    for (std::size_t k = 1; k < child_atoms.size(); ++k) {
                        Node both;
                        both.kind = NodeKind::kBinary;
                        both.op = BinaryOp::kAnd;
                        both.span = {chain.span.begin, child_atoms[k]->span.end};
                        both.args.push_back(std::move(chain));
                        both.args.push_back(*child_atoms[k]);
                        chain = std::move(both);
                    }
                    sub->where = std::move(chain);
                }
                Node link;
                link.kind = NodeKind::kIn;
                link.span = edge.span;
                link.args.push_back(*parent_col);
                Node rhs;
                rhs.kind = NodeKind::kSubquery;
                rhs.span = edge.span;
                rhs.subquery = std::move(sub);
                link.args.push_back(std::move(rhs));
                synth.push_back(std::move(link));
                mine.push_back(&synth.back());
            }
            return mine;
        };
        out.terms.push_back(build(root));
    }
    return ok;
}

}  // namespace sluice::config::rules::detail
