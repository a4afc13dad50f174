// Status: metrics, the /admin page's JSON and the log summary (see status_reporter.h).
#include "server/app/status_reporter.h"

#include <pqxx/pqxx>

#include "protocol/wire/json_write.h"
#include "server/core/log.h"
#include "server/core/metrics.h"
#include "server/core/pg_errors.h"
#include "server/storage/database.h"

namespace sluice::app {

namespace {

const core::Logger kLog("status");

constexpr auto kCacheFor = std::chrono::seconds(1);

// Short timeouts: a status read must answer even when a database hangs.
std::string monitoring_conninfo(const std::string& conninfo) {
    auto with = storage::with_settings(
        conninfo, {{"connect_timeout", "3"}, {"options", "-c statement_timeout=3000"}, {"application_name", "sluice status"}});
    return with ? with.value() : conninfo;
}

// Runs `body` on a connection opened on first use; a failure drops the connection (the next read
// reconnects) and is returned as text.
template <typename F>
std::string with_connection(std::unique_ptr<pqxx::connection>& connection, const std::string& conninfo, F&& body) {
    try {
        if (!connection) {
            connection = std::make_unique<pqxx::connection>(conninfo);
        }
        pqxx::nontransaction tx(*connection);
        body(tx);
        return {};
    } catch (const std::exception& e) {
        connection.reset();
        return core::one_line(e.what());
    }
}

void append_field(std::string& out, std::string_view name) {
    if (out.back() != '{') {
        out += ',';
    }
    protocol::wire::append_json_string(out, name);
    out += ':';
}

void append_string_field(std::string& out, std::string_view name, std::string_view value) {
    append_field(out, name);
    protocol::wire::append_json_string(out, value);
}

void append_number_field(std::string& out, std::string_view name, double value) {
    append_field(out, name);
    protocol::wire::append_js_number(out, value);
}

void append_bool_field(std::string& out, std::string_view name, bool value) {
    append_field(out, name);
    out += value ? "true" : "false";
}

std::string human_bytes(double bytes) {
    constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int unit = 0;
    while (bytes >= 1024 && unit < 4) {
        bytes /= 1024;
        ++unit;
    }
    return unit == 0 ? fmt::format("{:.0f} B", bytes) : fmt::format("{:.1f} {}", bytes, kUnits[unit]);
}

}  // namespace

StatusReporter::StatusReporter(const config::Config& config, const ReplicatorStats* replicator)
    : m_slot(config.source.slot), m_replicator(replicator) {
    if (config.role != config::Role::kApi) {
        m_source_conninfo = monitoring_conninfo(config.source.uri);
    }
    if (auto storage = storage::storage_conninfo(config)) {
        m_storage_conninfo = monitoring_conninfo(storage.value());
    }
    m_collector_id = core::metrics().add_collector([this] { collect_metrics(); });
    if (config.logging.summary_interval_seconds > 0) {
        const auto interval = std::chrono::seconds(config.logging.summary_interval_seconds);
        m_summary = std::thread([this, interval] { summary_loop(interval); });
    }
}

StatusReporter::~StatusReporter() {
    core::metrics().remove_collector(m_collector_id);
    {
        std::lock_guard lock(m_stop_mutex);
        m_stop = true;
    }
    m_wake.notify_all();
    if (m_summary.joinable()) {
        m_summary.join();
    }
}

void StatusReporter::read_source(StatusReading& r) {
    if (m_source_conninfo.empty()) {
        return;
    }
    r.source_error = with_connection(m_source, m_source_conninfo, [&](pqxx::nontransaction& tx) {
        auto rows = tx.exec_params(
            "SELECT s.active, "
            "       COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn), 0)::bigint, "
            "       COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn), 0)::bigint, "
            "       COALESCE(EXTRACT(epoch FROM r.flush_lag), 0)::float8 "
            "FROM pg_replication_slots s LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid "
            "WHERE s.slot_name = $1",
            r.slot);
        if (rows.empty()) {
            return;
        }
        r.slot_found = true;
        r.slot_active = rows[0][0].as<bool>();
        r.lag_bytes = std::max<std::int64_t>(0, rows[0][1].as<std::int64_t>());
        r.wal_retained_bytes = std::max<std::int64_t>(0, rows[0][2].as<std::int64_t>());
        r.lag_seconds = rows[0][3].as<double>();
    });
}

void StatusReporter::read_storage(StatusReading& r) {
    if (m_storage_conninfo.empty()) {
        r.storage_error = "no storage connection configured";
        return;
    }
    r.storage_error = with_connection(m_storage, m_storage_conninfo, [&](pqxx::nontransaction& tx) {
        auto active = tx.exec("SELECT slot_name FROM sluice.rules_versions WHERE state = 'active'");
        if (!active.empty()) {
            r.slot = active[0][0].as<std::string>();
        }
        auto state = tx.exec_params("SELECT snapshot_done FROM sluice.replication_state WHERE slot_name = $1", r.slot);
        r.snapshot_done = !state.empty() && state[0][0].as<bool>();
        for (const auto& row : tx.exec_params(
                 "SELECT source_table, rows_done, rows_estimated, done FROM sluice.snapshot_progress "
                 "WHERE slot_name = $1 ORDER BY source_table",
                 r.slot)) {
            r.snapshot.push_back(
                {row[0].as<std::string>(), row[1].as<std::int64_t>(), row[2].as<std::int64_t>(), row[3].as<bool>()});
        }
        r.latest_checkpoint = tx.exec1(
            "SELECT COALESCE(max(op_id), 0) FROM sluice.checkpoints WHERE rules_version = "
            "COALESCE((SELECT id FROM sluice.rules_versions WHERE state = 'active'), 1)")[0].as<std::int64_t>();
        for (const auto& row : tx.exec("SELECT bucket, op_count FROM sluice.buckets ORDER BY op_count DESC LIMIT 10")) {
            r.largest_buckets.push_back({row[0].as<std::string>(), row[1].as<std::int64_t>()});
        }
    });
}

StatusReading StatusReporter::read() {
    std::lock_guard lock(m_read_mutex);
    const auto now = std::chrono::steady_clock::now();
    if (!m_cached || now - m_cached_at >= kCacheFor) {
        StatusReading r;
        r.slot = m_slot;
        read_storage(r);  // first: it finds the active rules version's slot
        read_source(r);
        m_cached = std::move(r);
        m_cached_at = now;
    }
    return *m_cached;
}

void StatusReporter::collect_metrics() {
    auto& m = core::metrics();
    const auto r = read();
    m.gauge("sluice_up_seconds", "seconds since this process started")
        .set(std::chrono::duration<double>(std::chrono::steady_clock::now() - m_started).count());
    if (!m_source_conninfo.empty()) {
        m.gauge("sluice_replication_lag_bytes", "WAL written on the source that Sluice has not yet confirmed")
            .set(static_cast<double>(r.lag_bytes));
        m.gauge("sluice_replication_lag_seconds", "flush lag of the slot's connection (pg_stat_replication)")
            .set(r.lag_seconds);
        m.gauge("sluice_replication_wal_retained_bytes", "WAL the source keeps for the slot (from its restart_lsn)")
            .set(static_cast<double>(r.wal_retained_bytes));
        m.gauge("sluice_replication_slot_active", "1 when the slot has a connected replication stream")
            .set(r.slot_active ? 1 : 0);
        m.gauge("sluice_source_reachable", "1 when the last status read of the source succeeded")
            .set(r.source_error.empty() ? 1 : 0);
    }
    m.gauge("sluice_storage_reachable", "1 when the last status read of storage succeeded")
        .set(r.storage_error.empty() ? 1 : 0);
    m.gauge("sluice_snapshot_done", "1 once the initial snapshot is complete").set(r.snapshot_done ? 1 : 0);
    std::int64_t done = 0;
    std::int64_t estimated = 0;
    for (const auto& t : r.snapshot) {
        done += t.rows_done;
        estimated += t.done ? t.rows_done : std::max(t.rows_estimated, t.rows_done);
    }
    m.gauge("sluice_snapshot_rows_done", "rows copied by the initial snapshot").set(static_cast<double>(done));
    m.gauge("sluice_snapshot_rows_estimated", "rows the initial snapshot expects to copy (planner estimates)")
        .set(static_cast<double>(estimated));
    m.gauge("sluice_storage_latest_checkpoint", "op_id of the latest checkpoint")
        .set(static_cast<double>(r.latest_checkpoint));
    if (m_replicator != nullptr) {
        m.counter("sluice_replication_transactions_total", "source transactions applied to storage")
            .store(m_replicator->transactions.load());
        m.counter("sluice_replication_changes_total", "source row changes applied to storage")
            .store(m_replicator->changes.load());
        m.counter("sluice_storage_ops_written_total", "bucket operations written").store(m_replicator->ops.load());
        m.counter("sluice_storage_checkpoints_total", "checkpoints written").store(m_replicator->checkpoints.load());
        m.counter("sluice_snapshot_rows_copied_total", "rows copied by snapshots in this process")
            .store(m_replicator->snapshot_rows.load());
    }
    if (const auto* server = m_server.load(); server != nullptr) {
        m.gauge("sluice_sync_sessions", "sync sessions (HTTP streams and WebSockets) streaming now")
            .set(static_cast<double>(server->sessions_active.load()));
        m.counter("sluice_sync_sessions_total", "sync sessions started").store(server->sessions_total.load());
        m.counter("sluice_http_connections_total", "TCP connections accepted").store(server->connections_total.load());
        m.counter("sluice_sync_bytes_sent_total", "bytes of sync lines sent to clients")
            .store(server->bytes_sent.load());
        m.counter("sluice_sync_slow_clients_closed_total", "sessions closed because the client could not keep up")
            .store(server->slow_clients_closed.load());
        m.counter("sluice_http_rejected_by_limits_total", "connections refused by connection limits")
            .store(server->rejected_limits.load());
        m.counter("sluice_auth_failures_total", "requests refused for a missing or invalid token")
            .store(server->auth_failures.load());
    }
}

std::string StatusReporter::status_json() {
    const auto r = read();
    std::string out = "{";
    append_number_field(out, "uptime_seconds",
                        std::chrono::duration<double>(std::chrono::steady_clock::now() - m_started).count());
    append_field(out, "replication");
    out += '{';
    append_bool_field(out, "enabled", !m_source_conninfo.empty());
    append_string_field(out, "slot", r.slot);
    append_bool_field(out, "slot_found", r.slot_found);
    append_bool_field(out, "slot_active", r.slot_active);
    append_number_field(out, "lag_bytes", static_cast<double>(r.lag_bytes));
    append_number_field(out, "lag_seconds", r.lag_seconds);
    append_number_field(out, "wal_retained_bytes", static_cast<double>(r.wal_retained_bytes));
    append_string_field(out, "source_error", r.source_error);
    if (m_replicator != nullptr) {
        append_number_field(out, "transactions", static_cast<double>(m_replicator->transactions.load()));
        append_number_field(out, "ops_written", static_cast<double>(m_replicator->ops.load()));
    }
    out += '}';
    append_field(out, "snapshot");
    out += '{';
    append_bool_field(out, "done", r.snapshot_done);
    append_field(out, "tables");
    out += '[';
    for (const auto& t : r.snapshot) {
        out += out.back() == '[' ? "{" : ",{";
        append_string_field(out, "table", t.table);
        append_number_field(out, "rows_done", static_cast<double>(t.rows_done));
        append_number_field(out, "rows_estimated", static_cast<double>(t.rows_estimated));
        append_bool_field(out, "done", t.done);
        out += '}';
    }
    out += "]}";
    append_field(out, "storage");
    out += '{';
    append_number_field(out, "latest_checkpoint", static_cast<double>(r.latest_checkpoint));
    append_string_field(out, "error", r.storage_error);
    append_field(out, "largest_buckets");
    out += '[';
    for (const auto& b : r.largest_buckets) {
        out += out.back() == '[' ? "{" : ",{";
        append_string_field(out, "bucket", b.bucket);
        append_number_field(out, "ops", static_cast<double>(b.ops));
        out += '}';
    }
    out += "]}";
    append_field(out, "clients");
    out += '{';
    if (const auto* server = m_server.load(); server != nullptr) {
        append_number_field(out, "sessions", static_cast<double>(server->sessions_active.load()));
        append_number_field(out, "sessions_total", static_cast<double>(server->sessions_total.load()));
        append_number_field(out, "bytes_sent", static_cast<double>(server->bytes_sent.load()));
        append_number_field(out, "slow_clients_closed", static_cast<double>(server->slow_clients_closed.load()));
        append_number_field(out, "auth_failures", static_cast<double>(server->auth_failures.load()));
    }
    out += '}';
    append_field(out, "recent_problems");
    out += '[';
    for (const auto& p : core::recent_problems()) {
        out += out.back() == '[' ? "{" : ",{";
        append_string_field(out, "ts", p.timestamp);
        append_string_field(out, "level", p.level);
        append_string_field(out, "category", p.category);
        append_string_field(out, "scope", p.scope);
        append_string_field(out, "message", p.message);
        out += '}';
    }
    out += "]}";
    return out;
}

std::string StatusReporter::summary_line() {
    const auto r = read();
    std::string line;
    if (!m_source_conninfo.empty()) {
        line += r.source_error.empty()
                    ? fmt::format("lag {:.1f} s / {}, WAL retained {}", r.lag_seconds,
                                  human_bytes(static_cast<double>(r.lag_bytes)),
                                  human_bytes(static_cast<double>(r.wal_retained_bytes)))
                    : fmt::format("source unreadable ({})", r.source_error);
        if (!r.snapshot_done) {
            std::int64_t done = 0;
            std::int64_t estimated = 0;
            for (const auto& t : r.snapshot) {
                done += t.rows_done;
                estimated += std::max(t.rows_estimated, t.rows_done);
            }
            line += fmt::format(", snapshot {}/{} rows", done, estimated);
        }
    }
    if (m_replicator != nullptr) {
        line += fmt::format(", {} txns, {} ops written", m_replicator->transactions.load(), m_replicator->ops.load());
    }
    line += fmt::format("{}checkpoint {}", line.empty() ? "" : ", ", r.latest_checkpoint);
    if (const auto* server = m_server.load(); server != nullptr) {
        line += fmt::format(", {} sessions, {} sent", server->sessions_active.load(),
                            human_bytes(static_cast<double>(server->bytes_sent.load())));
    }
    if (!r.storage_error.empty()) {
        line += fmt::format(", storage unreadable ({})", r.storage_error);
    }
    return line;
}

void StatusReporter::summary_loop(std::chrono::seconds interval) {
    std::unique_lock lock(m_stop_mutex);
    while (!m_wake.wait_for(lock, interval, [this] { return m_stop; })) {
        lock.unlock();
        kLog.info("summary: {}", summary_line());
        lock.lock();
    }
}

}  // namespace sluice::app
