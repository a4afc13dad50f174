// sluice.yaml: the schema table (every key declared once) and the strict loader that walks the YAML
// against it, collecting every error with its position.
#include "config/sluice_config.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <variant>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

namespace sluice::config {
namespace {

using protocol::ErrorCode;

using Value = std::variant<std::string, std::int64_t, bool, std::vector<std::string>>;

enum class Kind {
    kString,
    kInteger,
    kBytes,  // an integer that also accepts KiB/MiB/GiB suffixes
    kBool,
    kEnum,
    kStringList,
    kObjectList,  // a list of mappings whose keys are the fields "<path>[].<key>"
};

enum class Required { kNo, kYes };

constexpr std::int64_t kMaxInt = std::numeric_limits<std::int64_t>::max();

// Every field's setter takes the item index; it is 0 except for fields inside an object list.
using Assign = std::function<void(Config&, std::size_t item, const Value&)>;
using Resize = std::function<void(Config&, std::size_t count)>;

struct Field {
    std::string_view path;
    Kind kind;
    std::string_view default_yaml;
    Required required;
    std::int64_t min = 0;
    std::int64_t max = kMaxInt;
    std::vector<std::string_view> choices;
    std::string_view description;
    Assign assign;
    Resize resize;
};

template <typename Get>
Field string_field(std::string_view path, std::string_view def, Required req, std::string_view desc, Get get) {
    return {path, Kind::kString, def, req, 0, kMaxInt, {}, desc,
            [get](Config& c, std::size_t i, const Value& v) { get(c, i) = std::get<std::string>(v); }, {}};
}

template <typename Get>
Field int_field(std::string_view path, std::string_view def, std::int64_t min, std::int64_t max, std::string_view desc,
                Get get, Kind kind = Kind::kInteger) {
    return {path, kind, def, Required::kNo, min, max, {}, desc,
            [get](Config& c, std::size_t i, const Value& v) { get(c, i) = std::get<std::int64_t>(v); }, {}};
}

template <typename Get>
Field bool_field(std::string_view path, std::string_view def, std::string_view desc, Get get) {
    return {path, Kind::kBool, def, Required::kNo, 0, kMaxInt, {}, desc,
            [get](Config& c, std::size_t i, const Value& v) { get(c, i) = std::get<bool>(v); }, {}};
}

template <typename Get>
Field list_field(std::string_view path, std::string_view def, std::string_view desc, Get get) {
    return {path, Kind::kStringList, def, Required::kNo, 0, kMaxInt, {}, desc,
            [get](Config& c, std::size_t i, const Value& v) { get(c, i) = std::get<std::vector<std::string>>(v); }, {}};
}

// An enum field: choices[k] maps to values[k].
template <typename E, std::size_t N, typename Get>
Field enum_field(std::string_view path, std::string_view def, std::array<std::pair<std::string_view, E>, N> table,
                 std::string_view desc, Get get) {
    std::vector<std::string_view> choices;
    for (const auto& [name, value] : table) {
        choices.push_back(name);
    }
    return {path, Kind::kEnum, def, Required::kNo, 0, kMaxInt, std::move(choices), desc,
            [get, table](Config& c, std::size_t i, const Value& v) {
                for (const auto& [name, value] : table) {
                    if (name == std::get<std::string>(v)) {
                        get(c, i) = value;
                    }
                }
            },
            {}};
}

template <typename E>
using Choice = std::pair<std::string_view, E>;

constexpr std::array kRoles{Choice<Role>{"all", Role::kAll}, Choice<Role>{"api", Role::kApi},
                            Choice<Role>{"replicator", Role::kReplicator}};
constexpr std::array kPublicationModes{Choice<PublicationMode>{"managed", PublicationMode::kManaged},
                                       Choice<PublicationMode>{"user", PublicationMode::kUser}};
constexpr std::array kBatchPolicies{Choice<BatchPolicy>{"all_or_nothing", BatchPolicy::kAllOrNothing},
                                    Choice<BatchPolicy>{"apply_valid", BatchPolicy::kApplyValid}};
constexpr std::array kLogLevels{Choice<LogLevel>{"trace", LogLevel::kTrace}, Choice<LogLevel>{"debug", LogLevel::kDebug},
                                Choice<LogLevel>{"info", LogLevel::kInfo}, Choice<LogLevel>{"warn", LogLevel::kWarn},
                                Choice<LogLevel>{"error", LogLevel::kError}};
constexpr std::array kLogFormats{Choice<LogFormat>{"text", LogFormat::kText}, Choice<LogFormat>{"json", LogFormat::kJson}};

constexpr std::array<std::string_view, 12> kJwtAlgorithms{"HS256", "HS384", "HS512", "RS256", "RS384", "RS512",
                                                          "ES256", "ES384", "ES512", "EdDSA", "PS256", "PS384"};

// The schema: every key of sluice.yaml, once.
const std::vector<Field>& schema() {
    static const std::vector<Field> fields = [] {
        std::vector<Field> f;
        f.push_back(enum_field("role", "all", kRoles,
                               "what this process does: all (replicate and serve), api (serve from shared storage), "
                               "replicator (replicate only)",
                               [](Config& c, std::size_t) -> auto& { return c.role; }));
        // source
        f.push_back(string_field("source.uri", "", Required::kYes,
                                 "libpq connection URI or key=value string of the source database; the user needs "
                                 "the REPLICATION attribute",
                                 [](Config& c, std::size_t) -> auto& { return c.source.uri; }));
        f.push_back(string_field("source.publication", "sluice", Required::kNo, "name of the publication to stream",
                                 [](Config& c, std::size_t) -> auto& { return c.source.publication; }));
        f.push_back(enum_field("source.publication_mode", "managed", kPublicationModes,
                               "managed: Sluice creates the publication for the tables the rules use; user: it must "
                               "exist and is only verified",
                               [](Config& c, std::size_t) -> auto& { return c.source.publication_mode; }));
        f.push_back(string_field("source.slot", "sluice", Required::kNo, "name of the logical replication slot",
                                 [](Config& c, std::size_t) -> auto& { return c.source.slot; }));
        f.push_back(int_field("source.heartbeat_interval_seconds", "60", 1, 86400,
                              "how often to write a heartbeat message so the slot advances while published tables "
                              "are idle",
                              [](Config& c, std::size_t) -> auto& { return c.source.heartbeat_interval_seconds; }));
        f.push_back(int_field("source.snapshot_chunk_rows", "10000", 1, 1000000,
                              "rows copied per chunk of the initial snapshot; each chunk commits with its progress",
                              [](Config& c, std::size_t) -> auto& { return c.source.snapshot_chunk_rows; }));
        // storage
        f.push_back(string_field("storage.uri", "", Required::kNo,
                                 "connection URI of the storage database; empty: database storage.database on the "
                                 "source's server",
                                 [](Config& c, std::size_t) -> auto& { return c.storage.uri; }));
        f.push_back(string_field("storage.database", "sluice", Required::kNo,
                                 "storage database name on the source's server, used when storage.uri is empty",
                                 [](Config& c, std::size_t) -> auto& { return c.storage.database; }));
        f.push_back(bool_field("storage.create_database", "false",
                               "create the storage database at start-up when it does not exist",
                               [](Config& c, std::size_t) -> auto& { return c.storage.create_database; }));
        f.push_back(int_field("storage.compact_interval_seconds", "3600", 0, 7 * 86400,
                              "how often `sluice run` compacts bucket storage (0: never; `sluice compact` does it on demand)",
                              [](Config& c, std::size_t) -> auto& { return c.storage.compact_interval_seconds; }));
        // server
        f.push_back(string_field("server.listen_address", "0.0.0.0", Required::kNo, "address to listen on",
                                 [](Config& c, std::size_t) -> auto& { return c.server.listen_address; }));
        f.push_back(int_field("server.port", "8080", 0, 65535, "TCP port to listen on (0: any free port)",
                              [](Config& c, std::size_t) -> auto& { return c.server.port; }));
        f.push_back(string_field("server.tls.cert_file", "", Required::kNo,
                                 "PEM certificate chain; with key_file, serve HTTPS/WSS directly",
                                 [](Config& c, std::size_t) -> auto& { return c.server.tls.cert_file; }));
        f.push_back(string_field("server.tls.key_file", "", Required::kNo, "PEM private key for server.tls.cert_file",
                                 [](Config& c, std::size_t) -> auto& { return c.server.tls.key_file; }));
        f.push_back(list_field("server.cors_origins", "[]",
                               "origins allowed to connect from a browser (\"*\" for any)",
                               [](Config& c, std::size_t) -> auto& { return c.server.cors_origins; }));
        f.push_back(bool_field("server.demo_page", "false",
                               "serve the demo web page at /demo (for the deploy/demo schema; not for production)",
                               [](Config& c, std::size_t) -> auto& { return c.server.demo_page; }));
        // auth
        f.push_back(list_field("auth.audience", "[]", "accepted values of the token's aud claim",
                               [](Config& c, std::size_t) -> auto& { return c.auth.audience; }));
        Field keys{"auth.keys", Kind::kObjectList, "[]", Required::kNo, 0, kMaxInt, {},
                   "inline signing keys", {}, [](Config& c, std::size_t n) { c.auth.keys.resize(n); }};
        f.push_back(std::move(keys));
        f.push_back(string_field("auth.keys[].kid", "", Required::kNo,
                                 "key id; a token with a kid header is checked only against the key with that kid",
                                 [](Config& c, std::size_t i) -> auto& { return c.auth.keys[i].kid; }));
        Field alg = string_field("auth.keys[].alg", "", Required::kYes,
                                 "algorithm: HS256/384/512, RS256/384/512, ES256/384/512 or EdDSA",
                                 [](Config& c, std::size_t i) -> auto& { return c.auth.keys[i].alg; });
        alg.kind = Kind::kEnum;
        alg.choices.assign(kJwtAlgorithms.begin(), kJwtAlgorithms.end() - 2);
        f.push_back(std::move(alg));
        f.push_back(string_field("auth.keys[].secret", "", Required::kNo, "shared secret for HS* keys (use ${ENV_VAR})",
                                 [](Config& c, std::size_t i) -> auto& { return c.auth.keys[i].secret; }));
        f.push_back(string_field("auth.keys[].public_key_file", "", Required::kNo, "PEM public key for RS*/ES*/EdDSA keys",
                                 [](Config& c, std::size_t i) -> auto& { return c.auth.keys[i].public_key_file; }));
        f.push_back(string_field("auth.jwks_file", "", Required::kNo, "JWKS file with more keys",
                                 [](Config& c, std::size_t) -> auto& { return c.auth.jwks_file; }));
        f.push_back(string_field("auth.jwks_uri", "", Required::kNo,
                                 "JWKS URL, cached and fetched again when a token names an unknown kid",
                                 [](Config& c, std::size_t) -> auto& { return c.auth.jwks_uri; }));
        f.push_back(int_field("auth.jwks_refresh_seconds", "300", 10, 86400, "how often to refresh auth.jwks_uri",
                              [](Config& c, std::size_t) -> auto& { return c.auth.jwks_refresh_seconds; }));
        f.push_back(int_field("auth.leeway_seconds", "60", 0, 600, "clock tolerance for exp, iat and nbf",
                              [](Config& c, std::size_t) -> auto& { return c.auth.leeway_seconds; }));
        f.push_back(int_field("auth.max_lifetime_seconds", "86400", 60, 31 * 86400,
                              "longest accepted exp - iat of a token",
                              [](Config& c, std::size_t) -> auto& { return c.auth.max_lifetime_seconds; }));
        f.push_back(string_field("auth.admin_token", "", Required::kNo,
                                 "static token for /admin and the admin API; empty: admin API off",
                                 [](Config& c, std::size_t) -> auto& { return c.auth.admin_token; }));
        // sync rules
        f.push_back(string_field("sync_rules.path", "sync-rules.yaml", Required::kNo,
                                 "sync-rules YAML file, relative to this file's folder",
                                 [](Config& c, std::size_t) -> auto& { return c.sync_rules.path; }));
        // limits
        f.push_back(int_field("limits.max_buckets_per_connection", "1000", 1, 1000000,
                              "most buckets one connection may sync",
                              [](Config& c, std::size_t) -> auto& { return c.limits.max_buckets_per_connection; }));
        f.push_back(int_field("limits.max_parameter_query_results", "1000", 1, 1000000,
                              "most rows the parameter queries may return for one connection",
                              [](Config& c, std::size_t) -> auto& { return c.limits.max_parameter_query_results; }));
        f.push_back(int_field("limits.max_subscriptions_per_connection", "1000", 1, 1000000,
                              "most Sync Streams subscriptions one connection may hold (more are ignored and reported)",
                              [](Config& c, std::size_t) -> auto& { return c.limits.max_subscriptions_per_connection; }));
        f.push_back(int_field("limits.max_connections", "10000", 1, 1000000, "most client connections in total",
                              [](Config& c, std::size_t) -> auto& { return c.limits.max_connections; }));
        f.push_back(int_field("limits.max_connections_per_user", "50", 1, 1000000, "most client connections per user",
                              [](Config& c, std::size_t) -> auto& { return c.limits.max_connections_per_user; }));
        f.push_back(int_field("limits.max_message_bytes", "16MiB", 1024, std::int64_t{1} << 30,
                              "largest message a client may send (request body, WebSocket frame)",
                              [](Config& c, std::size_t) -> auto& { return c.limits.max_message_bytes; }, Kind::kBytes));
        f.push_back(int_field("limits.session_queue_bytes", "8MiB", 64 * 1024, std::int64_t{1} << 30,
                              "outbound bytes queued per session before a slow client is disconnected",
                              [](Config& c, std::size_t) -> auto& { return c.limits.session_queue_bytes; }, Kind::kBytes));
        f.push_back(int_field("limits.max_upload_batch_ops", "1000", 1, 100000, "most operations in one upload batch",
                              [](Config& c, std::size_t) -> auto& { return c.limits.max_upload_batch_ops; }));
        // uploads
        f.push_back(enum_field("uploads.batch_policy", "all_or_nothing", kBatchPolicies,
                               "all_or_nothing: a batch with a rejected operation applies nothing; apply_valid: the "
                               "valid operations are applied and the rejected ones reported",
                               [](Config& c, std::size_t) -> auto& { return c.uploads.batch_policy; }));
        f.push_back(string_field("uploads.apply_as_role", "", Required::kNo,
                                 "Postgres role to apply uploads as (SET LOCAL ROLE, with the token's claims in "
                                 "request.jwt.claims, as PostgREST does) so row-level security policies hold; the "
                                 "source user must be a member of it. Empty: apply as the source user",
                                 [](Config& c, std::size_t) -> auto& { return c.uploads.apply_as_role; }));
        f.push_back(int_field("uploads.connections", "8", 1, 1000,
                              "source connections (and worker threads) that apply upload batches and issue write checkpoints concurrently",
                              [](Config& c, std::size_t) -> auto& { return c.uploads.connections; }));
        f.push_back(int_field("uploads.max_attempts", "5", 1, 100,
                              "attempts per batch when the source database fails transiently (deadlock, "
                              "serialization failure, lost connection)",
                              [](Config& c, std::size_t) -> auto& { return c.uploads.max_attempts; }));
        f.push_back(int_field("uploads.record_retention_hours", "168", 1, 24 * 365,
                              "how long the record of an applied batch is kept (a retry within this time is "
                              "answered from it)",
                              [](Config& c, std::size_t) -> auto& { return c.uploads.record_retention_hours; }));
        // logging
        f.push_back(enum_field("logging.level", "info", kLogLevels, "least severe level written",
                               [](Config& c, std::size_t) -> auto& { return c.logging.level; }));
        f.push_back(enum_field("logging.format", "text", kLogFormats, "text (one line per event) or json",
                               [](Config& c, std::size_t) -> auto& { return c.logging.format; }));
        f.push_back(int_field("logging.summary_interval_seconds", "60", 0, 86400,
                              "period of the one-line summary (0: off)",
                              [](Config& c, std::size_t) -> auto& { return c.logging.summary_interval_seconds; }));
        return f;
    }();
    return fields;
}

const Field* find_field(std::string_view path) {
    for (const auto& f : schema()) {
        if (f.path == path) {
            return &f;
        }
    }
    return nullptr;
}

// Keys directly below `prefix` ("" for the top level), in schema order, without duplicates.
std::vector<std::string> child_keys(std::string_view prefix) {
    std::vector<std::string> keys;
    for (const auto& f : schema()) {
        std::string_view p = f.path;
        if (!prefix.empty()) {
            if (!p.starts_with(prefix) || p.size() <= prefix.size() || p[prefix.size()] != '.') {
                continue;
            }
            p.remove_prefix(prefix.size() + 1);
        }
        std::string key(p.substr(0, p.find_first_of(".[")));
        if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
            keys.push_back(std::move(key));
        }
    }
    return keys;
}

std::string join(const std::vector<std::string>& items, std::string_view sep) {
    std::string out;
    for (const auto& item : items) {
        if (!out.empty()) {
            out += sep;
        }
        out += item;
    }
    return out;
}

std::string describe_expected(const Field& f) {
    switch (f.kind) {
        case Kind::kString:
            return "a string";
        case Kind::kInteger:
            return f.max == kMaxInt ? fmt::format("an integer of at least {}", f.min)
                                    : fmt::format("an integer from {} to {}", f.min, f.max);
        case Kind::kBytes:
            return fmt::format("a size in bytes from {} to {} (suffixes KiB, MiB, GiB allowed)", f.min, f.max);
        case Kind::kBool:
            return "true or false";
        case Kind::kEnum: {
            std::vector<std::string> names(f.choices.begin(), f.choices.end());
            return "one of: " + join(names, ", ");
        }
        case Kind::kStringList:
            return "a list of strings, e.g. [a, b]";
        case Kind::kObjectList:
            return "a list of mappings";
    }
    return "a value";
}

std::string describe_node(const YAML::Node& node) {
    switch (node.Type()) {
        case YAML::NodeType::Map:
            return "a mapping";
        case YAML::NodeType::Sequence:
            return "a list";
        case YAML::NodeType::Null:
            return "nothing";
        default:
            return "'" + node.Scalar() + "'";
    }
}

std::optional<std::int64_t> parse_integer(std::string_view text) {
    std::int64_t value = 0;
    const auto* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (ec != std::errc{} || ptr != end || text.empty()) {
        return std::nullopt;
    }
    return value;
}

std::optional<std::int64_t> parse_bytes(std::string_view text) {
    struct Suffix {
        std::string_view name;
        int shift;
    };
    static constexpr std::array kSuffixes{Suffix{"KiB", 10}, Suffix{"MiB", 20}, Suffix{"GiB", 30}};
    for (const auto& s : kSuffixes) {
        if (text.ends_with(s.name)) {
            auto base = parse_integer(text.substr(0, text.size() - s.name.size()));
            if (!base || *base < 0 || *base > (kMaxInt >> s.shift)) {
                return std::nullopt;
            }
            return *base << s.shift;
        }
    }
    return parse_integer(text);
}

class Loader {
public:
    Loader(const std::string& file, const EnvLookup& env) : m_file(file), m_env(env) {}

