// The `sluice` subcommands: wiring of config, replication checks and storage (see commands.h).
#include "server/app/commands.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <mutex>
#include <thread>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include <fmt/format.h>
#include <pqxx/connection>

#include "config/rules/rule_set.h"
#include "config/sluice_config.h"
#include "config/sync_rules_check.h"
#include "migrations/migrations.h"
#include "server/core/log.h"
#include "server/core/text_file.h"
#include "server/core/service_notify.h"
#include "server/app/replicator.h"
#include "server/app/status_reporter.h"
#include "server/core/metrics.h"
#include "server/app/rules_versions.h"
#include "server/auth/token_verifier.h"
#include "server/http/server.h"
#include "server/storage/checkpoint_listener.h"
#include "server/replication/preflight.h"
#include "server/storage/database.h"
#include "server/storage/compactor.h"
#include "server/storage/migrator.h"
#include "server/upload/uploader.h"

namespace sluice::app {
namespace {

using protocol::ErrorCode;

const core::Logger kLog("app");

std::optional<std::string> read_file(const std::string& path) { return core::read_text_file(path); }

std::optional<std::string> real_env(std::string_view name) {
    const char* value = std::getenv(std::string(name).c_str());
    if (value == nullptr) {
        return std::nullopt;
    }
    return std::string(value);
}

void print(const std::vector<config::Diagnostic>& diagnostics) {
    for (const auto& d : diagnostics) {
        fmt::print(stderr, "{}\n", d.to_string());
    }
}

// Reads and validates sluice.yaml, printing every diagnostic; nullopt on errors.
std::optional<config::Config> load_config_file(const std::string& path) {
    auto text = read_file(path);
    if (!text) {
        config::Diagnostic d{config::Severity::kError, ErrorCode::kConfigFileUnreadable, {path}, "",
                             fmt::format("cannot read the config file: {}", std::strerror(errno))};
        print({d});
        return std::nullopt;
    }
    auto loaded = config::load_config(*text, path, real_env);
    print(loaded.diagnostics);
    return std::move(loaded.config);
}

std::string rules_path(const std::string& config_path, const config::Config& config) {
    std::filesystem::path rules(config.sync_rules.path);
    if (rules.is_absolute()) {
        return rules.string();
    }
    return (std::filesystem::path(config_path).parent_path() / rules).lexically_normal().string();
}

// Checks the sync-rules file, printing every diagnostic; false on errors.
bool check_rules_file(const std::string& path) {
    auto text = read_file(path);
    if (!text) {
        config::Diagnostic d{config::Severity::kError, ErrorCode::kRulesFileUnreadable, {path}, "sync_rules.path",
                             fmt::format("cannot read the sync-rules file: {}", std::strerror(errno))};
        print({d});
        return false;
    }
    auto diagnostics = config::check_sync_rules(*text, path);
    print(diagnostics);
    return !config::has_errors(diagnostics);
}

// Compiles the sync rules, printing every diagnostic; null on errors.
std::shared_ptr<const config::rules::RuleSet> compile_rules_file(const std::string& path) {
    auto text = read_file(path);
    if (!text) {
        config::Diagnostic d{config::Severity::kError, ErrorCode::kRulesFileUnreadable, {path}, "sync_rules.path",
                             fmt::format("cannot read the sync-rules file: {}", std::strerror(errno))};
        print({d});
        return nullptr;
    }
    auto compiled = config::rules::RuleSet::compile(*text, path, {"1#"});
    print(compiled.diagnostics);
    return compiled.rules;
}

// Compacts bucket storage every `interval` until destroyed.
class PeriodicCompaction {
public:
    PeriodicCompaction(std::string conninfo, std::chrono::seconds interval)
        : m_conninfo(std::move(conninfo)), m_interval(interval) {
        m_thread = std::thread([this] { loop(); });
    }
    ~PeriodicCompaction() {
        {
            std::lock_guard lock(m_mutex);
            m_stop = true;
        }
        m_wake.notify_all();
        m_thread.join();
    }
    PeriodicCompaction(const PeriodicCompaction&) = delete;
    PeriodicCompaction& operator=(const PeriodicCompaction&) = delete;

private:
    void loop() {
        std::unique_lock lock(m_mutex);
        while (!m_wake.wait_for(lock, m_interval, [this] { return m_stop; })) {
            lock.unlock();
            auto connection = storage::connect_storage(m_conninfo, storage::CreateDatabase::kNo);
            auto report = connection ? storage::compact(*connection.value())
                                     : protocol::Result<storage::CompactionReport>(connection.status());
            if (!report) {
                kLog.warn("scheduled compaction failed: {}", report.status().to_string());
            }
            lock.lock();
        }
    }

