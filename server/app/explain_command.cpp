// `sluice explain` (see explain_command.h): reads the rules file and JSON inputs, evaluates them with
// config/rules and prints the result as text or, with --json, as one JSON object. With -c it reads the
// rules from sluice.yaml and resolves lookups from the live index in bucket storage.
#include "server/app/explain_command.h"

#include "server/core/text_file.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include <fmt/format.h>

#include "config/rules/json.h"
#include "config/rules/memory_lookup.h"
#include "config/rules/rule_set.h"
#include "config/rules/value.h"
#include "config/sluice_config.h"
#include "server/storage/bucket_reader.h"
#include "server/storage/database.h"

namespace sluice::app {
namespace {

namespace rules = config::rules;

constexpr std::string_view kHelp = R"(sluice explain --rules <sync-rules.yaml> [--json] <what>
sluice explain -c <sluice.yaml> [--json] <what>

Shows what the sync rules do. With --rules it needs no Postgres. With -c it reads the rules file
named by the config (sync_rules.path; --rules overrides it), names buckets as the server does
(with the active rules version's prefix, "1#" at first), and resolves lookups from the live
lookup index in bucket storage (the storage connection of the config; the replicator fills the
index). <what> is one of:

  --table <[schema.]table> --row <json>
      the buckets the row goes to, with the output row sent for each, and (for a table that
      parameter queries read) the lookup entries it creates
  --claims <json> [--params <json>] [--parameter-row <[schema.]table>=<json>]...
      the bucket ids a connection with these token claims and client parameters gets, and which
      parameter query (and lookup key) granted each one. Lookups are resolved from the live
      index in storage with -c, and offline from the --parameter-row rows given ("what would this
      user see if this share existed?"); with both, the given rows are added to the live ones.

Values: <json> is JSON text, or @file to read it from a file. Row values: strings are text,
integers integer, other numbers real, true/false 1/0, objects/arrays JSON text, {"$blob":"<hex>"} a blob.
  --json    print one JSON object instead of text (for scripts)

Examples:
  sluice explain --rules sync-rules.yaml --table todos --row '{"id":"t1","list_id":"l1"}'
  sluice explain --rules sync-rules.yaml --claims '{"sub":"u1"}' \
      --parameter-row list_shares='{"id":"s1","list_id":"l1","user_id":"u1"}'
  sluice explain -c sluice.yaml --claims '{"sub":"u1"}'
)";

std::optional<std::string> read_file(const std::string& path) { return core::read_text_file(path); }

// JSON text of an argument: inline, or @file.
std::optional<std::string> json_arg(std::string_view arg) {
    if (!arg.empty() && arg[0] == '@') {
        return read_file(std::string(arg.substr(1)));
    }
    return std::string(arg);
}

rules::TableName table_of(std::string_view s) {
    const auto dot = s.find('.');
    if (dot == std::string_view::npos) {
        return {"public", std::string(s)};
    }
    return {std::string(s.substr(0, dot)), std::string(s.substr(dot + 1))};
}

std::string json_string(std::string_view s) {
    std::string out;
    rules::append_json_string(out, s);
    return out;
}

int usage(std::string_view message) {
    fmt::print(stderr, "sluice explain: {}\n\n{}", message, kHelp);
    return 2;
}

struct Options {
    std::string config_path;  // -c: rules from the config, live lookups from storage
    std::string rules_path;
    bool json = false;
    std::string table;
    std::optional<std::string> row;
    std::optional<std::string> claims;
    std::string params = "{}";
    std::vector<std::pair<std::string, std::string>> parameter_rows;
};

void print_errors(const std::vector<rules::EvaluationError>& errors, bool json, std::string& out) {
    if (json) {
        out += "\"errors\":[";
        for (std::size_t i = 0; i < errors.size(); ++i) {
            out += fmt::format("{}{{\"definition\":{},\"query\":{},\"message\":{}}}", i > 0 ? "," : "",
                               json_string(errors[i].definition), json_string(errors[i].query),
                               json_string(errors[i].message));
        }
        out += "]";
        return;
    }
    for (const auto& e : errors) {
        out += fmt::format("  error in {} {}: {}\n", e.definition, e.query, e.message);
    }
}

// Lookups from the live index in bucket storage, plus any offline rows given. The first storage
// error is kept (resolve_buckets calls lookup at most once) and reported by the caller.
class LiveLookup final : public rules::LookupSource {
public:
    LiveLookup(storage::BucketReader* reader, rules::MemoryLookup& offline) : m_reader(reader), m_offline(offline) {}

    [[nodiscard]] std::vector<std::vector<std::string>> lookup(std::span<const std::string> keys) override {
        auto found = m_offline.lookup(keys);
        if (m_reader == nullptr) {
            return found;
        }
        auto live = m_reader->lookup(keys);
        if (!live.is_ok()) {
            m_error = live.status();
            return found;
        }
        for (std::size_t i = 0; i < found.size() && i < live.value().size(); ++i) {
            auto& values = live.value()[i];
            found[i].insert(found[i].begin(), std::make_move_iterator(values.begin()),
                            std::make_move_iterator(values.end()));
        }
        return found;
    }
    [[nodiscard]] const protocol::Status& error() const { return m_error; }

private:
    storage::BucketReader* m_reader;  // null: offline only
    rules::MemoryLookup& m_offline;
    protocol::Status m_error;
};

int explain_row(const rules::RuleSet& rs, const Options& o) {
    std::string error;
    auto row = rules::json_object_to_row(*o.row, &error);
    if (!row) {
        fmt::print(stderr, "sluice explain: --row: {}\n", error);
        return 1;
    }
    const auto table = table_of(o.table);
    rules::RowEvaluation ev;
    rs.evaluate_row(table, *row, ev);
    rules::ParameterEvaluation pe;
    rs.evaluate_parameter_row(table, *row, pe);
    std::string out;
    if (o.json) {
        out += fmt::format("{{\"table\":{},\"rows\":[", json_string(table.to_string()));
        for (std::size_t i = 0; i < ev.rows.size(); ++i) {
            const auto& r = ev.rows[i];
            out += fmt::format("{}{{\"bucket\":{},\"definition\":{},\"query\":\"data[{}]\",\"table\":{},\"id\":{},"
                               "\"data\":{}}}",
                               i > 0 ? "," : "", json_string(r.bucket), json_string(r.definition), r.data_query,
                               json_string(r.table), json_string(r.id), r.data);
        }
        out += "],\"lookup_entries\":[";
        for (std::size_t i = 0; i < pe.entries.size(); ++i) {
            out += fmt::format("{}{{\"key\":{},\"values\":{}}}", i > 0 ? "," : "", json_string(pe.entries[i].key),
                               pe.entries[i].values);
        }
        out += "],";
        auto errors = ev.errors;
        errors.insert(errors.end(), pe.errors.begin(), pe.errors.end());
        print_errors(errors, true, out);
        out += "}\n";
    } else {
        out += fmt::format("row of {}: {} bucket{}\n", table.to_string(), ev.rows.size(), ev.rows.size() == 1 ? "" : "s");
        for (const auto& r : ev.rows) {
            out += fmt::format("  {}  (from {} data[{}])\n    {} {} {}\n", r.bucket, r.definition, r.data_query, r.table,
                               r.id, r.data);
        }
        if (!pe.entries.empty()) {
            out += fmt::format("lookup entries ({} is read by parameter queries):\n", table.to_string());
            for (const auto& e : pe.entries) {
                out += fmt::format("  {} => {}\n", e.key, e.values);
            }
        }
        print_errors(ev.errors, false, out);
        print_errors(pe.errors, false, out);
        bool used = false;
        for (const auto& t : rs.source_tables()) {
            used = used || t == table;
        }
        if (!used) {
            out += fmt::format("  (no query reads {})\n", table.to_string());
        }
    }
    fmt::print("{}", out);
    return ev.errors.empty() && pe.errors.empty() ? 0 : 1;
}

int explain_request(const rules::RuleSet& rs, const Options& o, storage::BucketReader* reader,
                    const rules::ResolveOptions& limits) {
    auto request = rules::Request::from_json(*o.claims, o.params);
    if (!request.is_ok()) {
        fmt::print(stderr, "sluice explain: {}\n", request.status().message());
        return 1;
    }
    rules::MemoryLookup lookups;
    for (const auto& [table, json] : o.parameter_rows) {
        std::string error;
        auto row = rules::json_object_to_row(json, &error);
        if (!row) {
            fmt::print(stderr, "sluice explain: --parameter-row {}: {}\n", table, error);
            return 1;
        }
        rules::ParameterEvaluation pe;
        rs.evaluate_parameter_row(table_of(table), *row, pe);
        lookups.add(pe.entries);
        for (const auto& e : pe.errors) {
            fmt::print(stderr, "sluice explain: --parameter-row {}: {} {}: {}\n", table, e.definition, e.query,
                       e.message);
        }
    }
    LiveLookup source(reader, lookups);
    auto res = rs.resolve_buckets(request.value(), source, limits);
    if (!source.error().is_ok()) {
        fmt::print(stderr, "sluice explain: reading the live lookup index: {}\n", source.error().to_string());
        return 1;
    }
    if (!res.is_ok()) {
        fmt::print(stderr, "sluice explain: {}\n", res.status().to_string());
        return 1;
    }
    std::string out;
    const auto& user = request->user_id();
    if (o.json) {
        out += "{\"user_id\":";
        rules::append_json(out, user);
        out += fmt::format(",\"lookups\":\"{}\",\"buckets\":[", reader != nullptr ? "live" : "offline");
        for (std::size_t i = 0; i < res->buckets.size(); ++i) {
            const auto& b = res->buckets[i];
            out += fmt::format("{}{{\"bucket\":{},\"priority\":{},\"definition\":{},\"query\":{},\"lookup_key\":{}}}",
                               i > 0 ? "," : "", json_string(b.id), b.priority, json_string(b.definition),
                               b.parameter_query < 0 ? std::string("null")
                                                     : json_string(fmt::format("parameters[{}]", b.parameter_query)),
                               b.lookup_key.empty() ? std::string("null") : json_string(b.lookup_key));
        }
        out += "],";
        print_errors(res->errors, true, out);
        out += "}\n";
    } else {
        out += fmt::format("user {}: {} bucket{}{}\n", user.to_text().value_or("(no sub claim)"), res->buckets.size(),
                           res->buckets.size() == 1 ? "" : "s",
                           reader != nullptr ? " (lookups from the live index in storage)" : "");
        for (const auto& b : res->buckets) {
            std::string why;
            if (b.parameter_query < 0) {
                why = "no parameters: every user gets it";
            } else if (b.lookup_key.empty()) {
                why = fmt::format("{} parameters[{}] from the request", b.definition, b.parameter_query);
            } else {
                why = fmt::format("{} parameters[{}] via lookup {}", b.definition, b.parameter_query, b.lookup_key);
            }
            out += fmt::format("  {}  priority {}  <- {}\n", b.id, b.priority, why);
        }
        print_errors(res->errors, false, out);
    }
    fmt::print("{}", out);
    return res->errors.empty() ? 0 : 1;
}

std::optional<std::string> real_env(std::string_view name) {
    const char* value = std::getenv(std::string(name).c_str());
    if (value == nullptr) {
        return std::nullopt;
    }
    return std::string(value);
}

// The config of -c, printing its diagnostics; nullopt on errors.
std::optional<config::Config> load_config(const std::string& path) {
    const auto text = read_file(path);
    if (!text) {
        fmt::print(stderr, "sluice explain: cannot read the config file {}: {}\n", path, std::strerror(errno));
        return std::nullopt;
    }
    auto loaded = config::load_config(*text, path, real_env);
    for (const auto& d : loaded.diagnostics) {
        fmt::print(stderr, "{}\n", d.to_string());
    }
    return std::move(loaded.config);
}

// sync_rules.path, relative to the config file's folder (as `sluice run` reads it).
std::string rules_path_of(const std::string& config_path, const config::Config& config) {
    const std::filesystem::path rules(config.sync_rules.path);
    if (rules.is_absolute()) {
        return rules.string();
    }
    return (std::filesystem::path(config_path).parent_path() / rules).lexically_normal().string();
}

// The rules version clients are served from (its bucket-id prefix); 1 when storage cannot say.
std::int64_t active_rules_version(const config::Config& config) {
    auto conninfo = storage::storage_conninfo(config);
    auto reader = conninfo ? storage::BucketReader::open(conninfo.value())
                           : protocol::Result<std::unique_ptr<storage::BucketReader>>(conninfo.status());
    if (!reader) {
        return 1;
    }
    auto checkpoint = reader.value()->latest_checkpoint();
    return checkpoint && checkpoint.value() ? checkpoint.value()->rules_version : 1;
}

}  // namespace

int explain_command(const std::vector<std::string_view>& args) {
    Options o;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const auto arg = args[i];
        auto value = [&]() -> std::optional<std::string_view> {
            if (i + 1 >= args.size()) {
                return std::nullopt;
            }
            return args[++i];
        };
        if (arg == "--help" || arg == "-h") {
            fmt::print("{}", kHelp);
            return 0;
        }
        if (arg == "--json") {
            o.json = true;
            continue;
        }
        auto v = value();
        if (!v) {
            return usage(fmt::format("{} needs a value", arg));
        }
        if (arg == "--rules" || arg == "-r") {
            o.rules_path = std::string(*v);
        } else if (arg == "-c" || arg == "--config") {
            o.config_path = std::string(*v);
        } else if (arg == "--table") {
            o.table = std::string(*v);
        } else if (arg == "--row") {
            o.row = json_arg(*v);
        } else if (arg == "--claims") {
            o.claims = json_arg(*v);
        } else if (arg == "--params") {
            auto p = json_arg(*v);
            o.params = p.value_or("");
        } else if (arg == "--parameter-row") {
            const auto eq = v->find('=');
            if (eq == std::string_view::npos) {
                return usage("--parameter-row needs <table>=<json>");
            }
            auto json = json_arg(v->substr(eq + 1));
            if (!json) {
                return usage(fmt::format("cannot read {}", v->substr(eq + 1)));
            }
            o.parameter_rows.emplace_back(std::string(v->substr(0, eq)), *json);
        } else {
            return usage(fmt::format("unknown option '{}'", arg));
        }
    }
    if (o.rules_path.empty() && o.config_path.empty()) {
        return usage("--rules <file> or -c <sluice.yaml> is required");
    }
    if (o.row.has_value() == o.claims.has_value()) {
        return usage("give either --table and --row, or --claims");
    }
    if (o.row && o.table.empty()) {
        return usage("--row needs --table");
    }
    std::optional<config::Config> config;
    rules::CompileOptions compile_options;
    if (!o.config_path.empty()) {
        config = load_config(o.config_path);
        if (!config) {
            return 1;
        }
        if (o.rules_path.empty()) {
            o.rules_path = rules_path_of(o.config_path, *config);
        }
        // As `sluice run` compiles them: ids as stored, with the active rules version's prefix.
        compile_options.bucket_id_prefix = fmt::format("{}#", active_rules_version(*config));
    }
    const auto text = read_file(o.rules_path);
    if (!text) {
        fmt::print(stderr, "sluice explain: cannot read {}\n", o.rules_path);
        return 1;
    }
    const auto compiled = rules::RuleSet::compile(*text, o.rules_path, compile_options);
    for (const auto& d : compiled.diagnostics) {
        fmt::print(stderr, "{}\n", d.to_string());
    }
    if (!compiled.rules) {
        return 1;
    }
    if (o.row) {
        return explain_row(*compiled.rules, o);
    }
    rules::ResolveOptions limits;
    std::unique_ptr<storage::BucketReader> reader;
    if (config) {
        if (config->limits.max_buckets_per_connection > 0) {
            limits.max_buckets = static_cast<std::size_t>(config->limits.max_buckets_per_connection);
        }
        if (config->limits.max_parameter_query_results > 0) {
            limits.max_parameter_results = static_cast<std::size_t>(config->limits.max_parameter_query_results);
        }
        auto conninfo = storage::storage_conninfo(*config);
        if (!conninfo.is_ok()) {
            fmt::print(stderr, "sluice explain: {}\n", conninfo.status().to_string());
            return 1;
        }
        auto opened = storage::BucketReader::open(conninfo.value());
        if (!opened.is_ok()) {
            fmt::print(stderr, "sluice explain: opening bucket storage: {}\n", opened.status().to_string());
            return 1;
        }
        reader = std::move(opened).value();
    }
    return explain_request(*compiled.rules, o, reader.get(), limits);
}

}  // namespace sluice::app