    ConfigLoad run(std::string_view text) {
        Config config = default_config();
        YAML::Node root;
        try {
            root = YAML::Load(std::string(text));
        } catch (const YAML::Exception& e) {
            error(ErrorCode::kConfigSyntax, e.mark, "", e.msg);
            return finish(config);
        }
        if (root.IsNull()) {
            root = YAML::Node(YAML::NodeType::Map);
        }
        if (!root.IsMap()) {
            error(ErrorCode::kConfigWrongType, root.Mark(), "",
                  fmt::format("got {}; expected a mapping of keys ({})", describe_node(root), join(child_keys(""), ", ")));
            return finish(config);
        }
        walk_map(config, root, "", "", 0);
        check_required(root, "", "");
        check_cross_field(config);
        return finish(config);
    }

private:
    ConfigLoad finish(Config& config) {
        ConfigLoad out;
        std::stable_sort(m_diagnostics.begin(), m_diagnostics.end(), [](const Diagnostic& a, const Diagnostic& b) {
            return std::pair(a.pos.line, a.pos.column) < std::pair(b.pos.line, b.pos.column);
        });
        out.diagnostics = std::move(m_diagnostics);
        if (!has_errors(out.diagnostics)) {
            out.config = std::move(config);
        }
        return out;
    }

    void error(ErrorCode code, const YAML::Mark& mark, std::string path, std::string message) {
        m_diagnostics.push_back({Severity::kError, code, to_pos(m_file, mark), std::move(path), std::move(message)});
    }

