// Test support for tests labelled "pg": the private Postgres started by scripts/test.sh, and
// throwaway databases inside it so tests never see each other's tables.
#pragma once

#include <string>

namespace sluice::test {

// SLUICE_TEST_PG_URI (a superuser URI of the private cluster). Fails the test when unset: pg tests
// are never skipped silently.
[[nodiscard]] std::string pg_uri();

// `uri` with its database replaced (key=value form).
[[nodiscard]] std::string with_database(const std::string& uri, const std::string& database);

// Creates an empty database with a unique name derived from `prefix`, dropping any leftover of the
// same name; returns its URI. Use a prefix unique to the test case.
[[nodiscard]] std::string fresh_database(const std::string& prefix);

// Drops what fresh_database(prefix) created, with its replication slots (each cluster has a limited
// number: a test that makes a slot should drop it when it ends). Call it after the sluice using the
// database has stopped; a walsender still running is terminated.
void drop_fresh_database(const std::string& prefix);
// Drops every replication slot of the database at `uri` (ending walsenders still holding one): a
// test that leaves slots behind uses up the cluster's max_replication_slots for the rest of the suite.
void drop_replication_slots(const std::string& uri);

// Runs SQL on the given database as the superuser (for fixtures).
void exec_sql(const std::string& uri, const std::string& sql);

}  // namespace sluice::test
