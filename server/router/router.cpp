// Applying the sync rules to pgoutput changes (see router.h).
#include "server/router/router.h"

#include <algorithm>

#include <fmt/format.h>

#include "protocol/pgoutput/text_value.h"
#include "protocol/pgoutput/value.h"
#include "server/core/field_codec.h"

namespace sluice::router {
namespace {

namespace pg = protocol::pgoutput;
namespace rules = config::rules;
using protocol::ErrorCode;
using protocol::Status;

rules::Value to_rules_value(pg::Value&& v) {
    switch (v.type) {
        case pg::ValueType::kNull:
            return rules::Value::null();
        case pg::ValueType::kInteger:
            return rules::Value::integer(v.integer);
        case pg::ValueType::kReal:
            return rules::Value::real(v.real);
        case pg::ValueType::kText:
            return rules::Value::text(std::move(v.bytes));
        case pg::ValueType::kBlob:
            return rules::Value::blob(std::move(v.bytes));
    }
    return rules::Value::null();
}

}  // namespace

std::string table_name(const pg::Relation& relation) {
    return (relation.schema.empty() ? std::string("pg_catalog") : relation.schema) + "." + relation.name;
}

std::string row_key(const pg::Relation& relation, const pg::Tuple& tuple) {
    std::string key = "[";
    bool first = true;
    for (std::size_t i = 0; i < relation.columns.size() && i < tuple.size(); ++i) {
        if (!relation.columns[i].is_key) {
            continue;
        }
        if (!first) {
            key += ',';
        }
        first = false;
        if (tuple[i].kind == pg::DatumKind::kText) {
            pg::append_json_string(key, tuple[i].data);
        } else {
            key += "null";
        }
    }
    key += ']';
    return key;
}

// Two fields per column: its name, then "n" for NULL or "t" followed by its text form.
std::string encode_stored(const pg::Relation& relation, const pg::Tuple& tuple) {
    std::string out;
    std::string value;
    for (std::size_t i = 0; i < relation.columns.size() && i < tuple.size(); ++i) {
        core::append_field(out, relation.columns[i].name);
        const bool is_text = tuple[i].kind == pg::DatumKind::kText;
        value.clear();
        value.push_back(is_text ? 't' : 'n');
        if (is_text) {
            value += tuple[i].data;
        }
        core::append_field(out, value);
    }
    return out;
}

std::optional<std::unordered_map<std::string, pg::Datum>> decode_stored(const std::string& stored) {
    auto fields = core::decode_fields(stored);
    if (!fields || fields->size() % 2 != 0) {
        return std::nullopt;
    }
    std::unordered_map<std::string, pg::Datum> columns;
    for (std::size_t i = 0; i < fields->size(); i += 2) {
        const std::string_view value = (*fields)[i + 1];
        if (value == "n") {
            columns[(*fields)[i]] = pg::Datum{};
        } else if (!value.empty() && value.front() == 't') {
            columns[(*fields)[i]] = pg::Datum{pg::DatumKind::kText, std::string(value.begin() + 1, value.end())};
        } else {
            return std::nullopt;
        }
    }
    return columns;
}

Router::Router(std::shared_ptr<const rules::RuleSet> rules, pg::TypeResolver resolver)
    : m_rules(std::move(rules)), m_resolver(std::move(resolver)) {}

protocol::Result<core::EvaluatedChange> Router::upsert(const pg::Relation& relation, const pg::Tuple& tuple) {
    const rules::TableName table{relation.schema, relation.name};
    rules::Row row;
    for (std::size_t i = 0; i < relation.columns.size() && i < tuple.size(); ++i) {
        const auto& column = relation.columns[i];
        auto value = pg::decode_datum(column.type_oid, tuple[i], m_resolver);
        if (!value) {
            return Status(value.status().code(), fmt::format("{}.{}: {}", table_name(relation), column.name,
                                                             value.status().message()));
        }
        row.set(column.name, to_rules_value(std::move(value).value()));
    }
    core::EvaluatedChange change{{table_name(relation), row_key(relation, tuple)},
                                 core::ChangeKind::kUpsert,
                                 encode_stored(relation, tuple),
                                 {},
                                 {}};
    evaluate(table, row, change);
    return change;
}

void Router::evaluate(const rules::TableName& table, const rules::Row& row, core::EvaluatedChange& change) {
    ++m_stats.rows;
    m_evaluation.rows.clear();
    m_evaluation.errors.clear();
    m_rules->evaluate_row(table, row, m_evaluation);
    for (auto& r : m_evaluation.rows) {
        change.placements.push_back({std::move(r.bucket), std::move(r.table), std::move(r.id), std::move(r.data)});
    }
    m_parameters.entries.clear();
    m_parameters.errors.clear();
    m_rules->evaluate_parameter_row(table, row, m_parameters);
    for (auto& e : m_parameters.entries) {
        change.lookups.push_back({std::move(e.key), std::move(e.values)});
    }
    if (!m_evaluation.errors.empty() || !m_parameters.errors.empty()) {
        ++m_stats.evaluation_errors;
    }
}

Status Router::update(const pg::Relation& relation, pg::OldTupleKind old_kind, const pg::Tuple& old_tuple,
                      const pg::Tuple& new_tuple, const StoredRowLookup& stored,
                      std::vector<core::EvaluatedChange>& out) {
    const std::string new_key = row_key(relation, new_tuple);
    // An old tuple without the key columns (a key-only old tuple of another identity) says nothing
    // about the key: it did not change.
    bool old_has_key = !old_tuple.empty();
    for (std::size_t i = 0; old_has_key && i < relation.columns.size() && i < old_tuple.size(); ++i) {
        old_has_key = !relation.columns[i].is_key || old_tuple[i].kind == pg::DatumKind::kText;
    }
    const std::string old_key = old_has_key ? row_key(relation, old_tuple) : new_key;
    const bool toast = std::any_of(new_tuple.begin(), new_tuple.end(),
                                   [](const pg::Datum& d) { return d.kind == pg::DatumKind::kUnchangedToast; });
    pg::Tuple tuple;
    if (toast) {
        tuple = new_tuple;
        auto previous = stored({table_name(relation), old_key});
        if (!previous) {
            return previous.status();
        }
        auto columns = previous.value() ? decode_stored(*previous.value()) : std::nullopt;
        for (std::size_t i = 0; i < tuple.size() && i < relation.columns.size(); ++i) {
            if (tuple[i].kind != pg::DatumKind::kUnchangedToast) {
                continue;
            }
            if (old_kind == pg::OldTupleKind::kFull && i < old_tuple.size() &&
                old_tuple[i].kind == pg::DatumKind::kText) {
                tuple[i] = old_tuple[i];
            } else if (columns && columns->contains(relation.columns[i].name)) {
                tuple[i] = columns->at(relation.columns[i].name);
            } else {
                ++m_stats.missing_toast;
                tuple[i] = pg::Datum{};
            }
        }
    }
    if (old_key != new_key) {
        out.push_back({{table_name(relation), old_key}, core::ChangeKind::kDelete, {}, {}, {}});
    }
    auto change = upsert(relation, toast ? tuple : new_tuple);
    if (!change) {
        return change.status();
    }
    out.push_back(std::move(change).value());
    return Status::ok();
}

core::EvaluatedChange Router::remove(const pg::Relation& relation, const pg::Tuple& old_tuple) {
    return {{table_name(relation), row_key(relation, old_tuple)}, core::ChangeKind::kDelete, {}, {}, {}};
}

}  // namespace sluice::router
