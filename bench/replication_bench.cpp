// Replication benchmarks (issues 3 and 4), against the private Postgres named by SLUICE_BENCH_PG_URI
// (default: deploy/dev-postgres.sh's URI). Rules: one global bucket + one per-owner bucket over
// items(id, owner, payload) rows of ~100 bytes. Prints each figure next to its target.
//   replication_bench [--rows N] [--phase all|snapshot|inserts|moves|bigtxn|decode]
// Phases (each in a fresh source and storage database):
//   snapshot  initial copy of an N-row table: rows/s and peak RSS
//   inserts   N single-row... (grouped 100 per transaction) inserts written while Sluice is stopped,
//             then replicated into storage: source rows/s (target >= 50,000/s); bytes per op
//   moves     N updates moving rows between owners: rows/s (target >= 20,000/s)
//   bigtxn    one N-row transaction: peak RSS of the process (target < 300 MB)
//   decode    the stream alone (decode, assemble, discard) vs pg_recvlogical on the same WAL:
//             one transaction per row and one N-row transaction (target >= 90% of pg_recvlogical)
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <libpq-fe.h>
#include <pqxx/pqxx>

#include "migrations/migrations.h"
#include "server/app/replicator.h"
#include "server/core/log.h"
#include "server/replication/pg_connection.h"
#include "server/replication/replication_setup.h"
#include "server/replication/replication_stream.h"
#include "server/storage/migrator.h"

namespace {

using Clock = std::chrono::steady_clock;

std::string g_admin_uri;

std::string with_db(const std::string& db) {
    char* err = nullptr;
    PQconninfoOption* opts = PQconninfoParse(g_admin_uri.c_str(), &err);
    std::string out;
    for (auto* o = opts; o != nullptr && o->keyword != nullptr; ++o) {
        if (o->val != nullptr && std::string_view(o->keyword) != "dbname") {
            out += fmt::format("{}='{}' ", o->keyword, o->val);
        }
    }
    PQconninfoFree(opts);
    return out + "dbname='" + db + "'";
}

void exec(const std::string& uri, const std::string& sql) {
    pqxx::connection c(uri);
    pqxx::nontransaction tx(c);
    tx.exec(sql);
}

std::string fresh(const std::string& db) {
    exec(g_admin_uri, fmt::format("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE "
                                  "database = '{}'",
                                  db));
    exec(g_admin_uri, "DROP DATABASE IF EXISTS " + db + " WITH (FORCE)");
    exec(g_admin_uri, "CREATE DATABASE " + db);
    return with_db(db);
}

long peak_rss_mb() {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.starts_with("VmHWM:")) {
            return std::stol(line.substr(6)) / 1024;
        }
    }
    return -1;
}

std::string lsn_now(const std::string& uri) {
    pqxx::connection c(uri);
    pqxx::nontransaction tx(c);
    return tx.exec1("SELECT pg_current_wal_lsn()::text")[0].as<std::string>();
}

constexpr const char* kRules = R"(bucket_definitions:
  global:
    data:
      - SELECT * FROM items
  by_owner:
    parameters: SELECT request.user_id() AS owner
    data:
      - SELECT * FROM items WHERE owner = bucket.owner
)";

struct Setup {
    std::string source;
    std::string storage;
    sluice::app::ReplicatorConfig config;
};

Setup setup(const std::string& tag) {
    Setup s;
    s.source = fresh("bench_" + tag + "_source");
    s.storage = fresh("bench_" + tag + "_storage");
    exec(s.source, "CREATE TABLE items (id bigint PRIMARY KEY, owner text NOT NULL, payload text NOT NULL)");
    pqxx::connection c(s.storage);
    if (auto r = sluice::storage::migrate(c, sluice::migrations::embedded()); !r) {
        throw std::runtime_error(r.status().to_string());
    }
    auto compiled = sluice::config::rules::RuleSet::compile(kRules, "bench-rules.yaml", {"1#"});
    if (!compiled.rules) {
        throw std::runtime_error("bench rules do not compile");
    }
    s.config.source_conninfo = s.source;
    s.config.storage_conninfo = s.storage;
    s.config.slot = "bench_" + tag;
    s.config.publication = "bench";
    s.config.rules = compiled.rules;
    return s;
}

