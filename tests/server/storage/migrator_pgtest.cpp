// Storage migrations against a real Postgres: applied once, idempotent, safe when two processes
// migrate at once, and refusing a storage schema that was changed or is newer than the binary.
#include <thread>

#include <catch2/catch.hpp>
#include <pqxx/pqxx>

#include "migrations/migrations.h"
#include "server/storage/migrator.h"
#include "tests/support/pg.h"

using sluice::protocol::ErrorCode;

namespace {

int count_rows(const std::string& uri, const std::string& sql) {
    pqxx::connection c(uri);
    pqxx::nontransaction tx(c);
    return tx.exec1(sql)[0].as<int>();
}

}  // namespace

TEST_CASE("migrations apply once; a second run applies nothing") {
    const auto uri = sluice::test::fresh_database("migrate_twice");
    const auto all = sluice::migrations::embedded();
    REQUIRE_FALSE(all.empty());

    pqxx::connection c(uri);
    auto first = sluice::storage::migrate(c, all);
    REQUIRE(first.is_ok());
    CHECK(first->applied.size() == all.size());
    CHECK(first->current_version == all.back().version);

    auto second = sluice::storage::migrate(c, all);
    REQUIRE(second.is_ok());
    CHECK(second->applied.empty());
    CHECK(second->current_version == all.back().version);
    CHECK(count_rows(uri, "SELECT count(*) FROM sluice.schema_migrations") == static_cast<int>(all.size()));
    // The schema exists for real: the op log table takes a row.
    sluice::test::exec_sql(uri, "INSERT INTO sluice.ops (bucket, op_id, op, checksum) VALUES ('global[]', 1, 1, 7)");
}

TEST_CASE("two processes migrating at once apply each migration exactly once") {
    const auto uri = sluice::test::fresh_database("migrate_concurrent");
    const auto all = sluice::migrations::embedded();
    constexpr int kWorkers = 4;
    std::vector<std::optional<sluice::storage::MigrationReport>> reports(kWorkers);
    std::vector<std::string> errors(kWorkers);
    std::vector<std::thread> workers;
    for (int i = 0; i < kWorkers; ++i) {
        workers.emplace_back([&, i] {
            pqxx::connection c(uri);
            auto r = sluice::storage::migrate(c, all);
            if (r.is_ok()) {
                reports[i] = r.value();
            } else {
                errors[i] = r.status().to_string();
            }
        });
    }
    for (auto& w : workers) {
        w.join();
    }
    std::size_t applied_total = 0;
    for (int i = 0; i < kWorkers; ++i) {
        INFO(errors[i]);
        REQUIRE(reports[i].has_value());
        applied_total += reports[i]->applied.size();
        CHECK(reports[i]->current_version == all.back().version);
    }
    CHECK(applied_total == all.size());
    CHECK(count_rows(uri, "SELECT count(*) FROM sluice.schema_migrations") == static_cast<int>(all.size()));
}

TEST_CASE("a migration changed after it was applied is refused") {
    const auto uri = sluice::test::fresh_database("migrate_changed");
    pqxx::connection c(uri);
    REQUIRE(sluice::storage::migrate(c, sluice::migrations::embedded()).is_ok());
    sluice::test::exec_sql(uri, "UPDATE sluice.schema_migrations SET checksum = 'x' WHERE version = 1");
    auto r = sluice::storage::migrate(c, sluice::migrations::embedded());
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().code() == ErrorCode::kStorageMigrationChanged);
    CHECK(r.status().message() == "migration 0001_initial was changed after it was applied");
}

TEST_CASE("a storage schema newer than the binary is refused") {
    const auto uri = sluice::test::fresh_database("migrate_newer");
    pqxx::connection c(uri);
    REQUIRE(sluice::storage::migrate(c, sluice::migrations::embedded()).is_ok());
    sluice::test::exec_sql(uri, "INSERT INTO sluice.schema_migrations (version, name, checksum) VALUES (999, 'future', 'x')");
    auto r = sluice::storage::migrate(c, sluice::migrations::embedded());
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().code() == ErrorCode::kStorageMigrationUnknown);
}

TEST_CASE("a failing migration is rolled back and reported with its name") {
    const auto uri = sluice::test::fresh_database("migrate_failing");
    const std::array broken{sluice::migrations::Migration{1, "broken", "CREATE TABLE sluice.a (x int); SELEC 1"}};
    pqxx::connection c(uri);
    auto r = sluice::storage::migrate(c, broken);
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().code() == ErrorCode::kStorageMigrationFailed);
    CHECK(r.status().message().starts_with("migration 0001_broken failed: ERROR:  syntax error at or near \"SELEC\""));
    CHECK(count_rows(uri, "SELECT count(*) FROM pg_tables WHERE schemaname = 'sluice' AND tablename = 'a'") == 0);
    CHECK(count_rows(uri, "SELECT count(*) FROM sluice.schema_migrations") == 0);
}
