// StatusReporter: what an operator sees of a running sluice. It reads the components' own counters
// (replicator, server) and asks Postgres for what only Postgres knows (replication lag, WAL retained
// by the slot, snapshot progress, largest buckets), then serves it three ways:
//   - as metrics in core::metrics() (a collector; GET /metrics renders them),
//   - as JSON for the /admin status page (GET /admin/status.json),
//   - as a one-line summary in the log every logging.summary_interval_seconds.
// Database reads are cached for a second, time out after a few seconds, and never throw: a source or
// storage that cannot be reached shows up as an error in the status, not as a failed scrape.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <pqxx/connection>

#include "config/sluice_config.h"
#include "server/app/replicator.h"
#include "server/http/server.h"

namespace sluice::app {

struct TableProgress {
    std::string table;
    std::int64_t rows_done = 0;
    std::int64_t rows_estimated = 0;
    bool done = false;
};

struct BucketSize {
    std::string bucket;
    std::int64_t ops = 0;
};

// One reading of Postgres, plus the counters at that moment.
struct StatusReading {
    // Source (empty role=api): the slot of the active rules version (source.slot before any).
    std::string slot;
    bool slot_found = false;
    bool slot_active = false;
    std::int64_t lag_bytes = 0;           // current WAL position - what Sluice confirmed
    double lag_seconds = 0;               // pg_stat_replication.flush_lag (0 when caught up)
    std::int64_t wal_retained_bytes = 0;  // current WAL position - the slot's restart_lsn
    std::string source_error;             // why the source could not be read ("" when it could)
    // Storage.
    bool snapshot_done = false;
    std::vector<TableProgress> snapshot;
    std::int64_t latest_checkpoint = 0;
    std::vector<BucketSize> largest_buckets;  // the ten with the most ops
    std::string storage_error;
};

class StatusReporter {
public:
    // `replicator` may be null (role api); it must outlive the reporter.
    StatusReporter(const config::Config& config, const ReplicatorStats* replicator);
    ~StatusReporter();  // unregisters the collector, stops the summary thread
    StatusReporter(const StatusReporter&) = delete;
    StatusReporter& operator=(const StatusReporter&) = delete;

    // The server's counters, once it runs (it is started after the reporter, whose status it serves);
    // null again before the server stops.
    void set_server(const http::ServerStats* server) { m_server.store(server); }

    // The cached reading (refreshed when older than a second). Blocks on Postgres: worker threads only.
    [[nodiscard]] StatusReading read();
    // The /admin page's data as a JSON object.
    [[nodiscard]] std::string status_json();
    // The log's one-line summary.
    [[nodiscard]] std::string summary_line();

private:
    void collect_metrics();
    void read_source(StatusReading& r);
    void read_storage(StatusReading& r);
    void summary_loop(std::chrono::seconds interval);

    std::string m_source_conninfo;  // "" when this process does not replicate
    std::string m_storage_conninfo;
    std::string m_slot;
    const ReplicatorStats* m_replicator;
    std::atomic<const http::ServerStats*> m_server{nullptr};
    std::chrono::steady_clock::time_point m_started = std::chrono::steady_clock::now();

    std::mutex m_read_mutex;  // guards the connections and the cache
    std::unique_ptr<pqxx::connection> m_source;
    std::unique_ptr<pqxx::connection> m_storage;
    std::optional<StatusReading> m_cached;
    std::chrono::steady_clock::time_point m_cached_at;

    std::uint64_t m_collector_id = 0;
    std::mutex m_stop_mutex;  // with m_wake: interrupts the summary wait
    std::condition_variable m_wake;
    bool m_stop = false;
    std::thread m_summary;
};

}  // namespace sluice::app