    std::string m_conninfo;
    std::chrono::seconds m_interval;
    std::mutex m_mutex;  // guards m_stop; with m_wake interrupts the wait
    std::condition_variable m_wake;
    bool m_stop = false;
    std::thread m_thread;
};

void apply_logging(const config::LoggingConfig& logging) {
    core::set_log_level(static_cast<core::LogLevel>(logging.level));
    core::set_log_format(logging.format == config::LogFormat::kJson ? core::LogFormat::kJson : core::LogFormat::kText);
}

// Connects to storage (creating it when allowed) and applies pending migrations.
bool prepare_storage(const config::Config& config, storage::CreateDatabase create) {
    auto conninfo = storage::storage_conninfo(config);
    if (!conninfo) {
        kLog.error("{}", conninfo.status().to_string());
        return false;
    }
    auto connection = storage::connect_storage(conninfo.value(), create);
    if (!connection) {
        kLog.error("{}", connection.status().to_string());
        return false;
    }
    auto report = storage::migrate(*connection.value(), migrations::embedded());
    if (!report) {
        kLog.error("{}", report.status().to_string());
        return false;
    }
    kLog.info("storage schema at version {} ({} migration(s) applied now)", report->current_version,
              report->applied.size());
    return true;
}

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// The client-facing server: token verifier, checkpoint listener -> rules source and hub, storage
// pool, HTTP server. The rules clients are served with are the active version's, as recorded in
// storage (a new version reaches the rules source before its first checkpoint reaches the hub);
// `fallback` only serves when storage records no version.
protocol::Result<std::unique_ptr<http::Server>> start_server(const config::Config& config,
                                                             std::shared_ptr<const config::rules::RuleSet> fallback,
                                                             std::unique_ptr<storage::CheckpointListener>& listener,
                                                             StatusReporter& status) {
    auto verifier = auth::TokenVerifier::create(config.auth, unix_now);
    if (!verifier) {
        return verifier.status();
    }
    const auto conninfo = storage::storage_conninfo(config).value();
    auto hub = std::make_shared<sync::CheckpointHub>();
    auto rules = std::make_shared<sync::RulesSource>();
    listener = std::make_unique<storage::CheckpointListener>(conninfo,
                                                             serve_active_version(rules, hub, fallback));
    http::ServerDeps deps;
    deps.rules = std::move(rules);
    deps.verifier = std::move(verifier).value();
    deps.storage = sync::StoragePool::for_conninfo(conninfo);
    deps.hub = hub;
    deps.admin_token = config.auth.admin_token;
    deps.metrics_text = [] { return core::metrics().render(); };
    deps.status_json = [&status] { return status.status_json(); };
    // write_rules: the rules file's (a rules version built from it later does not change them).
    deps.uploader = upload::Uploader::create(upload::options_from_config(config), fallback);
    if (auto prepared = deps.uploader->prepare(); !prepared) {
        // Sync still works; uploads retry the set-up and answer with this error until it succeeds.
        kLog.error("uploads: {}", prepared.to_string());
    }
    return http::Server::start(http::options_from_config(config), std::move(deps));
}

}  // namespace

int version_command() {
    const auto all = migrations::embedded();
    fmt::print("sluice {} (storage schema {})\n", SLUICE_VERSION, all.empty() ? 0 : all.back().version);
    return 0;
}

int check_command(const CommandOptions& options) {
    auto config = load_config_file(options.config_path);
    if (!config) {
        return 1;
    }
    const auto rules = rules_path(options.config_path, *config);
    if (!check_rules_file(rules)) {
        return 1;
    }
    fmt::print("{}: ok (sync rules: {})\n", options.config_path, rules);
    return 0;
}

int migrate_command(const CommandOptions& options) {
    auto config = load_config_file(options.config_path);
    if (!config) {
        return 1;
    }
    apply_logging(config->logging);
    const bool create = options.create_database || config->storage.create_database;
    return prepare_storage(*config, create ? storage::CreateDatabase::kYes : storage::CreateDatabase::kNo) ? 0 : 1;
}

int compact_command(const CommandOptions& options) {
    auto config = load_config_file(options.config_path);
    if (!config) {
        return 1;
    }
    apply_logging(config->logging);
    auto conninfo = storage::storage_conninfo(*config);
    auto connection = conninfo ? storage::connect_storage(conninfo.value(), storage::CreateDatabase::kNo)
                               : protocol::Result<std::unique_ptr<pqxx::connection>>(conninfo.status());
    if (!connection) {
        kLog.error("{}", connection.status().to_string());
        return 1;
    }
    auto report = storage::compact(*connection.value());
    if (!report) {
        kLog.error("{}", report.status().to_string());
        return 1;
    }
    fmt::print("compacted {} bucket(s): {} op(s) superseded, {} folded into CLEAR ops\n", report->buckets,
               report->moved, report->cleared);
    return 0;
}

namespace {

// While an orderly shutdown runs, a second SIGTERM or SIGINT ends the process at once (exit code
// 130): storage and the slot stay consistent, since nothing is confirmed before it is durable.
void exit_on_second_signal(const sigset_t& signals) {
    std::thread([signals] {
        int signal = 0;
        do {
            sigwait(&signals, &signal);
        } while (signal == SIGHUP);
        kLog.warn("second {}: exiting without finishing the shutdown", signal == SIGTERM ? "SIGTERM" : "SIGINT");
        std::_Exit(130);
    }).detach();
}

}  // namespace

int run_command(const CommandOptions& options) {
    // Block the signals we wait for before any thread starts, so every thread inherits the mask.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    auto config = load_config_file(options.config_path);
    if (!config) {
        return 1;
    }
    apply_logging(config->logging);
    const auto rules_file = rules_path(options.config_path, *config);
    auto rules = compile_rules_file(rules_file);
    if (!rules) {
        return 1;
    }
    kLog.info("starting sluice {} role={}", SLUICE_VERSION, config::to_string(config->role));

    if (config->role != config::Role::kApi) {
        auto source = replication::preflight({config->source.uri, config->source.slot});
        if (!source) {
            kLog.error("{}", source.status().to_string());
            return 1;
        }
        kLog.info("source Postgres {} ok: system {} at {}, slot '{}' {}", source->server_version, source->system_id,
                  source->current_lsn.to_string(), config->source.slot,
                  source->slot_exists ? "exists" : "will be created");
    }
    const auto create = config->storage.create_database ? storage::CreateDatabase::kYes : storage::CreateDatabase::kNo;
    if (!prepare_storage(*config, create)) {
        return 1;
    }
    // Replication of the active rules version, and of a new one built in the background when the
    // rules file changed (see rules_versions.h).
    std::unique_ptr<RulesVersions> replicator;
    if (config->role != config::Role::kApi) {
        RulesVersionsConfig rv;
        auto& rc = rv.replicator;
        rc.source_conninfo = config->source.uri;
        rc.storage_conninfo = storage::storage_conninfo(*config).value();
        rc.slot = config->source.slot;
        rc.publication = config->source.publication;
        rc.publication_mode = config->source.publication_mode;
        rc.heartbeat_interval = std::chrono::seconds(config->source.heartbeat_interval_seconds);
        rc.snapshot_chunk_rows = static_cast<std::size_t>(config->source.snapshot_chunk_rows);
        auto started = RulesVersions::start(std::move(rv), read_file(rules_file).value_or(""), rules_file);
        if (!started) {
            kLog.error("{}", started.status().to_string());
            return 1;
        }
        replicator = std::move(started).value();
    }
    std::unique_ptr<PeriodicCompaction> compaction;
    if (config->role != config::Role::kApi && config->storage.compact_interval_seconds > 0) {
        compaction = std::make_unique<PeriodicCompaction>(storage::storage_conninfo(*config).value(),
                                                          std::chrono::seconds(config->storage.compact_interval_seconds));
    }
    StatusReporter status(*config, replicator ? &replicator->stats() : nullptr);
    // Serving: new checkpoints fan out from one LISTEN connection to every session.
    std::unique_ptr<storage::CheckpointListener> listener;
    std::unique_ptr<http::Server> server;
    const auto& auth = config->auth;
    const bool has_keys = !auth.keys.empty() || !auth.jwks_file.empty() || !auth.jwks_uri.empty();
    if (config->role != config::Role::kReplicator && !has_keys) {
        kLog.warn("no auth keys configured (auth.keys, auth.jwks_file, auth.jwks_uri): not serving clients");
    } else if (config->role != config::Role::kReplicator) {
        auto server_or = start_server(*config, rules, listener, status);
        if (!server_or) {
            kLog.error("{}", server_or.status().to_string());
            return 1;
        }
        server = std::move(server_or).value();
        status.set_server(&server->stats());
    }
    kLog.info("ready; waiting for SIGTERM or SIGINT");
    core::service_notify("READY=1\nSTATUS=ready");
    for (;;) {
        int signal = 0;
        sigwait(&signals, &signal);
        if (signal == SIGHUP) {
            // The sync rules are reloadable: changed rules are built as a new version in the background.
            if (!replicator) {
                kLog.info("SIGHUP: role api has nothing to reload (the replicator's rules reach it through storage)");
            } else if (compile_rules_file(rules_file)) {
                auto reloaded = replicator->reload(read_file(rules_file).value_or(""), rules_file);
                kLog.info("SIGHUP: sync rules reloaded{}", reloaded ? "" : ": " + reloaded.to_string());
            } else {
                kLog.error("SIGHUP: the sync rules have errors (above); keeping the current ones");
            }
            continue;
        }
        kLog.info("{}: shutting down (send it again to exit at once)", signal == SIGTERM ? "SIGTERM" : "SIGINT");
        core::service_notify("STOPPING=1");
        exit_on_second_signal(signals);
        status.set_server(nullptr);
        server.reset();  // closes every client connection
        listener.reset();
        compaction.reset();
        replicator.reset();  // stops after the batch in progress is committed or dropped
        return 0;
    }
}

}  // namespace sluice::app