// ~100-byte rows: id, one of 1000 owners, a 70-character payload.
std::string insert_rows(long first, long count, long per_transaction) {
    return fmt::format(
        "DO $$ BEGIN FOR b IN 0..{2} LOOP "
        "INSERT INTO items SELECT g, 'owner-' || (g % 1000), repeat(md5(g::text), 2) || 'abcdef' "
        "FROM generate_series({0} + b * {3}, LEAST({0} + {1} - 1, {0} + (b + 1) * {3} - 1)) g; COMMIT; "
        "END LOOP; END $$",
        first, count, (count - 1) / per_transaction, per_transaction);
}

// Runs the replicator until storage's durable LSN reaches `target` (or the snapshot is done when
// target is empty); returns the seconds it took.
double replicate_until(Setup& s, const std::string& target) {
    sluice::app::Replicator replicator(s.config);
    std::atomic<bool> stop{false};
    sluice::protocol::Status status;
    const auto start = Clock::now();
    std::thread t([&] { status = replicator.run(stop); });
    pqxx::connection c(s.storage);
    for (;;) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        pqxx::nontransaction tx(c);
        auto r = tx.exec(target.empty()
                             ? std::string("SELECT snapshot_done FROM sluice.replication_state")
                             : "SELECT durable_lsn >= '" + target + "'::pg_lsn FROM sluice.replication_state");
        if (!r.empty() && r[0][0].as<bool>()) {
            break;
        }
        if (!t.joinable()) {
            break;
        }
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    stop = true;
    t.join();
    if (!status) {
        throw std::runtime_error(status.to_string());
    }
    return seconds;
}

void row(const std::string& what, const std::string& value, const std::string& target, const std::string& verdict) {
    fmt::print("{:<58} {:>16}   {:<18} {}\n", what, value, target, verdict);
}

void phase_snapshot(long rows) {
    auto s = setup("snapshot");
    exec(s.source, insert_rows(0, rows, 100000));
    const double seconds = replicate_until(s, "");
    row(fmt::format("snapshot of a {}-row table", rows), fmt::format("{:.0f} rows/s", rows / seconds), "-", "");
    row("  peak RSS of the process", fmt::format("{} MB", peak_rss_mb()), "flat", "");
}

void phase_inserts(long rows) {
    auto s = setup("inserts");
    replicate_until(s, "");  // empty table: creates the slot
    exec(s.source, insert_rows(0, rows, 100));
    const auto target = lsn_now(s.source);
    const double seconds = replicate_until(s, target);
    const double rate = rows / seconds;
    row(fmt::format("{} inserts (100 per txn) into storage", rows), fmt::format("{:.0f} rows/s", rate),
        ">= 50000 rows/s", rate >= 50000 ? "MET" : "NOT MET");
    pqxx::connection c(s.storage);
    pqxx::nontransaction tx(c);
    auto r = tx.exec1(
        "SELECT pg_total_relation_size('sluice.ops') + pg_total_relation_size('sluice.buckets'), "
        "(SELECT count(*) FROM sluice.ops), pg_total_relation_size('sluice.current_rows')");
    const double per_op = r[0].as<double>() / r[1].as<double>();
    row("  storage per op (ops + bucket totals)", fmt::format("{:.0f} bytes", per_op), "-", "");
    row("  current row copies per source row", fmt::format("{:.0f} bytes", r[2].as<double>() / rows), "-", "");
}

void phase_moves(long rows) {
    auto s = setup("moves");
    exec(s.source, insert_rows(0, rows, 100000));
    replicate_until(s, "");
    exec(s.source, fmt::format("DO $$ BEGIN FOR b IN 0..{} LOOP "
                               "UPDATE items SET owner = 'owner-' || ((id + 7) % 1000) "
                               "WHERE id >= b * 100 AND id < (b + 1) * 100; COMMIT; END LOOP; END $$",
                               (rows - 1) / 100));
    const auto target = lsn_now(s.source);
    const double seconds = replicate_until(s, target);
    const double rate = rows / seconds;
    row(fmt::format("{} updates moving rows between owners", rows), fmt::format("{:.0f} rows/s", rate),
        ">= 20000 rows/s", rate >= 20000 ? "MET" : "NOT MET");
}

void phase_bigtxn(long rows) {
    auto s = setup("bigtxn");
    replicate_until(s, "");
    const long before = peak_rss_mb();
    exec(s.source, insert_rows(0, rows, rows));
    const auto target = lsn_now(s.source);
    const double seconds = replicate_until(s, target);
    const long peak = peak_rss_mb();
    row(fmt::format("one {}-row transaction", rows), fmt::format("{:.0f} rows/s", rows / seconds), "-", "");
    row("  peak RSS of the process", fmt::format("{} MB", peak), "< 300 MB", peak < 300 ? "MET" : "NOT MET");
    (void)before;
}

