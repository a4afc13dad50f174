// Opening the storage database: the derived default URI, a missing database reported with its fix,
// and created on request (also when two processes race to create it).
#include <thread>

#include <catch2/catch.hpp>
#include <pqxx/pqxx>

#include "server/storage/database.h"
#include "tests/support/pg.h"

using sluice::protocol::ErrorCode;
using sluice::storage::CreateDatabase;

TEST_CASE("the default storage URI is the source's server with database storage.database") {
    auto config = sluice::config::default_config();
    config.source.uri = "postgresql://app:pw@db.example:6543/app?sslmode=require";
    auto conninfo = sluice::storage::storage_conninfo(config);
    REQUIRE(conninfo.is_ok());
    CHECK(conninfo.value() ==
          "user='app' password='pw' host='db.example' port='6543' sslmode='require' dbname='sluice'");
    config.storage.uri = "postgresql://elsewhere/store";
    CHECK(sluice::storage::storage_conninfo(config).value() == "postgresql://elsewhere/store");
    config.storage.uri.clear();
    config.source.uri = "postgresql://[bad";
    CHECK_FALSE(sluice::storage::storage_conninfo(config).is_ok());
}

TEST_CASE("a missing storage database is reported with the fix, or created when allowed") {
    const std::string name = "t_storage_missing";
    sluice::test::exec_sql(sluice::test::pg_uri(), "DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
    const auto conninfo = sluice::test::with_database(sluice::test::pg_uri(), name);

    auto refused = sluice::storage::connect_storage(conninfo, CreateDatabase::kNo);
    REQUIRE_FALSE(refused.is_ok());
    CHECK(refused.status().code() == ErrorCode::kStorageDatabaseMissing);
    CHECK(refused.status().message().find("storage database 't_storage_missing' does not exist") == 0);
    CHECK(refused.status().message().find("--create-database") != std::string::npos);

    // Two processes racing to create it both succeed.
    std::vector<bool> ok(2);
    std::vector<std::string> why(2);
    std::thread a([&] { auto r = sluice::storage::connect_storage(conninfo, CreateDatabase::kYes); ok[0] = r.is_ok(); why[0] = r.status().to_string(); });
    std::thread b([&] { auto r = sluice::storage::connect_storage(conninfo, CreateDatabase::kYes); ok[1] = r.is_ok(); why[1] = r.status().to_string(); });

    a.join();
    b.join();
    INFO(why[0] << " | " << why[1]);
    CHECK(ok[0]);
    CHECK(ok[1]);
    auto again = sluice::storage::connect_storage(conninfo, CreateDatabase::kNo);
    CHECK(again.is_ok());
}

TEST_CASE("an unreachable storage server is reported as such") {
    auto r = sluice::storage::connect_storage("postgresql://127.0.0.1:1/x?connect_timeout=2", CreateDatabase::kYes);
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().code() == ErrorCode::kStorageUnreachable);
}
