// Table description and chunked copy for the initial snapshot (see table_copy.h).
#include "server/replication/table_copy.h"

#include <algorithm>

#include <fmt/format.h>

#include "server/core/field_codec.h"
#include "server/replication/replication_setup.h"
#include "server/replication/wal_stream.h"

namespace sluice::replication {
namespace {

namespace pg = protocol::pgoutput;
using protocol::ErrorCode;
using protocol::Status;

std::string qualified(const pg::Relation& r) { return quote_identifier(r.schema) + "." + quote_identifier(r.name); }

}  // namespace

protocol::Result<TableDescription> describe_table(PgConnection& connection, const std::string& table) {
    const auto [schema, name] = split_table_name(table);
    auto head = connection.query(fmt::format(
        "SELECT c.oid, c.relreplident, GREATEST(c.reltuples, 0)::bigint FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = {} AND c.relname = {} AND c.relkind IN ('r', 'p')",
        quote_literal(schema), quote_literal(name)));
    if (!head) {
        return head.status();
    }
    if (head.value().empty()) {
        return Status(ErrorCode::kSourceQueryFailed,
                      fmt::format("table {}.{} used by the sync rules does not exist in the source database", schema,
                                  name));
    }
    TableDescription out;
    out.relation.id = static_cast<pg::Oid>(std::stoul(*head.value()[0][0]));
    out.relation.schema = schema;
    out.relation.name = name;
    out.relation.identity = static_cast<pg::ReplicaIdentity>((*head.value()[0][1])[0]);
    out.rows_estimated = std::stoll(*head.value()[0][2]);

    auto columns = connection.query(fmt::format(
        "SELECT a.attname, a.atttypid, a.atttypmod, "
        "       COALESCE(a.attnum = ANY(pk.indkey), false), COALESCE(a.attnum = ANY(ri.indkey), false) "
        "FROM pg_attribute a "
        "LEFT JOIN pg_index pk ON pk.indrelid = a.attrelid AND pk.indisprimary "
        "LEFT JOIN pg_index ri ON ri.indrelid = a.attrelid AND ri.indisreplident "
        "WHERE a.attrelid = {} AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' "
        "ORDER BY a.attnum",
        out.relation.id));
    if (!columns) {
        return columns.status();
    }
    std::vector<std::size_t> primary;
    std::vector<std::size_t> identity_index;
    for (const auto& row : columns.value()) {
        pg::Column column;
        column.name = *row[0];
        column.type_oid = static_cast<pg::Oid>(std::stoul(*row[1]));
        column.type_modifier = std::stoi(*row[2]);
        const bool in_pk = *row[3] == "t";
        const bool in_ri = *row[4] == "t";
        switch (out.relation.identity) {
            case pg::ReplicaIdentity::kDefault:
                column.is_key = in_pk;
                break;
            case pg::ReplicaIdentity::kIndex:
                column.is_key = in_ri;
                break;
            case pg::ReplicaIdentity::kFull:
                column.is_key = true;
                break;
            case pg::ReplicaIdentity::kNothing:
                column.is_key = false;
                break;
        }
        if (in_pk) {
            primary.push_back(out.relation.columns.size());
        }
        if (in_ri) {
            identity_index.push_back(out.relation.columns.size());
        }
        out.relation.columns.push_back(std::move(column));
    }
    const bool has_key = std::any_of(out.relation.columns.begin(), out.relation.columns.end(),
                                     [](const pg::Column& c) { return c.is_key; });
    if (!has_key) {
        return Status(ErrorCode::kSourceNoReplicaIdentity,
                      fmt::format("table {}.{} has no usable replica identity, so its updates and deletes cannot be "
                                  "replicated: add a primary key, or run ALTER TABLE {} REPLICA IDENTITY FULL",
                                  schema, name, qualified(out.relation)));
    }
    out.order_columns = !primary.empty() ? primary : identity_index;
    // A row's identity in storage is its primary key when the replica identity is FULL: then
    // switching between DEFAULT and FULL keeps every stored row's key (see key_by_primary_key).
    if (out.relation.identity == pg::ReplicaIdentity::kFull && !primary.empty()) {
        for (std::size_t i = 0; i < out.relation.columns.size(); ++i) {
            out.relation.columns[i].is_key = std::find(primary.begin(), primary.end(), i) != primary.end();
        }
    }
    return out;
}

protocol::Result<std::shared_ptr<const pg::Relation>> key_by_primary_key(
    PgConnection& connection, const std::shared_ptr<const pg::Relation>& relation) {
    if (relation->identity != pg::ReplicaIdentity::kFull) {
        return relation;
    }
    auto rows = connection.query(fmt::format(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
        "WHERE i.indrelid = {} AND i.indisprimary",
        relation->id));
    if (!rows) {
        return rows.status();
    }
    if (rows.value().empty()) {
        return relation;  // no primary key: the whole row is the identity
    }
    auto keyed = std::make_shared<pg::Relation>(*relation);
    for (auto& column : keyed->columns) {
        column.is_key = std::any_of(rows.value().begin(), rows.value().end(),
                                    [&](const auto& r) { return r[0].value_or("") == column.name; });
    }
    return std::shared_ptr<const pg::Relation>(std::move(keyed));
}

protocol::Result<CopyChunk> copy_chunk(PgConnection& connection, const TableDescription& table,
                                       const std::string& after_key, std::size_t limit) {
    const auto& columns = table.relation.columns;
    std::string select;
    for (const auto& c : columns) {
        select += (select.empty() ? "" : ", ") + quote_identifier(c.name);
    }
    std::string order;
    for (const auto i : table.order_columns) {
        order += (order.empty() ? "" : ", ") + quote_identifier(columns[i].name);
    }
    std::string sql = fmt::format("SELECT {} FROM {}", select, qualified(table.relation));
    if (!order.empty()) {
        if (!after_key.empty()) {
            auto values = core::decode_fields(after_key);
            if (!values || values->size() != table.order_columns.size()) {
                return Status(ErrorCode::kSourceQueryFailed,
                              fmt::format("stored snapshot position of {}.{} does not match its key columns",
                                          table.relation.schema, table.relation.name));
            }
            std::string literals;
            for (const auto& v : *values) {
                literals += (literals.empty() ? "" : ", ") + quote_literal(v);
            }
            sql += fmt::format(" WHERE ({}) > ({})", order, literals);
        }
        sql += fmt::format(" ORDER BY {} LIMIT {}", order, limit);
    }
    auto rows = connection.query(sql);
    if (!rows) {
        return rows.status();
    }
    CopyChunk chunk;
    chunk.rows.reserve(rows.value().size());
    for (auto& row : rows.value()) {
        pg::Tuple tuple;
        tuple.reserve(row.size());
        for (auto& field : row) {
            tuple.push_back(field ? pg::Datum{pg::DatumKind::kText, std::move(*field)} : pg::Datum{});
        }
        chunk.rows.push_back(std::move(tuple));
    }
    if (!chunk.rows.empty() && !order.empty()) {
        for (const auto i : table.order_columns) {
            core::append_field(chunk.last_key, chunk.rows.back()[i].data);
        }
    }
    return chunk;
}

}  // namespace sluice::replication
