// The storage database: where its connection string comes from, opening it with clear errors, and
// creating it when allowed.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <pqxx/connection>

#include "config/sluice_config.h"
#include "protocol/status.h"


namespace sluice::storage {

// storage.uri, or, when it is empty, source.uri with the database replaced by storage.database.
[[nodiscard]] protocol::Result<std::string> storage_conninfo(const config::Config& config);

// `conninfo` with its database replaced; key=value form. Fails if conninfo does not parse.
// The connection string with the given keywords set (replacing what it had), as key=value pairs;
// fails when `conninfo` does not parse. E.g. {{"connect_timeout", "3"}}.
[[nodiscard]] protocol::Result<std::string> with_settings(
    const std::string& conninfo, const std::vector<std::pair<std::string, std::string>>& settings);
[[nodiscard]] protocol::Result<std::string> with_database(const std::string& conninfo, const std::string& database);

enum class CreateDatabase { kNo, kYes };

// Connects to the storage database. When it does not exist, creates it if `create` says so
// (connecting to the server's "postgres" database for that), and otherwise reports how to.
[[nodiscard]] protocol::Result<std::unique_ptr<pqxx::connection>> connect_storage(const std::string& conninfo,
                                                                                  CreateDatabase create);

}  // namespace sluice::storage
