// Test support for Postgres-backed tests (see pg.h).
#include "tests/support/pg.h"

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <thread>

#include <libpq-fe.h>

#include <pqxx/pqxx>

namespace sluice::test {

std::string pg_uri() {
    const char* uri = std::getenv("SLUICE_TEST_PG_URI");
    if (uri == nullptr || *uri == '\0') {
        throw std::runtime_error(
            "SLUICE_TEST_PG_URI is not set: run pg tests through scripts/test.sh, or start "
            "deploy/dev-postgres.sh and export SLUICE_TEST_PG_URI=$(deploy/dev-postgres.sh uri)");
    }
    return uri;
}

std::string with_database(const std::string& uri, const std::string& database) {
    char* error = nullptr;
    PQconninfoOption* options = PQconninfoParse(uri.c_str(), &error);
    if (options == nullptr) {
        std::string message = error != nullptr ? error : "out of memory";
        PQfreemem(error);
        throw std::runtime_error("bad test URI: " + message);
    }
    std::string out;
    for (auto* o = options; o->keyword != nullptr; ++o) {
        if (o->val != nullptr && std::string_view(o->keyword) != "dbname") {
            out += std::string(o->keyword) + "='" + o->val + "' ";
        }
    }
    PQconninfoFree(options);
    return out + "dbname='" + database + "'";
}

namespace {

std::string database_name(const std::string& prefix) {
    std::string name = "t_" + prefix;
    for (auto& c : name) {
        if (!std::isalnum(static_cast<unsigned char>(c))) {
            c = '_';
        }
    }
    return name;
}

// Drops the database and its logical slots (which would block dropping it); the walsender of a slot
// still in use is terminated first.
void drop_with_slots(pqxx::nontransaction& tx, const std::string& name) {
    tx.exec_params(
        "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL",
        name);
    tx.exec_params("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1", name);
    tx.exec0("DROP DATABASE IF EXISTS " + tx.quote_name(name) + " WITH (FORCE)");
}

}  // namespace

std::string fresh_database(const std::string& prefix) {
    const auto name = database_name(prefix);
    pqxx::connection admin(pg_uri());
    pqxx::nontransaction tx(admin);
    drop_with_slots(tx, name);
    tx.exec0("CREATE DATABASE " + tx.quote_name(name));
    return with_database(pg_uri(), name);
}

void drop_fresh_database(const std::string& prefix) {
    const auto name = database_name(prefix);
    // A terminated walsender releases its slot as it exits, a moment later: try again until it has.
    for (int attempt = 0;; ++attempt) {
        try {
            pqxx::connection admin(pg_uri());
            pqxx::nontransaction tx(admin);
            drop_with_slots(tx, name);
            return;
        } catch (const pqxx::sql_error&) {
            if (attempt == 100) {
                throw;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));  // bounded retries of a condition
        }
    }
}

void drop_replication_slots(const std::string& uri) {
    pqxx::connection c(uri);
    pqxx::nontransaction tx(c);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    for (;;) {
        tx.exec("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
                "WHERE database = current_database() AND active_pid IS NOT NULL");
        tx.exec("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                "WHERE database = current_database() AND NOT active");
        const bool left = tx.exec1("SELECT EXISTS (SELECT FROM pg_replication_slots WHERE database = current_database())")[0]
                              .as<bool>();
        if (!left || std::chrono::steady_clock::now() > deadline) {
            return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));  // a terminated walsender exits: poll, with a deadline
    }
}

void exec_sql(const std::string& uri, const std::string& sql) {
    pqxx::connection c(uri);
    pqxx::nontransaction tx(c);
    tx.exec(sql);
}

}  // namespace sluice::test