// The stream alone: decode and assemble, then discard (marking each transaction durable at once).
double stream_only(const std::string& source, const std::string& slot, const std::string& target) {
    sluice::replication::TransactionQueue queue(1024, 100000);
    sluice::replication::ReplicationStream stream({source, slot, {"bench"}, {}}, queue);
    const auto end = sluice::protocol::Lsn::parse(target).value();
    const auto start = Clock::now();
    stream.start();
    for (;;) {
        auto txn = queue.pop(std::chrono::milliseconds(100));
        if (txn && txn->complete) {
            queue.mark_durable(txn->end_lsn);
            if (txn->end_lsn >= end) {
                break;
            }
        }
        if (!txn && queue.closed()) {
            break;
        }
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    stream.request_stop();
    (void)stream.join();
    return seconds;
}

double recvlogical(const std::string& source, const std::string& slot, const std::string& target) {
    const auto start = Clock::now();
    const auto command = fmt::format(
        "/usr/lib/postgresql/15/bin/pg_recvlogical -d \"{}\" -S {} --start --endpos={} --plugin=pgoutput "
        "-o proto_version=1 -o publication_names=bench -f /dev/null 2>/dev/null",
        source, slot, target);
    if (std::system(command.c_str()) != 0) {
        throw std::runtime_error("pg_recvlogical failed");
    }
    return std::chrono::duration<double>(Clock::now() - start).count();
}

void phase_decode(long rows) {
    for (const long per_txn : {1L, rows}) {
        auto s = setup("decode");
        {
            auto repl = sluice::replication::PgConnection::open(s.source, sluice::replication::ConnectionKind::kReplication, 10);
            auto regular = sluice::replication::PgConnection::open(s.source, sluice::replication::ConnectionKind::kRegular, 10);
            (void)sluice::replication::ensure_publication(regular.value(), {"bench", {"public.items"}});
            (void)sluice::replication::ensure_slot(repl.value(), "bench_ours");
            (void)sluice::replication::ensure_slot(repl.value(), "bench_theirs");
        }
        const long count = per_txn == 1 ? std::min(rows, 200000L) : rows;  // 1M commits take minutes to write
        exec(s.source, insert_rows(0, count, per_txn));
        const auto target = lsn_now(s.source);
        const double theirs = recvlogical(s.source, "bench_theirs", target);
        const double ours = stream_only(s.source, "bench_ours", target);
        const double ratio = theirs / ours;
        row(fmt::format("decode {} rows, {} per txn: ours vs pg_recvlogical", count, per_txn),
            fmt::format("{:.0f}% ({:.0f} vs {:.0f} rows/s)", 100 * ratio, count / ours, count / theirs), ">= 90%",
            ratio >= 0.9 ? "MET" : "NOT MET");
    }
}

}  // namespace

int main(int argc, char** argv) {
    long rows = 1'000'000;
    std::string phase = "all";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (std::string_view(argv[i]) == "--rows") {
            rows = std::stol(argv[i + 1]);
        } else if (std::string_view(argv[i]) == "--phase") {
            phase = argv[i + 1];
        }
    }
    const char* uri = std::getenv("SLUICE_BENCH_PG_URI");
    g_admin_uri = uri != nullptr ? uri : "postgresql://postgres@127.0.0.1:54329/postgres";
    sluice::core::set_log_level(sluice::core::LogLevel::kWarn);
    fmt::print("{:<58} {:>16}   {:<18} {}\n", "benchmark", "result", "target", "");
    try {
        if (phase == "all" || phase == "snapshot") {
            phase_snapshot(rows);
        }
        if (phase == "all" || phase == "inserts") {
            phase_inserts(rows);
        }
        if (phase == "all" || phase == "moves") {
            phase_moves(rows / 4);
        }
        if (phase == "all" || phase == "decode") {
            phase_decode(rows);
        }
        if (phase == "bigtxn") {  // alone: peak RSS is per process
            phase_bigtxn(rows);
        }
    } catch (const std::exception& e) {
        fmt::print(stderr, "replication_bench: {}\n", e.what());
        return 1;
    }
    return 0;
}
