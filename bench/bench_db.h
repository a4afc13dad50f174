// Scratch databases for the benchmarks, on the Postgres named by SLUICE_BENCH_PG_URI.
#pragma once

#include <string>

namespace sluice::bench {

// `admin_uri` with its database replaced by `database`.
[[nodiscard]] std::string database_uri(const std::string& admin_uri, const std::string& database);
// Runs SQL (one or more statements) outside a transaction block.
void exec_sql(const std::string& uri, const std::string& sql);
// Drops `database` (and the replication slots in it) if it exists, creates it empty, returns its URI.
[[nodiscard]] std::string fresh_database(const std::string& admin_uri, const std::string& database);
// Between two measurements: drops the databases named `prefix`… (and their replication slots), runs
// a CHECKPOINT, and waits up to a minute until no autovacuum worker runs, so the work one phase
// left behind does not run during the next one.
void settle(const std::string& admin_uri, const std::string& prefix);

}  // namespace sluice::bench