    // schema_prefix uses "[]" for list items ("auth.keys[]"); shown_prefix the real index ("auth.keys[1]").
    void walk_map(Config& config, const YAML::Node& map, const std::string& schema_prefix,
                  const std::string& shown_prefix, std::size_t item) {
        std::map<std::string, int> seen_at_line;
        for (const auto& entry : map) {
            const YAML::Node& key_node = entry.first;
            const YAML::Node& value = entry.second;
            const std::string key = key_node.IsScalar() ? key_node.Scalar() : std::string();
            const std::string schema_path = schema_prefix.empty() ? key : schema_prefix + "." + key;
            const std::string shown_path = shown_prefix.empty() ? key : shown_prefix + "." + key;
            if (auto [it, inserted] = seen_at_line.emplace(key, key_node.Mark().line + 1); !inserted) {
                error(ErrorCode::kConfigInvalidValue, key_node.Mark(), shown_path,
                      fmt::format("duplicate key '{}' (first given at line {})", key, it->second));
                continue;
            }
            m_marks.emplace(shown_path, key_node.Mark());
            if (const Field* field = find_field(schema_path)) {
                read_field(config, *field, value, shown_path, item);
                continue;
            }
            const auto children = child_keys(schema_path);
            if (!children.empty() && !key.empty()) {
                if (value.IsMap()) {
                    walk_map(config, value, schema_path, shown_path, item);
                } else if (!value.IsNull()) {
                    error(ErrorCode::kConfigWrongType, value.Mark(), shown_path,
                          fmt::format("got {}; expected a mapping with keys: {}", describe_node(value),
                                      join(children, ", ")));
                }
                continue;
            }
            unknown_key(key_node, key, schema_prefix, shown_path);
        }
    }

