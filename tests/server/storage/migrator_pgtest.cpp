// Storage migrations against a real Postgres: applied once, idempotent, safe when two processes
// migrate at once, and refusing a storage schema that was changed or is newer than the binary.
#include <thread>

#include <catch2/catch.hpp>
#include <pqxx/pqxx>

#include "migrations/migrations.h"
#include "server/storage/bucket_reader.h"
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

TEST_CASE("migrations apply once, a second run applies nothing") {
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
    // The schema exists for real: the op log takes a chunk, and the view unpacks it.
    sluice::test::exec_sql(uri,
                           "INSERT INTO sluice.op_chunks VALUES ('global[]', 1, 1, 1, 7, "
                           "'[[1,1,\"t\",\"a\",\"s\",\"{}\",7]]')");
    CHECK(count_rows(uri, "SELECT count(*) FROM sluice.ops WHERE bucket = 'global[]' AND op_id = 1 AND op = 1 "
                          "AND object_type = 't' AND object_id = 'a' AND subkey = 's' AND data = '{}' AND checksum = 7") == 1);
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

TEST_CASE("0007 moves an existing op log into chunks: the same ops, read back exactly") {
    const auto uri = sluice::test::fresh_database("migrate_op_chunks");
    const auto all = sluice::migrations::embedded();
    REQUIRE(all.size() >= 7);
    REQUIRE(all[6].version == 7);
    pqxx::connection c(uri);
    REQUIRE(sluice::storage::migrate(c, all.first(6)).is_ok());
    // Ops as 0006's table held them, with what JSON must escape, and a CLEAR op's NULL names.
    sluice::test::exec_sql(uri,
                           "INSERT INTO sluice.ops VALUES "
                           "('b[\"x\"]', 3, 4, NULL, NULL, NULL, NULL, 4294967295), "
                           "('b[\"x\"]', 5, 1, 'todos', 'a\"b\\\\c', E'tab\\there', E'{\"t\":\"line\\nnext ü\"}', 17), "
                           "('b[\"x\"]', 9, 2, 'todos', 'a\"b\\\\c', 'sub', NULL, 0), "
                           "('global[]', 4, 3, 'lists', 'l1', 'sub', NULL, 8); "
                           "INSERT INTO sluice.buckets VALUES ('b[\"x\"]', 9, 16, 3, 0), ('global[]', 4, 8, 1, 0)");
    REQUIRE(sluice::storage::migrate(c, all).is_ok());
    CHECK(count_rows(uri, "SELECT count(*) FROM sluice.op_chunks") == 4);
    CHECK(count_rows(uri, "SELECT count(*) FROM sluice.ops") == 4);

    auto reader = sluice::storage::BucketReader::open(uri);
    REQUIRE(reader.is_ok());
    auto ops = reader.value()->read_ops("b[\"x\"]", 0, 100, 10);
    INFO(ops.status().to_string());
    REQUIRE(ops.is_ok());
    REQUIRE(ops->size() == 3);
    CHECK(ops->at(0).op_id == 3);
    CHECK(ops->at(0).op == 4);
    CHECK(ops->at(0).object_type.empty());
    CHECK_FALSE(ops->at(0).data.has_value());
    CHECK(ops->at(0).checksum == 4294967295U);
    CHECK(ops->at(1).op_id == 5);
    CHECK(ops->at(1).object_type == "todos");
    CHECK(ops->at(1).object_id == "a\"b\\\\c");
    CHECK(ops->at(1).subkey == "tab\there");
    CHECK(ops->at(1).data == std::optional<std::string>("{\"t\":\"line\nnext \u00fc\"}"));
    CHECK(ops->at(1).checksum == 17);
    CHECK(ops->at(2).op == 2);
    CHECK_FALSE(ops->at(2).data.has_value());
    // Checksums wrap at 2^32: 4294967295 + 17 + 0 is 16; at checkpoint 4, the ops after it are
    // taken off the total.
    const std::vector<std::string> bucket{"b[\"x\"]"};
    auto sums = reader.value()->checksums(bucket, 100);
    REQUIRE(sums.is_ok());
    CHECK(sums->at(bucket[0]).checksum == 16);
    CHECK(sums->at(bucket[0]).count == 3);
    auto older = reader.value()->checksums(bucket, 4);
    REQUIRE(older.is_ok());
    CHECK(older->at(bucket[0]).checksum == 4294967295U);
    CHECK(older->at(bucket[0]).count == 1);

    // A chunk that spans the checkpoint a client asks at (the writer never writes one, but the
    // format allows it): only its ops after the checkpoint come off the total, and pages start
    // inside it.
    sluice::test::exec_sql(uri, "INSERT INTO sluice.op_chunks VALUES ('span[]', 20, 22, 3, 600, "
                                "'[[20,1,\"t\",\"a\",\"s\",\"{}\",100],[21,1,\"t\",\"b\",\"s\",\"{}\",200], "
                                "[22,1,\"t\",\"c\",\"s\",\"{}\",300]]'); "
                                "INSERT INTO sluice.buckets VALUES ('span[]', 22, 600, 3, 0)");
    const std::vector<std::string> span{"span[]"};
    auto at_20 = reader.value()->checksums(span, 20);
    REQUIRE(at_20.is_ok());
    CHECK(at_20->at("span[]").checksum == 100);
    CHECK(at_20->at("span[]").count == 1);
    auto at_21 = reader.value()->checksums(span, 21);
    REQUIRE(at_21.is_ok());
    CHECK(at_21->at("span[]").checksum == 300);
    auto page = reader.value()->read_ops("span[]", 20, 21, 10);
    REQUIRE(page.is_ok());
    REQUIRE(page->size() == 1);
    CHECK(page->front().object_id == "b");
}
