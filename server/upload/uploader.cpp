// The Uploader (see uploader.h): connection pool, bounded retries, write checkpoints, and the
// background thread that prunes old batch records.
//
// Where the record lives: the batch's record must commit in the same transaction as its writes, so
// it lives in the SOURCE database, in table sluice.uploads (schema sluice, created by prepare() with
// the shape migrations 0001 and 0002 give it). When the storage database is the source database it
// is the same table. It is created only when the rules have write_rules. Managed publications never
// include it; replication_setup.cpp refuses any table of schema sluice in a publication, so a FOR ALL
// TABLES publication cannot be used together with uploads.
#include "server/upload/uploader.h"

#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <pqxx/pqxx>

#include "server/core/log.h"
#include "server/core/metrics.h"
#include "server/core/pg_errors.h"
#include "server/storage/database.h"
#include "server/storage/write_checkpoints.h"
#include "server/upload/db_errors.h"
#include "server/upload/detail/batch_transaction.h"

namespace sluice::upload {
namespace {

using protocol::ErrorCode;
using protocol::Status;

const core::Logger kLog("upload");

// The text forms the rules expect (the same session settings as the replication stream's).
constexpr const char* kSessionSettings =
    "SET datestyle = ISO; SET intervalstyle = postgres; SET timezone = UTC; SET extra_float_digits = 3; "
    "SET bytea_output = hex; SET application_name = 'sluice-upload'";

std::unique_ptr<pqxx::connection> open_source(const std::string& conninfo) {
    auto c = std::make_unique<pqxx::connection>(conninfo);
    pqxx::nontransaction(*c).exec0(kSessionSettings);
    return c;
}

// Idle connections, each used by one worker thread at a time. take() opens a new one when none is
// idle, so a pool grows to the number of concurrent callers; a connection that failed is not given
// back (its unique_ptr closes it).
template <class Connection>
class IdlePool {
public:
    template <class Open>
    std::unique_ptr<Connection> take(const Open& open) {
        {
            std::lock_guard lock(m_mutex);
            if (!m_idle.empty()) {
                auto c = std::move(m_idle.back());
                m_idle.pop_back();
                return c;
            }
        }
        return open();
    }
    void give_back(std::unique_ptr<Connection> c) {
        std::lock_guard lock(m_mutex);
        m_idle.push_back(std::move(c));
    }

private:
    std::mutex m_mutex;  // guards m_idle; taken by worker threads
    std::vector<std::unique_ptr<Connection>> m_idle;
};

}  // namespace

UploaderOptions options_from_config(const config::Config& config) {
    UploaderOptions o;
    o.source_conninfo = config.source.uri;
    if (auto storage = storage::storage_conninfo(config)) {
        o.storage_conninfo = std::move(storage).value();
    }
    o.policy = config.uploads.batch_policy;
    o.apply_as_role = config.uploads.apply_as_role;
    o.max_attempts = static_cast<int>(config.uploads.max_attempts);
    o.record_retention = std::chrono::hours(config.uploads.record_retention_hours);
    return o;
}

namespace {

// The upload layer's metrics (GET /metrics), beside UploaderStats (per instance, for tests).
struct UploadMetrics {
    core::Counter& applied = batches("applied");
    core::Counter& partial = batches("partial");
    core::Counter& rejected = batches("rejected");
    core::Counter& replayed = batches("replayed");
    core::Counter& failed = batches("failed");
    core::Counter& ops_applied = ops("applied");
    core::Counter& ops_rejected = ops("rejected");
    core::Counter& retries = core::metrics().counter(
        "sluice_upload_retries_total", "upload batch attempts run again after a deadlock, serialization failure or lost "
                                       "connection");

