// TableCatalog: the shape of the source tables uploads may write, read from the Postgres catalog
// (never from the client): columns with their types, and whether `id` identifies a row (a primary
// key or unique constraint on id alone). Every identifier the uploader puts into SQL comes from
// here, quoted. Shared by the uploader's connections; thread-safe. Reads the catalog on a connection
// of its own, opened on the first miss (misses are rare: first use, and after invalidate()).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "config/rules/rule_set.h"
#include "protocol/pgoutput/pg_types.h"

namespace sluice::upload {

struct ColumnInfo {
    std::string name;    // as in the catalog
    std::string quoted;  // "name", for SQL
    protocol::pgoutput::Oid type = 0;
    std::string type_sql;  // format_type(): a type name to cast a parameter to
    bool generated = false;
};

struct TableInfo {
    config::rules::TableName name;
    std::string quoted;  // "schema"."table"
    std::vector<ColumnInfo> columns;
    std::optional<std::size_t> id_column;  // index of `id` in columns
    bool id_unique = false;                // a unique index on id alone (primary key or unique)
    std::map<protocol::pgoutput::Oid, protocol::pgoutput::TypeDescription> types;  // non-built-in column types

    [[nodiscard]] const ColumnInfo* column(std::string_view wanted) const;
    [[nodiscard]] protocol::pgoutput::TypeResolver resolver() const;
};

class TableCatalog {
public:
    explicit TableCatalog(std::string source_conninfo);
    ~TableCatalog();
    TableCatalog(const TableCatalog&) = delete;
    TableCatalog& operator=(const TableCatalog&) = delete;

    // The table's shape (cached); nullptr when the source has no such table. Reads the catalog on a
    // miss. Throws what libpqxx throws (a lost connection is opened again on the next miss).
    [[nodiscard]] std::shared_ptr<const TableInfo> get(const config::rules::TableName& name);
    // Forgets every cached shape (a table changed: its next use reads the catalog again).
    void invalidate();

private:
    std::string m_conninfo;
    std::mutex m_mutex;  // guards m_tables and m_connection; taken by the uploader's worker threads
    struct Connection;
    std::unique_ptr<Connection> m_connection;
    std::map<std::string, std::shared_ptr<const TableInfo>> m_tables;  // by "schema.table"
};

}  // namespace sluice::upload