    void unknown_key(const YAML::Node& key_node, const std::string& key, const std::string& schema_prefix,
                     const std::string& shown_path) {
        const auto known = child_keys(schema_prefix);
        std::string suggestion;
        std::size_t best = 3;  // suggest only close matches
        for (const auto& candidate : known) {
            if (auto d = edit_distance(key, candidate); d < best) {
                best = d;
                suggestion = candidate;
            }
        }
        std::string message = fmt::format("unknown key '{}'", key_node.IsScalar() ? key : describe_node(key_node));
        if (!suggestion.empty()) {
            message += fmt::format("; did you mean '{}'?", suggestion);
        }
        message += fmt::format(" (keys allowed here: {})", join(known, ", "));
        error(ErrorCode::kConfigUnknownKey, key_node.Mark(), shown_path, std::move(message));
    }

    // The scalar text of a node with ${ENV} references substituted; nullopt after reporting an error.
    std::optional<std::string> scalar_text(const YAML::Node& node, const std::string& path) {
        auto sub = substitute_env(node.Scalar(), m_env);
        if (!sub.error.empty()) {
            error(ErrorCode::kConfigEnvVar, node.Mark(), path, sub.error);
            return std::nullopt;
        }
        return std::move(sub.value);
    }

    void read_field(Config& config, const Field& field, const YAML::Node& node, const std::string& path,
                    std::size_t item) {
        m_seen.insert(path);
        if (field.kind == Kind::kObjectList) {
            read_object_list(config, field, node, path);
            return;
        }
        if (node.IsNull() && field.required == Required::kNo) {
            return;  // "key:" with no value keeps the default
        }
        auto value = convert(field, node, path);
        if (value) {
            field.assign(config, item, *value);
        }
    }