    static core::Counter& batches(const char* outcome) {
        return core::metrics().counter("sluice_upload_batches_total",
                                       "upload batches answered, by outcome (replayed: from the record of an earlier "
                                       "request; failed: an error, nothing applied)",
                                       {{"outcome", outcome}});
    }
    static core::Counter& ops(const char* status) {
        return core::metrics().counter("sluice_upload_ops_total", "operations of upload batches, applied or rejected",
                                       {{"status", status}});
    }
};

UploadMetrics& upload_metrics() {
    static UploadMetrics m;
    return m;
}

}  // namespace

struct Uploader::Impl {
    UploaderOptions options;
    std::shared_ptr<const config::rules::RuleSet> rules;
    UploadHook hook;
    TableCatalog catalog;
    UploaderStats stats;

    IdlePool<detail::PipelinedConnection> sources;  // for batches and write checkpoints
    IdlePool<pqxx::connection> storages;             // for records of write checkpoints

    std::mutex prepare_mutex;  // one prepare() at a time
    std::atomic<bool> prepared{false};

    // The pruning thread: deletes old batch records.
    std::mutex prune_mutex;  // guards stopping
    std::condition_variable prune_wake;
    bool stopping = false;
    std::thread pruner;

    Impl(UploaderOptions o, std::shared_ptr<const config::rules::RuleSet> r, UploadHook h)
        : options(std::move(o)), rules(std::move(r)), hook(std::move(h)), catalog(options.source_conninfo) {}

    std::unique_ptr<detail::PipelinedConnection> acquire() {
        return sources.take([&] { return detail::PipelinedConnection::open(options.source_conninfo, kSessionSettings); });
    }

    // Records a checkpoint of its own as pending in storage, for a lost slot (see
    // storage/write_checkpoints.h), on a pooled storage connection (dropped when it fails).
    void record_issued(const std::string& user_id, const std::string& client_id, const detail::IssuedCheckpoint& c) {
        if (options.storage_conninfo.empty()) {
            return;
        }
        auto storage = storages.take([&] { return std::make_unique<pqxx::connection>(options.storage_conninfo); });
        pqxx::nontransaction(*storage).exec_params0(storage::kRecordIssuedWriteCheckpointSql, user_id, client_id,
                                                    c.number, c.position.to_string());
        storages.give_back(std::move(storage));
    }

    // A write checkpoint of its own, on a pooled source connection, recorded in storage too; after
    // a failure (the connection is dropped) it is tried once more on a new one.
    protocol::Result<std::int64_t> issue_checkpoint(const std::string& user_id, const std::string& client_id,
                                                    std::optional<std::int64_t> number) {
        Status last;
        std::optional<detail::IssuedCheckpoint> issued;
        for (int attempt = 0; attempt < 2 && !issued; ++attempt) {
            try {
                auto source = acquire();
                issued = detail::issue_write_checkpoint(*source, user_id, client_id, number);
                sources.give_back(std::move(source));
            } catch (const std::exception& e) {
                last = Status{ErrorCode::kUploadUnavailable,
                              fmt::format("cannot issue a write checkpoint in the source database: {}",
                                          core::one_line(e.what()))};
            }
        }
        if (!issued) {
            return last;
        }
        // The message is written: a failure here answers an error (the client asks again) and the
        // checkpoint is still delivered through replication, only not after a slot loss.
        try {
            record_issued(user_id, client_id, *issued);
        } catch (const std::exception& e) {
            return Status{ErrorCode::kUploadUnavailable,
                          fmt::format("cannot record a write checkpoint in the storage database: {}",
                                      core::one_line(e.what()))};
        }
        return issued->number;
    }

    void count_answer(const protocol::wire::UploadResult& result, bool replayed) {
        auto& m = upload_metrics();
        stats.batches++;
        if (replayed) {
            stats.replays++;
            m.replayed.add();
            return;
        }
        using protocol::wire::BatchOutcome;
        (result.outcome == BatchOutcome::kApplied   ? m.applied
         : result.outcome == BatchOutcome::kPartial ? m.partial
                                                    : m.rejected)
            .add();
        for (const auto& op : result.ops) {
            const bool applied = op.status == protocol::wire::OpStatus::kApplied;
            (applied ? stats.ops_applied : stats.ops_rejected)++;
            (applied ? m.ops_applied : m.ops_rejected).add();
        }
    }
    void count_failure() {
        stats.failures++;
        upload_metrics().failed.add();
    }
    void count_retry() {
        stats.retries++;
        upload_metrics().retries.add();
    }

