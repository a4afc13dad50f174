// Start-up checks of the source against real Postgres servers: a good one, and each way a server or
// role can be unfit, with the message that says how to fix it.
#include <catch2/catch.hpp>

#include "server/replication/preflight.h"
#include "tests/support/cluster.h"
#include "tests/support/pg.h"

using sluice::protocol::ErrorCode;
using sluice::replication::preflight;

namespace {

sluice::protocol::Result<sluice::replication::SourceInfo> check(const std::string& uri, const std::string& slot = "s") {
    return preflight({uri, slot, 5});
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("a well-configured source passes") {
    auto info = check(sluice::test::pg_uri());
    INFO(info.status().to_string());
    REQUIRE(info.is_ok());
    CHECK(info->server_version.starts_with("15."));
    CHECK_FALSE(info->system_id.empty());
    CHECK(info->current_lsn.value() > 0);
}

TEST_CASE("an unreachable server") {
    auto r = check("postgresql://postgres@127.0.0.1:1/postgres");
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().code() == ErrorCode::kSourceUnreachable);
    CHECK(contains(r.status().message(), "cannot reach the source Postgres"));
}

TEST_CASE("a bad password") {
    const auto uri = sluice::test::pg_uri();
    sluice::test::exec_sql(uri,
                           "DROP ROLE IF EXISTS sluice_pw_role; "
                           "CREATE ROLE sluice_pw_role LOGIN REPLICATION PASSWORD 'right' IN ROLE sluice_password_users");
    auto r = check(sluice::test::with_database(uri, "postgres") + " user=sluice_pw_role password=wrong");
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().code() == ErrorCode::kSourceAuthFailed);
    CHECK(contains(r.status().message(), "password authentication failed for user \"sluice_pw_role\""));
    CHECK_FALSE(contains(r.status().message(), "wrong"));  // the password never reaches a message

    auto good = check(sluice::test::with_database(uri, "postgres") + " user=sluice_pw_role password=right");
    INFO(good.status().to_string());
    CHECK(good.is_ok());
}

TEST_CASE("a role without REPLICATION") {
    const auto uri = sluice::test::pg_uri();
    sluice::test::exec_sql(uri, "DROP ROLE IF EXISTS sluice_norepl; CREATE ROLE sluice_norepl LOGIN");
    auto r = check(sluice::test::with_database(uri, "postgres") + " user=sluice_norepl");
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().code() == ErrorCode::kSourceNoReplicationPrivilege);
    CHECK(r.status().message() ==
          "the source user 'sluice_norepl' may not replicate: run ALTER ROLE \"sluice_norepl\" WITH REPLICATION as a "
          "superuser");
}

TEST_CASE("a missing source database") {
    auto r = check(sluice::test::with_database(sluice::test::pg_uri(), "no_such_db"));
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().code() == ErrorCode::kSourceDatabaseMissing);
}

TEST_CASE("a server with wal_level=replica") {
    sluice::test::ScratchCluster cluster({.port = 25461, .wal_level = "replica"});
    auto r = check(cluster.uri());
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().code() == ErrorCode::kSourceWalLevel);
    CHECK(r.status().message() ==
          "the source Postgres has wal_level = 'replica', but logical replication needs 'logical': set wal_level = "
          "logical in postgresql.conf (or run ALTER SYSTEM SET wal_level = logical) and restart Postgres; the setting "
          "takes effect only after a restart");
}

TEST_CASE("a server with no free replication slot") {
    sluice::test::ScratchCluster cluster({.port = 25462, .slots = 2});
    sluice::test::exec_sql(cluster.uri(),
                           "SELECT pg_create_physical_replication_slot('busy_a'); "
                           "SELECT pg_create_physical_replication_slot('busy_b')");
    auto r = check(cluster.uri(), "sluice");
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().code() == ErrorCode::kSourceNoFreeSlots);
    CHECK(contains(r.status().message(), "all 2 of max_replication_slots are in use (busy_a (physical), busy_b (physical))"));
    // An existing slot of our own needs no free one: a restart must not be refused.
    sluice::test::exec_sql(cluster.uri(), "SELECT pg_drop_replication_slot('busy_b')");
    sluice::test::exec_sql(cluster.uri(), "SELECT pg_create_logical_replication_slot('sluice', 'pgoutput')");
    auto restart = check(cluster.uri(), "sluice");
    INFO(restart.status().to_string());
    REQUIRE(restart.is_ok());
    CHECK(restart->slot_exists);
}
