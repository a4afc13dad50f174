// sluice.yaml loader: data-driven cases (tests/data/config/*.yaml against *.expected: the exact
// diagnostics, or "ok"), the example config, defaults and values.
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <catch2/catch.hpp>

#include "config/sluice_config.h"

namespace fs = std::filesystem;
using sluice::config::Config;
using sluice::config::load_config;

namespace {

std::string read(const fs::path& path) {
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

std::optional<std::string> test_env(std::string_view name) {
    static const std::map<std::string, std::string, std::less<>> kEnv{{"SLUICE_TEST_SECRET", "s3cret"},
                                                                       {"SLUICE_TEST_PORT", "9000"}};
    if (auto it = kEnv.find(name); it != kEnv.end()) {
        return it->second;
    }
    return std::nullopt;
}

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) {
        s.pop_back();
    }
    return s;
}

std::string render(const sluice::config::ConfigLoad& load) {
    if (load.diagnostics.empty()) {
        return "ok";
    }
    std::string out;
    for (const auto& d : load.diagnostics) {
        out += d.to_string() + "\n";
    }
    return trim(out);
}

sluice::config::ConfigLoad load_text(const std::string& text) { return load_config(text, "t.yaml", test_env); }

}  // namespace

TEST_CASE("config cases in tests/data/config") {
    const fs::path dir = fs::path(SLUICE_SOURCE_DIR) / "tests/data/config";
    int cases = 0;
    for (const auto& entry : fs::directory_iterator(dir)) {
        if (entry.path().extension() != ".yaml") {
            continue;
        }
        ++cases;
        const auto name = entry.path().filename().string();
        auto expected_path = entry.path();
        expected_path.replace_extension(".expected");
        INFO(name);
        REQUIRE(fs::exists(expected_path));
        const auto load = load_config(read(entry.path()), name, test_env);
        CHECK(render(load) == trim(read(expected_path)));
        CHECK(load.config.has_value() == (render(load) == "ok"));
    }
    CHECK(cases >= 10);
}

TEST_CASE("three mistakes are all reported, in file order") {
    const auto load = load_config(read(fs::path(SLUICE_SOURCE_DIR) / "tests/data/config/three_mistakes.yaml"),
                                  "three_mistakes.yaml", test_env);
    REQUIRE(load.diagnostics.size() == 3);
    CHECK(load.diagnostics[0].pos.line == 5);
    CHECK(load.diagnostics[1].pos.line == 8);
    CHECK(load.diagnostics[2].pos.line == 10);
    CHECK_FALSE(load.config.has_value());
}

TEST_CASE("the example config is valid and documents every key") {
    const auto text = read(fs::path(SLUICE_SOURCE_DIR) / "deploy/sluice.example.yaml");
    const auto load = load_config(text, "sluice.example.yaml", [](std::string_view name) {
        return test_env(name).value_or("example-" + std::string(name));
    });
    INFO(render(load));
    CHECK(load.config.has_value());
    for (const auto& key : sluice::config::config_keys()) {
        // Each key's last segment must appear as a YAML key, and its description as a comment.
        std::string path(key.path);
        const auto leaf = path.substr(path.find_last_of(".]") + 1);
        INFO(key.path);
        CHECK(text.find(leaf + ":") != std::string::npos);
        CHECK(text.find(std::string(key.description.substr(0, 40))) != std::string::npos);
    }
}

TEST_CASE("every default is valid for its own key") {
    const Config defaults = sluice::config::default_config();
    CHECK(defaults.source.publication == "sluice");
    CHECK(defaults.source.slot == "sluice");
    CHECK(defaults.server.port == 8080);
    CHECK(defaults.limits.max_message_bytes == 16 * 1024 * 1024);
    CHECK(defaults.logging.level == sluice::config::LogLevel::kInfo);
    // Writing each default back into a file must load cleanly: defaults obey their own bounds.
    for (const auto& key : sluice::config::config_keys()) {
        std::string path(key.path);
        if (key.default_yaml.empty() || path.find('[') != std::string::npos || path == "source.uri" ||
            path == "auth.keys") {
            continue;
        }
        std::string yaml;
        std::string indent;
        std::size_t start = 0;
        for (auto dot = path.find('.'); dot != std::string::npos; dot = path.find('.', start)) {
            yaml += indent + path.substr(start, dot - start) + ":\n";
            indent += "  ";
            start = dot + 1;
        }
        yaml += indent + path.substr(start) + ": " + std::string(key.default_yaml) + "\n";
        yaml = path.starts_with("source.") ? "source:\n  uri: x\n" + yaml.substr(yaml.find('\n') + 1)
                                           : "source:\n  uri: x\n" + yaml;
        INFO(yaml);
        CHECK(render(load_text(yaml)) == "ok");
    }
}

TEST_CASE("values reach the typed config") {
    const auto load = load_text(R"(
role: api
source:
  uri: postgresql://u:${SLUICE_TEST_SECRET}@db/app
  publication_mode: user
server:
  port: ${SLUICE_TEST_PORT}
  cors_origins: ["https://a.example", "https://b.example"]
auth:
  audience: [sluice]
  keys:
    - {kid: k1, alg: HS256, secret: "${SLUICE_TEST_SECRET}"}
    - {kid: k2, alg: ES256, public_key_file: /k.pem}
limits:
  max_message_bytes: 2MiB
logging:
  level: debug
  format: json
)");
    INFO(render(load));
    REQUIRE(load.config.has_value());
    const Config& c = *load.config;
    CHECK(c.role == sluice::config::Role::kApi);
    CHECK(c.source.uri == "postgresql://u:s3cret@db/app");
    CHECK(c.source.publication_mode == sluice::config::PublicationMode::kUser);
    CHECK(c.server.port == 9000);
    CHECK(c.server.cors_origins == std::vector<std::string>{"https://a.example", "https://b.example"});
    REQUIRE(c.auth.keys.size() == 2);
    CHECK(c.auth.keys[0].secret == "s3cret");
    CHECK(c.auth.keys[1].alg == "ES256");
    CHECK(c.limits.max_message_bytes == 2 * 1024 * 1024);
    CHECK(c.logging.format == sluice::config::LogFormat::kJson);
}

TEST_CASE("an empty value keeps the default, '$$' is a literal dollar") {
    const auto load = load_text("source:\n  uri: x\n  slot:\nauth:\n  admin_token: a$$b\n");
    REQUIRE(load.config.has_value());
    CHECK(load.config->source.slot == "sluice");
    CHECK(load.config->auth.admin_token == "a$b");
}