    void sleep_backoff(int attempt) {
        thread_local std::mt19937 random{std::random_device{}()};
        const auto base = options.retry_backoff.count() << std::min(attempt, 6);
        std::uniform_int_distribution<long> jitter(base / 2, base);
        std::this_thread::sleep_for(std::chrono::milliseconds(jitter(random)));
    }

    // The background loop: deletes batch records older than the retention, every 10 minutes from a
    // minute after start, on a connection of its own opened the first time.
    void run_pruner() {
        std::unique_ptr<pqxx::connection> source;
        auto next_prune = std::chrono::steady_clock::now() + std::chrono::minutes(1);
        std::unique_lock lock(prune_mutex);
        while (!prune_wake.wait_until(lock, next_prune, [&] { return stopping; })) {
            lock.unlock();
            next_prune = std::chrono::steady_clock::now() + std::chrono::minutes(10);
            try {
                if (prepared.load()) {  // uploads are on and sluice.uploads exists
                    if (!source) {
                        source = open_source(options.source_conninfo);
                    }
                    const auto pruned = pqxx::nontransaction(*source).exec_params(
                        "DELETE FROM sluice.uploads WHERE applied_at < now() - $1::int * interval '1 hour'",
                        static_cast<int>(options.record_retention.count()));
                    if (pruned.affected_rows() > 0) {
                        kLog.info("pruned {} upload records older than {} h", pruned.affected_rows(),
                                  options.record_retention.count());
                    }
                }
            } catch (const std::exception& e) {
                kLog.warn("pruning old upload records failed (trying again in 10 minutes): {}",
                          core::one_line(e.what()));
                source.reset();
            }
            lock.lock();
        }
    }
};

std::shared_ptr<Uploader> Uploader::create(UploaderOptions options, std::shared_ptr<const config::rules::RuleSet> rules,
                                           UploadHook hook) {
    auto impl = std::make_unique<Impl>(std::move(options), std::move(rules), std::move(hook));
    auto* raw = impl.get();
    impl->pruner = std::thread([raw] { raw->run_pruner(); });
    return std::shared_ptr<Uploader>(new Uploader(std::move(impl)));
}

Uploader::Uploader(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}

Uploader::~Uploader() {
    {
        std::lock_guard lock(m_impl->prune_mutex);
        m_impl->stopping = true;
    }
    m_impl->prune_wake.notify_all();
    m_impl->pruner.join();
}

const UploaderStats& Uploader::stats() const { return m_impl->stats; }

protocol::Status Uploader::prepare() {
    std::lock_guard lock(m_impl->prepare_mutex);
    if (m_impl->prepared.load() || m_impl->rules->write_rules().empty()) {
        return Status::ok();  // without write_rules nothing is uploaded: the source stays untouched
    }
    try {
        auto source = open_source(m_impl->options.source_conninfo);
        pqxx::work tx(*source);
        if (!m_impl->options.apply_as_role.empty()) {
            const auto member =
                tx.exec_params1("SELECT pg_has_role(current_user, oid, 'MEMBER') FROM pg_roles WHERE rolname = $1",
                                m_impl->options.apply_as_role);
            if (!member[0].as<bool>()) {
                return {
                    ErrorCode::kConfigInvalidValue,
                    fmt::format("uploads.apply_as_role '{}': the source user is not a member of that role; run "
                                "GRANT {} TO <source user>",
                                m_impl->options.apply_as_role, tx.conn().quote_name(m_impl->options.apply_as_role))};
            }
        }
        // Two processes starting together must not race on CREATE TABLE IF NOT EXISTS.
        tx.exec("SELECT pg_advisory_xact_lock(hashtext('sluice.uploads'))");
        tx.exec(detail::source_schema_sql());
        tx.commit();
    } catch (const pqxx::unexpected_rows&) {
        return {ErrorCode::kConfigInvalidValue,
                fmt::format("uploads.apply_as_role '{}' is not a role of the source database",
                            m_impl->options.apply_as_role)};
    } catch (const std::exception& e) {
        return {ErrorCode::kUploadSourceSetup,
                fmt::format("cannot create sluice.uploads in the source database: {}", core::one_line(e.what()))};
    }
    m_impl->prepared = true;
    return Status::ok();
}

protocol::Result<UploadAnswer> Uploader::upload(const auth::VerifiedToken& user,
                                                const protocol::wire::UploadBatch& batch) {
    auto& impl = *m_impl;
    if (impl.rules->write_rules().empty()) {
        impl.count_failure();
        return Status{ErrorCode::kUploadNotSupported,
                      "uploads are off: the sync rules have no write_rules section (see deploy/sync-rules.example.yaml)"};
    }
    if (!impl.prepared.load()) {
        if (auto status = prepare(); !status) {
            impl.count_failure();
            return status;
        }
    }
    const std::string client_id = batch.client_id.empty() ? user.user_id : batch.client_id;
    auto request = config::rules::Request::from_json(user.claims_json, "");
    if (!request) {
        return request.status();
    }
    const detail::BatchContext ctx{impl.rules->write_rules(),
                                   request.value(),
                                   user.user_id,
                                   user.claims_json,
                                   client_id,
                                   batch,
                                   impl.options.policy,
                                   impl.options.apply_as_role,
                                   impl.catalog,
                                   impl.hook};
    Status last;
    for (int attempt = 0; attempt < std::max(1, impl.options.max_attempts); ++attempt) {
        if (attempt > 0) {
            impl.count_retry();
            impl.sleep_backoff(attempt);
        }
        std::unique_ptr<detail::PipelinedConnection> source;
        try {
            source = impl.acquire();
            auto done = detail::run_batch(*source, ctx);
            if (!done) {
                impl.sources.give_back(std::move(source));
                impl.count_failure();
                return done.status();
            }
            impl.sources.give_back(std::move(source));
            impl.count_answer(done->result, done->replayed);
            return UploadAnswer{std::move(done->result), done->write_checkpoint, done->replayed};
        } catch (const std::exception& e) {
            // The connection is dropped whatever happened: a transaction may be open on it.
            const auto error = classify(e);
            last =
                Status{ErrorCode::kUploadUnavailable, fmt::format("batch '{}' of client '{}' could not be applied: {}",
                                                                  batch.batch_id, client_id, error.message)};
            if (error.action == DbAction::kStaleCatalog) {
                impl.catalog.invalidate();
                impl.prepared = false;  // sluice.uploads itself may be gone
                if (auto status = prepare(); !status) {
                    impl.count_failure();
                    return status;
                }
            } else if (error.action == DbAction::kEscalate || error.action == DbAction::kReject) {
                kLog.error("{}", last.message());
                impl.count_failure();
                return Status{ErrorCode::kInternal, last.message()};
            }
            kLog.warn("{} (attempt {} of {})", last.message(), attempt + 1, impl.options.max_attempts);
        }
    }
    impl.count_failure();
    return last;
}

protocol::Result<std::int64_t> Uploader::create_write_checkpoint(const std::string& user_id,
                                                                 const std::string& client_id) {
    return m_impl->issue_checkpoint(user_id, client_id, std::nullopt);
}

protocol::Status Uploader::request_write_checkpoint(const std::string& user_id, const std::string& client_id,
                                                    std::int64_t number) {
    auto issued = m_impl->issue_checkpoint(user_id, client_id, number);
    return issued ? Status::ok() : issued.status();
}

}  // namespace sluice::upload