    std::optional<Value> convert(const Field& field, const YAML::Node& node, const std::string& path) {
        auto wrong = [&](std::string got) -> std::optional<Value> {
            error(ErrorCode::kConfigWrongType, node.Mark(), path,
                  fmt::format("got {}; expected {}", got, describe_expected(field)));
            return std::nullopt;
        };
        if (field.kind == Kind::kStringList) {
            if (!node.IsSequence()) {
                return wrong(describe_node(node));
            }
            std::vector<std::string> items;
            bool ok = true;
            for (std::size_t i = 0; i < node.size(); ++i) {
                const auto element = node[i];
                const auto element_path = fmt::format("{}[{}]", path, i);
                if (!element.IsScalar()) {
                    error(ErrorCode::kConfigWrongType, element.Mark(), element_path,
                          fmt::format("got {}; expected a string", describe_node(element)));
                    ok = false;
                } else if (auto text = scalar_text(element, element_path)) {
                    items.push_back(std::move(*text));
                } else {
                    ok = false;
                }
            }
            return ok ? std::optional<Value>(std::move(items)) : std::nullopt;
        }
        if (!node.IsScalar()) {
            return wrong(describe_node(node));
        }
        auto text = scalar_text(node, path);
        if (!text) {
            return std::nullopt;
        }
        switch (field.kind) {
            case Kind::kString:
                return Value(std::move(*text));
            case Kind::kInteger:
            case Kind::kBytes: {
                auto number = field.kind == Kind::kBytes ? parse_bytes(*text) : parse_integer(*text);
                if (!number) {
                    return wrong("'" + *text + "'");
                }
                if (*number < field.min || *number > field.max) {
                    error(ErrorCode::kConfigOutOfRange, node.Mark(), path,
                          fmt::format("{} is out of range; expected {}", *text, describe_expected(field)));
                    return std::nullopt;
                }
                return Value(*number);
            }
            case Kind::kBool:
                if (*text == "true") {
                    return Value(true);
                }
                if (*text == "false") {
                    return Value(false);
                }
                return wrong("'" + *text + "'");
            case Kind::kEnum:
                if (std::find(field.choices.begin(), field.choices.end(), *text) == field.choices.end()) {
                    return wrong("'" + *text + "'");
                }
                return Value(std::move(*text));
            default:
                return wrong(describe_node(node));
        }
    }

