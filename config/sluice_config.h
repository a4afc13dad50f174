// Config: the typed form of sluice.yaml. Every key, its type, default, bounds and description are
// declared once, in the schema table in sluice_config.cpp; deploy/sluice.example.yaml documents them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/diagnostic.h"
#include "config/yaml_util.h"

namespace sluice::config {

enum class Role {
    kAll,         // replicate and serve clients (one machine)
    kApi,         // serve clients from the shared storage only
    kReplicator,  // replicate only
};

enum class PublicationMode {
    kManaged,  // Sluice creates the publication and keeps it to the tables the rules use
    kUser,     // the publication exists and is maintained by the operator; Sluice only verifies it
};

enum class BatchPolicy {
    kAllOrNothing,  // a batch with any rejected op applies nothing
    kApplyValid,    // the valid ops are applied, the rejected ones reported
};

enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError };
enum class LogFormat { kText, kJson };

struct SourceConfig {
    std::string uri;
    std::string publication;
    PublicationMode publication_mode = PublicationMode::kManaged;
    std::string slot;
    std::int64_t heartbeat_interval_seconds = 0;
    std::int64_t snapshot_chunk_rows = 0;
};

struct StorageConfig {
    std::string uri;       // empty: the source's server, database `database`
    std::string database;  // used only when uri is empty
    bool create_database = false;
    std::int64_t compact_interval_seconds = 0;
};

struct TlsConfig {
    std::string cert_file;  // both empty: plain HTTP (behind a proxy)
    std::string key_file;
};

struct ServerConfig {
    std::string listen_address;
    std::int64_t port = 0;
    TlsConfig tls;
    std::vector<std::string> cors_origins;
    bool demo_page = false;
};

struct AuthKey {
    std::string kid;
    std::string alg;
    std::string secret;           // HS256/384/512
    std::string public_key_file;  // RS*/ES*/EdDSA, PEM
};

struct AuthConfig {
    std::vector<std::string> audience;
    std::vector<AuthKey> keys;
    std::string jwks_file;
    std::string jwks_uri;
    std::int64_t jwks_refresh_seconds = 0;
    std::int64_t leeway_seconds = 0;
    std::int64_t max_lifetime_seconds = 0;
    std::string admin_token;
};

struct SyncRulesConfig {
    std::string path;  // relative to the config file's folder
};

struct LimitsConfig {
    std::int64_t max_buckets_per_connection = 0;
    std::int64_t max_parameter_query_results = 0;
    std::int64_t max_subscriptions_per_connection = 0;
    std::int64_t max_connections = 0;
    std::int64_t max_connections_per_user = 0;
    std::int64_t max_message_bytes = 0;
    std::int64_t session_queue_bytes = 0;
    std::int64_t max_upload_batch_ops = 0;
};

struct UploadsConfig {
    BatchPolicy batch_policy = BatchPolicy::kAllOrNothing;
    std::string apply_as_role;  // empty: apply as the source user (no row-level security role)
    std::int64_t connections = 0;
    std::int64_t max_attempts = 0;
    std::int64_t record_retention_hours = 0;
};

struct LoggingConfig {
    LogLevel level = LogLevel::kInfo;
    LogFormat format = LogFormat::kText;
    std::int64_t summary_interval_seconds = 0;
};

struct Config {
    Role role = Role::kAll;
    SourceConfig source;
    StorageConfig storage;
    ServerConfig server;
    AuthConfig auth;
    SyncRulesConfig sync_rules;
    LimitsConfig limits;
    UploadsConfig uploads;
    LoggingConfig logging;
};

// One key of the schema, for documentation and tests (the loader uses the full table internally).
struct KeyDoc {
    std::string_view path;         // "server.port", "auth.keys[].kid"
    std::string_view type;         // "string", "integer 1..65535", "one of: all, api, replicator", ...
    std::string_view default_yaml; // empty: no default (required, or empty when optional)
    bool required;
    std::string_view description;
};
[[nodiscard]] std::vector<KeyDoc> config_keys();

struct ConfigLoad {
    std::optional<Config> config;          // set when there are no errors
    std::vector<Diagnostic> diagnostics;   // every error and warning, in file order
};

// Parses and validates sluice.yaml text. `file` names the file in diagnostics. Pure: the caller reads
// the file and provides the environment.
[[nodiscard]] ConfigLoad load_config(std::string_view text, const std::string& file, const EnvLookup& env);

// A config with every default applied and the given source URI; for tests and `sluice` defaults.
[[nodiscard]] Config default_config();

[[nodiscard]] std::string_view to_string(Role role);
[[nodiscard]] std::string_view to_string(LogLevel level);

}  // namespace sluice::config
