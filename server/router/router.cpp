// Applying the sync rules to pgoutput changes (see router.h).
#include "server/router/router.h"

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

Status unknown_relation(pg::Oid id) {
    return {ErrorCode::kPgoutputUnknownRelation,
            fmt::format("a change names relation {} before its Relation message", id)};
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

std::string encode_stored(const pg::Relation& relation, const pg::Tuple& tuple) {
    std::string out;
    for (std::size_t i = 0; i < relation.columns.size() && i < tuple.size(); ++i) {
        core::append_field(out, relation.columns[i].name);
        if (tuple[i].kind == pg::DatumKind::kText) {
            out += 't';
            core::append_field(out, tuple[i].data);
        } else {
            out += 'n';
        }
    }
    return out;
}

std::optional<std::unordered_map<std::string, pg::Datum>> decode_stored(const std::string& stored) {
    std::unordered_map<std::string, pg::Datum> columns;
    std::string_view rest = stored;
    // Fields alternate: name, then 't' + text field or 'n'. Decode one field at a time.
    auto next_field = [&rest]() -> std::optional<std::string> {
        const auto colon = rest.find(':');
        if (colon == std::string_view::npos) {
            return std::nullopt;
        }
        auto fields = core::decode_fields(rest.substr(0, colon + 1 + std::stoul(std::string(rest.substr(0, colon)))));
        if (!fields || fields->size() != 1) {
            return std::nullopt;
        }
        rest.remove_prefix(colon + 1 + fields->front().size());
        return std::move(fields->front());
    };
    try {
        while (!rest.empty()) {
            auto name = next_field();
            if (!name || rest.empty()) {
                return std::nullopt;
            }
            const char tag = rest.front();
            rest.remove_prefix(1);
            if (tag == 'n') {
                columns[*name] = pg::Datum{};
            } else if (tag == 't') {
                auto text = next_field();
                if (!text) {
                    return std::nullopt;
                }
                columns[*name] = pg::Datum{pg::DatumKind::kText, std::move(*text)};
            } else {
                return std::nullopt;
            }
        }
    } catch (const std::exception&) {  // a length that does not parse or overflows
        return std::nullopt;
    }
    return columns;
}

Router::Router(std::shared_ptr<const rules::RuleSet> rules, pg::TypeResolver resolver)
    : m_rules(std::move(rules)), m_resolver(std::move(resolver)) {}

void Router::on_relation(const pg::Relation& relation) { m_relations[relation.id] = relation; }

const pg::Relation* Router::relation(pg::Oid id) const {
    auto it = m_relations.find(id);
    return it == m_relations.end() ? nullptr : &it->second;
}

std::vector<core::RowKey> Router::keys_of(const pg::Message& message) const {
    std::vector<core::RowKey> keys;
    auto add = [&](pg::Oid id, const pg::Tuple& tuple) {
        if (const auto* r = relation(id); r != nullptr && !tuple.empty()) {
            keys.push_back({table_name(*r), row_key(*r, tuple)});
        }
    };
    if (const auto* insert = std::get_if<pg::Insert>(&message)) {
        add(insert->relation_id, insert->new_tuple);
    } else if (const auto* update = std::get_if<pg::Update>(&message)) {
        add(update->relation_id, update->new_tuple);
        add(update->relation_id, update->old_tuple);
    } else if (const auto* del = std::get_if<pg::Delete>(&message)) {
        add(del->relation_id, del->old_tuple);
    }
    return keys;
}

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
    ++m_stats.rows;
    core::EvaluatedChange change{{table_name(relation), row_key(relation, tuple)},
                                 core::ChangeKind::kUpsert,
                                 encode_stored(relation, tuple),
                                 {},
                                 {}};
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
    return change;
}

protocol::Result<core::EvaluatedChange> Router::evaluate_snapshot_row(const pg::Relation& relation,
                                                                      const pg::Tuple& tuple) {
    return upsert(relation, tuple);
}

Status Router::route(const pg::Message& message, const StoredRowLookup& stored,
                     std::vector<core::EvaluatedChange>& out) {
    if (const auto* insert = std::get_if<pg::Insert>(&message)) {
        const auto* r = relation(insert->relation_id);
        if (r == nullptr) {
            return unknown_relation(insert->relation_id);
        }
        auto change = upsert(*r, insert->new_tuple);
        if (!change) {
            return change.status();
        }
        out.push_back(std::move(change).value());
        return Status::ok();
    }
    if (const auto* update = std::get_if<pg::Update>(&message)) {
        const auto* r = relation(update->relation_id);
        if (r == nullptr) {
            return unknown_relation(update->relation_id);
        }
        pg::Tuple tuple = update->new_tuple;
        const std::string new_key = row_key(*r, tuple);
        const std::string old_key = update->old_tuple.empty() ? new_key : row_key(*r, update->old_tuple);
        // Unchanged TOAST values: take them from the old full tuple, else from the stored copy.
        bool toast = false;
        for (const auto& d : tuple) {
            toast = toast || d.kind == pg::DatumKind::kUnchangedToast;
        }
        if (toast) {
            auto previous = stored({table_name(*r), old_key});
            if (!previous) {
                return previous.status();
            }
            auto columns = previous.value() ? decode_stored(*previous.value()) : std::nullopt;
            for (std::size_t i = 0; i < tuple.size() && i < r->columns.size(); ++i) {
                if (tuple[i].kind != pg::DatumKind::kUnchangedToast) {
                    continue;
                }
                if (update->old_kind == pg::OldTupleKind::kFull && i < update->old_tuple.size() &&
                    update->old_tuple[i].kind == pg::DatumKind::kText) {
                    tuple[i] = update->old_tuple[i];
                } else if (columns && columns->contains(r->columns[i].name)) {
                    tuple[i] = columns->at(r->columns[i].name);
                } else {
                    ++m_stats.missing_toast;
                    tuple[i] = pg::Datum{};
                }
            }
        }
        if (old_key != new_key) {
            out.push_back({{table_name(*r), old_key}, core::ChangeKind::kDelete, {}, {}, {}});
        }
        auto change = upsert(*r, tuple);
        if (!change) {
            return change.status();
        }
        out.push_back(std::move(change).value());
        return Status::ok();
    }
    if (const auto* del = std::get_if<pg::Delete>(&message)) {
        const auto* r = relation(del->relation_id);
        if (r == nullptr) {
            return unknown_relation(del->relation_id);
        }
        out.push_back({{table_name(*r), row_key(*r, del->old_tuple)}, core::ChangeKind::kDelete, {}, {}, {}});
        return Status::ok();
    }
    return Status::ok();
}

protocol::Result<std::vector<std::string>> Router::truncated_tables(const pg::Truncate& truncate) const {
    std::vector<std::string> tables;
    for (const auto id : truncate.relation_ids) {
        const auto* r = relation(id);
        if (r == nullptr) {
            return unknown_relation(id);
        }
        tables.push_back(table_name(*r));
    }
    return tables;
}

}  // namespace sluice::router
