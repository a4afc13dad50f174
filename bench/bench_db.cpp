// Scratch databases for the benchmarks (see bench_db.h).
#include "bench/bench_db.h"

#include <stdexcept>

#include <fmt/format.h>
#include <pqxx/pqxx>

#include "server/storage/database.h"

namespace sluice::bench {

std::string database_uri(const std::string& admin_uri, const std::string& database) {
    auto uri = storage::with_database(admin_uri, database);
    if (!uri) {
        throw std::runtime_error(uri.status().to_string());
    }
    return uri.value();
}

void exec_sql(const std::string& uri, const std::string& sql) {
    pqxx::connection c(uri);
    pqxx::nontransaction tx(c);
    tx.exec(sql);
}

std::string fresh_database(const std::string& admin_uri, const std::string& database) {
    exec_sql(admin_uri, fmt::format("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                                    "WHERE database = '{}'",
                                    database));
    exec_sql(admin_uri, "DROP DATABASE IF EXISTS " + database + " WITH (FORCE)");
    exec_sql(admin_uri, "CREATE DATABASE " + database);
    return database_uri(admin_uri, database);
}

}  // namespace sluice::bench