    void read_object_list(Config& config, const Field& field, const YAML::Node& node, const std::string& path) {
        if (node.IsNull()) {
            return;
        }
        if (!node.IsSequence()) {
            error(ErrorCode::kConfigWrongType, node.Mark(), path,
                  fmt::format("got {}; expected a list of mappings with keys: {}", describe_node(node),
                              join(child_keys(std::string(field.path) + "[]"), ", ")));
            return;
        }
        field.resize(config, node.size());
        const std::string item_schema = std::string(field.path) + "[]";
        for (std::size_t i = 0; i < node.size(); ++i) {
            const auto element = node[i];
            const auto item_path = fmt::format("{}[{}]", path, i);
            if (!element.IsMap()) {
                error(ErrorCode::kConfigWrongType, element.Mark(), item_path,
                      fmt::format("got {}; expected a mapping with keys: {}", describe_node(element),
                                  join(child_keys(item_schema), ", ")));
                continue;
            }
            m_marks.emplace(item_path, element.Mark());
            walk_map(config, element, item_schema, item_path, i);
            check_required(element, item_schema, item_path);
        }
    }

    // Reports required keys directly or indirectly below schema_prefix that were not given.
    void check_required(const YAML::Node& anchor, const std::string& schema_prefix, const std::string& shown_prefix) {
        for (const auto& f : schema()) {
            if (f.required == Required::kNo) {
                continue;
            }
            std::string_view p = f.path;
            if (!schema_prefix.empty()) {
                if (!p.starts_with(schema_prefix + ".")) {
                    continue;
                }
                p.remove_prefix(schema_prefix.size() + 1);
            }
            if (p.find("[]") != std::string_view::npos) {
                continue;  // item fields are checked per item
            }
            const std::string shown = shown_prefix.empty() ? std::string(p) : shown_prefix + "." + std::string(p);
            if (m_seen.contains(shown)) {
                continue;
            }
            // Point at the innermost mapping that exists on the way to the key.
            YAML::Node at = anchor;
            std::string_view rest = p;
            while (rest.find('.') != std::string_view::npos) {
                auto section = at[std::string(rest.substr(0, rest.find('.')))];
                if (!section || !section.IsMap()) {
                    break;
                }
                at.reset(section);
                rest.remove_prefix(rest.find('.') + 1);
            }
            YAML::Mark mark = at.Mark();
            if (mark.is_null()) {
                mark.line = 0;
                mark.column = 0;
            }
            error(ErrorCode::kConfigMissingKey, mark, shown,
                  fmt::format("required key is missing; expected {} ({})", describe_expected(f), f.description));
        }
    }

