// Opening the storage database (see database.h).
#include "server/storage/database.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include <libpq-fe.h>

#include <pqxx/pqxx>

#include "server/core/log.h"
#include "server/core/pg_errors.h"

namespace sluice::storage {
namespace {

using protocol::ErrorCode;
using protocol::Result;
using protocol::Status;

const core::Logger kLog("storage");

// Quotes a value for a key=value conninfo string.
std::string quote_conninfo_value(std::string_view value) {
    std::string out = "'";
    for (const char c : value) {
        if (c == '\'' || c == '\\') {
            out += '\\';
        }
        out += c;
    }
    out += '\'';
    return out;
}

// The database name a conninfo string names ("" when it names none).
std::string database_of(const std::string& conninfo) {
    char* error = nullptr;
    PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &error);
    std::string name;
    if (options != nullptr) {
        for (auto* o = options; o->keyword != nullptr; ++o) {
            if (std::string_view(o->keyword) == "dbname" && o->val != nullptr) {
                name = o->val;
            }
        }
        PQconninfoFree(options);
    }
    PQfreemem(error);
    return name;
}

Status failure_status(core::ConnectFailure failure, const std::string& conninfo, const std::string& message) {
    const auto where = core::redact_conninfo(conninfo);
    switch (failure) {
        case core::ConnectFailure::kAuth:
            return {ErrorCode::kStorageAuthFailed,
                    fmt::format("storage database rejected the login ({}): {}", where, message)};
        case core::ConnectFailure::kDatabaseMissing:
            return {ErrorCode::kStorageDatabaseMissing,
                    fmt::format("storage database '{}' does not exist ({}); run `sluice migrate -c <config> "
                                "--create-database`, set storage.create_database: true, or run CREATE DATABASE",
                                database_of(conninfo), where)};
        case core::ConnectFailure::kUnreachable:
            return {ErrorCode::kStorageUnreachable,
                    fmt::format("cannot reach the storage database ({}): {}", where, message)};
        default:
            return {ErrorCode::kStorageUnreachable,
                    fmt::format("cannot connect to the storage database ({}): {}", where, message)};
    }
}

// Outcome of CREATE DATABASE.
enum class CreateOutcome {
    kCreated,  // we created it
    kExists,   // another process created it (its transaction may still be finishing)
    kBusy,     // another CREATE DATABASE holds template1; try again shortly
};

Result<CreateOutcome> create_database(const std::string& conninfo) {
    const std::string name = database_of(conninfo);
    auto admin = with_database(conninfo, "postgres");
    if (!admin) {
        return admin.status();
    }
    try {
        pqxx::connection c(admin.value());
        pqxx::nontransaction tx(c);
        tx.exec0("CREATE DATABASE " + tx.quote_name(name));
        kLog.info("created storage database '{}'", name);
    } catch (const pqxx::sql_error& e) {
        // duplicate_database, or unique_violation on pg_database when two CREATEs race: created
        // meanwhile. object_in_use: template1 is busy copying for another CREATE DATABASE.
        if (e.sqlstate() == "42P04" || e.sqlstate() == "23505") {
            return CreateOutcome::kExists;
        }
        if (e.sqlstate() == "55006") {
            return CreateOutcome::kBusy;
        }
        return Status(ErrorCode::kStorageQueryFailed,
                      fmt::format("cannot create storage database '{}': {}", name, core::one_line(e.what())));
    } catch (const std::exception& e) {
        const auto message = core::one_line(e.what());
        return failure_status(core::classify_connect_failure(message), admin.value(), message);
    }
    return CreateOutcome::kCreated;
}

}  // namespace

Result<std::string> with_settings(const std::string& conninfo,
                                  const std::vector<std::pair<std::string, std::string>>& settings) {
    char* error = nullptr;
    PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &error);
    if (options == nullptr) {
        std::string message = error != nullptr ? core::one_line(error) : "out of memory";
        PQfreemem(error);
        return Status(ErrorCode::kConfigInvalidValue, fmt::format("not a valid connection string: {}", message));
    }
    std::string out;
    for (auto* o = options; o->keyword != nullptr; ++o) {
        const bool replaced = std::any_of(settings.begin(), settings.end(),
                                          [&](const auto& s) { return s.first == o->keyword; });
        if (o->val == nullptr || replaced) {
            continue;
        }
        out += fmt::format("{}={} ", o->keyword, quote_conninfo_value(o->val));
    }
    PQconninfoFree(options);
    for (const auto& [keyword, value] : settings) {
        out += fmt::format("{}={} ", keyword, quote_conninfo_value(value));
    }
    out.pop_back();
    return out;
}

Result<std::string> with_database(const std::string& conninfo, const std::string& database) {
    return with_settings(conninfo, {{"dbname", database}});
}

Result<std::string> storage_conninfo(const config::Config& config) {
    if (!config.storage.uri.empty()) {
        return config.storage.uri;
    }
    auto conninfo = with_database(config.source.uri, config.storage.database);
    if (!conninfo) {
        return Status(conninfo.status().code(), "source.uri: " + conninfo.status().message());
    }
    return conninfo;
}

Result<std::unique_ptr<pqxx::connection>> connect_storage(const std::string& conninfo, CreateDatabase create) {
    constexpr int kAttempts = 20;
    for (int attempt = 1;; ++attempt) {
        try {
            return std::make_unique<pqxx::connection>(conninfo);
        } catch (const std::exception& e) {
            const auto message = core::one_line(e.what());
            const auto failure = core::classify_connect_failure(message);
            if (failure != core::ConnectFailure::kDatabaseMissing || create == CreateDatabase::kNo ||
                attempt == kAttempts) {
                return failure_status(failure, conninfo, message);
            }
        }
        auto created = create_database(conninfo);
        if (!created) {
            return created.status();
        }
        if (created.value() != CreateOutcome::kCreated) {
            // Start-up path only: wait for the other process's CREATE DATABASE to finish.
            std::this_thread::sleep_for(std::chrono::milliseconds(50 * attempt));
        }
    }
}

}  // namespace sluice::storage
