// Source table shapes from pg_catalog (see table_catalog.h).
#include "server/upload/table_catalog.h"

#include <pqxx/pqxx>

namespace sluice::upload {

namespace pg = protocol::pgoutput;

const ColumnInfo* TableInfo::column(std::string_view wanted) const {
    for (const auto& c : columns) {
        if (c.name == wanted) {
            return &c;
        }
    }
    return nullptr;
}

pg::TypeResolver TableInfo::resolver() const {
    return [types = types](pg::Oid oid) -> std::optional<pg::TypeDescription> {
        if (auto it = types.find(oid); it != types.end()) {
            return it->second;
        }
        return std::nullopt;
    };
}

struct TableCatalog::Connection {
    pqxx::connection pq;
};

TableCatalog::TableCatalog(std::string source_conninfo) : m_conninfo(std::move(source_conninfo)) {}
TableCatalog::~TableCatalog() = default;

std::shared_ptr<const TableInfo> TableCatalog::get(const config::rules::TableName& name) {
    const std::string key = name.schema + "." + name.name;
    std::lock_guard lock(m_mutex);
    if (auto it = m_tables.find(key); it != m_tables.end()) {
        return it->second;
    }
    if (!m_connection || !m_connection->pq.is_open()) {
        m_connection.reset(new Connection{pqxx::connection(m_conninfo)});
    }
    pqxx::nontransaction tx(m_connection->pq);
    // Ordinary and partitioned tables only; names compared exactly (no case folding, no search path).
    auto rows = tx.exec_params(
        "SELECT a.attname, a.atttypid::bigint, format_type(a.atttypid, a.atttypmod), a.attgenerated <> '', "
        "       t.typtype, t.typbasetype::bigint, t.typelem::bigint, t.typcategory, "
        "       EXISTS (SELECT FROM pg_index i WHERE i.indrelid = c.oid AND i.indisunique AND i.indnatts = 1 "
        "               AND i.indpred IS NULL AND i.indexprs IS NULL AND i.indkey[0] = a.attnum) "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
        "JOIN pg_type t ON t.oid = a.atttypid "
        "WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p') ORDER BY a.attnum",
        name.schema, name.name);
    if (rows.empty()) {
        return nullptr;
    }
    auto info = std::make_shared<TableInfo>();
    info->name = name;
    info->quoted = tx.conn().quote_name(name.schema) + "." + tx.conn().quote_name(name.name);
    for (const auto& r : rows) {
        ColumnInfo c;
        c.name = r[0].as<std::string>();
        c.quoted = tx.conn().quote_name(c.name);
        c.type = static_cast<pg::Oid>(r[1].as<std::int64_t>());
        c.type_sql = r[2].as<std::string>();
        c.generated = r[3].as<bool>();
        const auto typtype = r[4].as<std::string>();
        const auto base = static_cast<pg::Oid>(r[5].as<std::int64_t>());
        const auto elem = static_cast<pg::Oid>(r[6].as<std::int64_t>());
        if (typtype == "d") {
            info->types[c.type] = {pg::TypeDescription::Kind::kDomain, base};
        } else if (typtype == "e") {
            info->types[c.type] = {pg::TypeDescription::Kind::kEnum, 0};
        } else if (r[7].as<std::string>() == "A" && elem != 0) {
            info->types[c.type] = {pg::TypeDescription::Kind::kArray, elem};
        }
        if (c.name == "id") {
            info->id_column = info->columns.size();
            info->id_unique = r[8].as<bool>();
        }
        info->columns.push_back(std::move(c));
    }
    m_tables[key] = info;
    return info;
}

void TableCatalog::invalidate() {
    std::lock_guard lock(m_mutex);
    m_tables.clear();
}

}  // namespace sluice::upload