    // Where a path was given in the file; the top of the file when it was not.
    [[nodiscard]] YAML::Mark mark_of(const std::string& path) const {
        auto it = m_marks.find(path);
        return it == m_marks.end() ? YAML::Mark() : it->second;
    }

    void check_cross_field(const Config& config) {
        const auto& tls = config.server.tls;
        if (tls.cert_file.empty() != tls.key_file.empty()) {
            error(ErrorCode::kConfigInvalidValue, mark_of("server.tls"), "server.tls",
                  "cert_file and key_file must be given together (both, or neither for plain HTTP)");
        }
        for (std::size_t i = 0; i < config.auth.keys.size(); ++i) {
            const auto& key = config.auth.keys[i];
            const auto path = fmt::format("auth.keys[{}]", i);
            if (key.alg.empty() || !m_seen.contains(path + ".alg")) {
                continue;  // reported as missing or invalid already
            }
            const bool symmetric = key.alg.starts_with("HS");
            if (symmetric && key.secret.empty()) {
                error(ErrorCode::kConfigInvalidValue, mark_of(path), path,
                      fmt::format("algorithm {} needs 'secret'", key.alg));
            }
            if (!symmetric && key.public_key_file.empty()) {
                error(ErrorCode::kConfigInvalidValue, mark_of(path), path,
                      fmt::format("algorithm {} needs 'public_key_file'", key.alg));
            }
        }
    }

