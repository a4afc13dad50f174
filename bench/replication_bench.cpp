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
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <fmt/format.h>
#include <libpq-fe.h>
#include <pqxx/pqxx>

#include "bench/bench_db.h"
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

void exec(const std::string& uri, const std::string& sql) { sluice::bench::exec_sql(uri, sql); }
std::string fresh(const std::string& db) { return sluice::bench::fresh_database(g_admin_uri, db); }

double load_average() {
    double load[1] = {0};
    return getloadavg(load, 1) == 1 ? load[0] : -1;
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

Setup setup(const std::string& tag, const std::string& rules = kRules,
            const std::string& schema =
                "CREATE TABLE items (id bigint PRIMARY KEY, owner text NOT NULL, payload text NOT NULL)") {
    Setup s;
    s.source = fresh("bench_" + tag + "_source");
    s.storage = fresh("bench_" + tag + "_storage");
    exec(s.source, schema);
    pqxx::connection c(s.storage);
    if (auto r = sluice::storage::migrate(c, sluice::migrations::embedded()); !r) {
        throw std::runtime_error(r.status().to_string());
    }
    auto compiled = sluice::config::rules::RuleSet::compile(rules, "bench-rules.yaml", {"1#"});
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

// CPU seconds used so far by this process, and by the Postgres cluster (the postmaster, the
// backends it has reaped, and the live ones). The machine may be busy with other work: wall-clock
// rates then understate what two dedicated cores do, and CPU per row says where the time goes.
struct CpuTimes {
    double sluice = 0;
    double postgres = 0;
};

// /proc/<pid>/stat is one line; empty when the process is gone.
std::string proc_stat(long pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(stat, line);
    return line;
}

double proc_cpu_seconds(long pid, bool with_children) {
    const std::string text = proc_stat(pid);
    const auto close = text.rfind(')');
    if (close == std::string::npos) {
        return 0;
    }
    std::istringstream fields(text.substr(close + 2));
    std::vector<std::string> f((std::istream_iterator<std::string>(fields)), std::istream_iterator<std::string>());
    // After "(comm) ": state is field 3, so utime (14), stime (15), cutime (16), cstime (17) are at 11..14.
    double ticks = std::stod(f.at(11)) + std::stod(f.at(12));
    if (with_children) {
        ticks += std::stod(f.at(13)) + std::stod(f.at(14));
    }
    return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

long parent_of(long pid) {
    const std::string text = proc_stat(pid);
    const auto close = text.rfind(')');
    if (close == std::string::npos) {
        return 0;
    }
    std::istringstream fields(text.substr(close + 2));
    std::string state;
    long ppid = 0;
    fields >> state >> ppid;
    return ppid;
}

CpuTimes cpu_now() {
    static const long postmaster = [] {
        pqxx::connection c(g_admin_uri);
        pqxx::nontransaction tx(c);
        return parent_of(tx.exec1("SELECT pg_backend_pid()")[0].as<long>());
    }();
    CpuTimes t;
    rusage self{};
    getrusage(RUSAGE_SELF, &self);
    t.sluice = static_cast<double>(self.ru_utime.tv_sec + self.ru_stime.tv_sec) +
               static_cast<double>(self.ru_utime.tv_usec + self.ru_stime.tv_usec) / 1e6;
    t.postgres = proc_cpu_seconds(postmaster, true);
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
        const auto name = entry.path().filename().string();
        if (std::isdigit(static_cast<unsigned char>(name[0])) != 0 && parent_of(std::stol(name)) == postmaster) {
            t.postgres += proc_cpu_seconds(std::stol(name), false);
        }
    }
    return t;
}

struct Run {
    double seconds = 0;
    CpuTimes cpu;  // used during the run
};

// "CPU per row: Sluice 12.3 us + Postgres 20.1 us (30,864 rows/s on 2 dedicated cores)"
void cpu_row(const Run& run, long rows) {
    const double ours = run.cpu.sluice / rows * 1e6;
    const double theirs = run.cpu.postgres / rows * 1e6;
    fmt::print("  CPU per row: Sluice {:.1f} us + Postgres {:.1f} us (wall {:.1f} s, load average at start {:.1f})\n",
               ours, theirs, run.seconds, load_average());
}

// Runs the replicator until storage's durable LSN reaches `target` (or the snapshot is done when
// target is empty); returns the seconds it took and the CPU it used.
Run replicate_until(Setup& s, const std::string& target) {
    sluice::app::Replicator replicator(s.config);
    std::atomic<bool> stop{false};
    sluice::protocol::Status status;
    const auto cpu_start = cpu_now();
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
    Run run;
    run.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    const auto cpu_end = cpu_now();
    run.cpu = {cpu_end.sluice - cpu_start.sluice, cpu_end.postgres - cpu_start.postgres};
    stop = true;
    t.join();
    if (!status) {
        throw std::runtime_error(status.to_string());
    }
    return run;
}

void row(const std::string& what, const std::string& value, const std::string& target, const std::string& verdict) {
    fmt::print("{:<58} {:>16}   {:<18} {}\n", what, value, target, verdict);
}

void phase_snapshot(long rows) {
    auto s = setup("snapshot");
    exec(s.source, insert_rows(0, rows, 100000));
    const auto run = replicate_until(s, "");
    row(fmt::format("snapshot of a {}-row table", rows), fmt::format("{:.0f} rows/s", rows / run.seconds), "-", "");
    cpu_row(run, rows);
    row("  peak RSS of the process", fmt::format("{} MB", peak_rss_mb()), "flat", "");
}

void phase_inserts(long rows) {
    auto s = setup("inserts");
    replicate_until(s, "");  // empty table: creates the slot
    exec(s.source, insert_rows(0, rows, 100));
    const auto target = lsn_now(s.source);
    const auto run = replicate_until(s, target);
    const double rate = rows / run.seconds;
    row(fmt::format("{} inserts (100 per txn) into storage", rows), fmt::format("{:.0f} rows/s", rate),
        ">= 50000 rows/s", rate >= 50000 ? "MET" : "NOT MET");
    cpu_row(run, rows);
    pqxx::connection c(s.storage);
    pqxx::nontransaction tx(c);
    auto r = tx.exec1(
        "SELECT pg_total_relation_size('sluice.op_chunks') + pg_total_relation_size('sluice.buckets'), "
        "(SELECT sum(op_count) FROM sluice.op_chunks), pg_total_relation_size('sluice.current_rows')");
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
    const auto run = replicate_until(s, target);
    const double rate = rows / run.seconds;
    row(fmt::format("{} updates moving rows between owners", rows), fmt::format("{:.0f} rows/s", rate),
        ">= 20000 rows/s", rate >= 20000 ? "MET" : "NOT MET");
    cpu_row(run, rows);
}

void phase_bigtxn(long rows) {
    auto s = setup("bigtxn");
    replicate_until(s, "");
    const long before = peak_rss_mb();
    exec(s.source, insert_rows(0, rows, rows));
    const auto target = lsn_now(s.source);
    const auto run = replicate_until(s, target);
    const long peak = peak_rss_mb();
    row(fmt::format("one {}-row transaction", rows), fmt::format("{:.0f} rows/s", rows / run.seconds), "-", "");
    cpu_row(run, rows);
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

// Sync Streams (issue 8): the same source data replicated under 20 stream definitions whose
// access goes through subqueries on 5 member tables, and under the equivalent 20
// bucket_definitions (a parameter query per definition). Rows go to 20 data tables (one bucket per
// project each) and, one in ten, to the member tables (lookup entries).
namespace {

constexpr int kStreamTables = 20;
constexpr int kMemberTables = 5;

std::string streams_schema() {
    std::string sql;
    for (int i = 0; i < kStreamTables; ++i) {
        sql += fmt::format("CREATE TABLE t{} (id bigint PRIMARY KEY, project_id text NOT NULL, payload text NOT NULL);", i);
    }
    for (int m = 0; m < kMemberTables; ++m) {
        sql += fmt::format("CREATE TABLE members{} (id bigint PRIMARY KEY, project_id text NOT NULL, user_id text NOT NULL);", m);
    }
    return sql;
}

std::string streams_rules(bool streams) {
    std::string y = streams ? "config:\n  edition: 3\nstreams:\n" : "bucket_definitions:\n";
    for (int i = 0; i < kStreamTables; ++i) {
        y += streams ? fmt::format("  s{0}:\n    query: SELECT * FROM t{0} WHERE project_id = subscription.parameter('project') "
                                   "AND project_id IN (SELECT project_id FROM members{1} WHERE user_id = auth.user_id())\n",
                                   i, i % kMemberTables)
                     : fmt::format("  b{0}:\n    parameters: SELECT project_id FROM members{1} WHERE user_id = request.user_id()\n"
                                   "    data:\n      - SELECT * FROM t{0} WHERE project_id = bucket.project_id\n",
                                   i, i % kMemberTables);
    }
    return y;
}

// ~100-byte rows, 100 per transaction: each transaction writes to one data table (200 projects)
// and adds 10 member rows (1000 users).
std::string insert_stream_rows(long rows) {
    return fmt::format(
        "DO $$ BEGIN FOR b IN 0..{0} LOOP "
        "EXECUTE format('INSERT INTO t%s SELECT g, ''project-'' || (g %% 200), repeat(md5(g::text), 2) || ''abcdef'' "
        "FROM generate_series(%s, %s) g', b % {1}, b * 100, b * 100 + 99); "
        "EXECUTE format('INSERT INTO members%s SELECT g, ''project-'' || (g %% 200), ''user-'' || (g %% 1000) "
        "FROM generate_series(%s, %s) g', b % {2}, b * 10, b * 10 + 9); "
        "COMMIT; END LOOP; END $$",
        rows / 100 - 1, kStreamTables, kMemberTables);
}

void phase_streams(long rows) {
    for (const bool streams : {true, false}) {
        auto s = setup(streams ? "streams20" : "bucketdefs20", streams_rules(streams), streams_schema());
        replicate_until(s, "");
        exec(s.source, insert_stream_rows(rows));
        const auto target = lsn_now(s.source);
        const auto run = replicate_until(s, target);
        const long total = rows + rows / 10;
        row(fmt::format("{} rows under 20 {}", total, streams ? "streams with subqueries" : "bucket_definitions"),
            fmt::format("{:.0f} rows/s", total / run.seconds), "-", "");
        cpu_row(run, total);
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
        // Each phase starts without the databases of the one before (autovacuum on their million-row
        // tables would otherwise run during its measurement).
        const auto run_phase = [&](const char* name, auto&& body) {
            if (phase == "all" || phase == name) {
                sluice::bench::settle(g_admin_uri, "bench_");
                body();
            }
        };
        run_phase("snapshot", [&] { phase_snapshot(rows); });
        run_phase("inserts", [&] { phase_inserts(rows); });
        run_phase("moves", [&] { phase_moves(rows / 4); });
        run_phase("decode", [&] { phase_decode(rows); });
        run_phase("streams", [&] { phase_streams(rows / 4); });
        if (phase == "bigtxn") {  // alone: peak RSS is per process
            sluice::bench::settle(g_admin_uri, "bench_");
            phase_bigtxn(rows);
        }
    } catch (const std::exception& e) {
        fmt::print(stderr, "replication_bench: {}\n", e.what());
        return 1;
    }
    return 0;
}
