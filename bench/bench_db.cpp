// Scratch databases for the benchmarks (see bench_db.h).
#include "bench/bench_db.h"

#include <chrono>
#include <stdexcept>
#include <thread>

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

void settle(const std::string& admin_uri, const std::string& prefix) {
    pqxx::connection c(admin_uri);
    pqxx::nontransaction tx(c);
    const auto databases =
        tx.exec_params("SELECT datname FROM pg_database WHERE starts_with(datname, $1) AND datname <> current_database()",
                       prefix);
    for (const auto& row : databases) {
        const auto name = row[0].as<std::string>();
        tx.exec_params("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1",
                       name);
        tx.exec("DROP DATABASE IF EXISTS " + tx.quote_name(name) + " WITH (FORCE)");
    }
    tx.exec("CHECKPOINT");
    for (int i = 0; i < 60; ++i) {
        const auto workers =
            tx.exec1("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'")[0].as<int>();
        if (workers == 0) {
            return;
        }
        std::this_thread::sleep_for(std::chrono::seconds(1));
    }
}

}  // namespace sluice::bench