    const std::string& m_file;
    const EnvLookup& m_env;
    std::vector<Diagnostic> m_diagnostics;
    std::set<std::string> m_seen;                  // shown paths of the keys given in the file
    std::map<std::string, YAML::Mark> m_marks;     // shown path -> where its key (or list item) starts
};

std::string type_text(const Field& f) {
    switch (f.kind) {
        case Kind::kString:
            return "string";
        case Kind::kInteger:
            return fmt::format("integer {}..{}", f.min, f.max);
        case Kind::kBytes:
            return fmt::format("bytes {}..{}", f.min, f.max);
        case Kind::kBool:
            return "boolean";
        case Kind::kEnum:
            return describe_expected(f);
        case Kind::kStringList:
            return "list of strings";
        case Kind::kObjectList:
            return "list of mappings";
    }
    return "";
}

}  // namespace

Config default_config() {
    static const Config defaults = [] {
        Config c;
        for (const auto& f : schema()) {
            if (f.default_yaml.empty() || f.kind == Kind::kObjectList || f.path.find("[]") != std::string_view::npos) {
                continue;
            }
            // A default that fails its own schema is a programming error; the tests load every default.
            YAML::Node node = YAML::Load(std::string(f.default_yaml));
            if (f.kind == Kind::kStringList) {
                f.assign(c, 0, node.as<std::vector<std::string>>());
            } else if (f.kind == Kind::kInteger) {
                f.assign(c, 0, *parse_integer(node.Scalar()));
            } else if (f.kind == Kind::kBytes) {
                f.assign(c, 0, *parse_bytes(node.Scalar()));
            } else if (f.kind == Kind::kBool) {
                f.assign(c, 0, node.Scalar() == "true");
            } else {
                f.assign(c, 0, node.Scalar());
            }
        }
        return c;
    }();
    return defaults;
}

ConfigLoad load_config(std::string_view text, const std::string& file, const EnvLookup& env) {
    return Loader(file, env).run(text);
}

std::vector<KeyDoc> config_keys() {
    std::vector<KeyDoc> docs;
    for (const auto& f : schema()) {
        static std::map<std::string_view, std::string> type_texts;  // owns the strings the views point to
        auto& text = type_texts[f.path];
        text = type_text(f);
        docs.push_back({f.path, text, f.default_yaml, f.required == Required::kYes, f.description});
    }
    return docs;
}

std::string_view to_string(Role role) {
    for (const auto& [name, value] : kRoles) {
        if (value == role) {
            return name;
        }
    }
    return "?";
}

std::string_view to_string(LogLevel level) {
    for (const auto& [name, value] : kLogLevels) {
        if (value == level) {
            return name;
        }
    }
    return "?";
}

}  // namespace sluice::config
