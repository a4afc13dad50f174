// The deploy files (deploy/Dockerfile, docker-compose.yml, docker/sluice.yaml, sluice.service), checked
// with what runs on this machine, since Docker and a booted systemd do not: the unit through
// `systemd-analyze verify` and `systemd-analyze security`; the container config through `sluice check`
// with the environment the compose file gives it; the compose file parsed as YAML and its references
// followed; the Dockerfile's stages, user, health check and entry point, its COPY sources, and its
// runtime packages against the shared libraries the built binary really needs (ldd + dpkg -S), and its
// HEALTHCHECK command run against a live sluice.
#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <catch2/catch.hpp>
#include <yaml-cpp/yaml.h>

#include "tests/support/pg.h"
#include "tests/support/process.h"

namespace fs = std::filesystem;
using sluice::test::run_command;

namespace {

const fs::path kRoot = SLUICE_SOURCE_DIR;
const fs::path kDeploy = kRoot / "deploy";

std::string read_file(const fs::path& path) {
    std::ifstream in(path);
    REQUIRE(in.good());
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
    for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
        text.replace(at, from.size(), to);
    }
    return text;
}

struct ScratchDir {
    fs::path path;
    explicit ScratchDir(const std::string& name) : path(fs::temp_directory_path() / ("sluice-deploy-" + name)) {
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~ScratchDir() { fs::remove_all(path); }
};

// Lines of `text` without comments and blank lines, with backslash continuations joined.
std::vector<std::string> logical_lines(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    std::string pending;
    for (std::string line; std::getline(in, line);) {
        const auto first = line.find_first_not_of(" \t");
        if (pending.empty() && (first == std::string::npos || line[first] == '#')) {
            continue;
        }
        if (!line.empty() && line.back() == '\\') {
            pending += line.substr(0, line.size() - 1);
            continue;
        }
        out.push_back(pending + line);
        pending.clear();
    }
    return out;
}

std::vector<std::string> words(const std::string& text) {
    std::istringstream in(text);
    std::vector<std::string> out;
    for (std::string w; in >> w;) {
        out.push_back(w);
    }
    return out;
}

// The ${VAR} references without a fallback in a sluice.yaml (comments left out): what the environment
// must provide.
std::set<std::string> required_variables(const std::string& config) {
    const auto text = std::regex_replace(config, std::regex("(^|\\s)#.*"), "$1");
    std::set<std::string> out;
    const std::regex reference(R"(\$\{([A-Za-z_][A-Za-z0-9_]*)\})");
    for (auto it = std::sregex_iterator(text.begin(), text.end(), reference); it != std::sregex_iterator(); ++it) {
        out.insert((*it)[1].str());
    }
    return out;
}

}  // namespace

TEST_CASE("deploy/sluice.service passes systemd-analyze verify and keeps its hardening") {
    const auto unit = read_file(kDeploy / "sluice.service");
    // verify checks that ExecStart's program exists: point the copy at the built binary (the only change).
    ScratchDir dir("unit");
    REQUIRE(unit.find("/usr/local/bin/sluice") != std::string::npos);
    std::ofstream(dir.path / "sluice.service") << replace_all(unit, "/usr/local/bin/sluice", sluice::test::sluice_binary());
    const auto verify = run_command({"/usr/bin/systemd-analyze", "verify", (dir.path / "sluice.service").string()});
    INFO(verify.output);
    CHECK(verify.exit_code == 0);
    CHECK(verify.output.empty());  // unknown keys and bad values are only warnings: allow none

    // Exposure score 0.0 (locked down) .. 10.0; the unit scores about 1.1. 2.0 is the limit.
    const auto security = run_command({"/usr/bin/systemd-analyze", "security", "--offline=true", "--threshold=20",
                                       (kDeploy / "sluice.service").string()});
    INFO(security.output);
    CHECK(security.exit_code == 0);

    for (const char* line : {"Type=notify", "Restart=on-failure", "ExecReload=/bin/kill -HUP $MAINPID",
                             "ExecStart=/usr/local/bin/sluice run -c /etc/sluice/sluice.yaml", "DynamicUser=yes",
                             "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
                             "CapabilityBoundingSet=", "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
                             "SystemCallFilter=@system-service", "TimeoutStopSec="}) {
        INFO(line);
        CHECK(unit.find(std::string("\n") + line) != std::string::npos);
    }
}

TEST_CASE("deploy/docker/sluice.yaml passes sluice check with the compose file's environment") {
    // As the image lays it out: /etc/sluice/sluice.yaml beside the demo rules.
    ScratchDir dir("docker-config");
    fs::copy_file(kDeploy / "docker" / "sluice.yaml", dir.path / "sluice.yaml");
    fs::copy_file(kDeploy / "demo" / "sync-rules.yaml", dir.path / "sync-rules.yaml");
    const std::string config = (dir.path / "sluice.yaml").string();
    const std::vector<std::string> env = {"SLUICE_SOURCE_URI=postgresql://postgres:pw@postgres:5432/app",
                                          "SLUICE_JWT_SECRET=test-secret", "SLUICE_JWT_KID=demo",
                                          "SLUICE_JWT_AUDIENCE=sluice-demo", "SLUICE_PORT=8080"};
    const auto ok = run_command({sluice::test::sluice_binary(), "check", "-c", config}, env);
    INFO(ok.output);
    CHECK(ok.exit_code == 0);

    // Without the secret it refuses, naming the variable.
    const auto missing = run_command(
        {"/usr/bin/env", "-u", "SLUICE_JWT_SECRET", sluice::test::sluice_binary(), "check", "-c", config},
        {env[0], env[2], env[3], env[4]});
    INFO(missing.output);
    CHECK(missing.exit_code != 0);
    CHECK(missing.output.find("SLUICE_JWT_SECRET") != std::string::npos);
}

TEST_CASE("deploy/docker-compose.yml: Postgres with logical replication and a health check, Sluice after it") {
    const auto compose = YAML::LoadFile((kDeploy / "docker-compose.yml").string());
    const auto postgres = compose["services"]["postgres"];
    const auto sluice = compose["services"]["sluice"];
    REQUIRE(postgres.IsMap());
    REQUIRE(sluice.IsMap());

    CHECK(postgres["image"].as<std::string>().starts_with("postgres:15"));
    std::string command;
    for (const auto& word : postgres["command"]) {
        command += word.as<std::string>() + " ";
    }
    CHECK(command.find("wal_level=logical") != std::string::npos);
    CHECK(command.find("max_replication_slots=") != std::string::npos);
    CHECK(command.find("max_wal_senders=") != std::string::npos);
    std::string health;
    for (const auto& word : postgres["healthcheck"]["test"]) {
        health += word.as<std::string>() + " ";
    }
    CHECK(health.find("pg_isready") != std::string::npos);
    CHECK(compose["volumes"]["pgdata"]);
    bool data_volume = false;
    for (const auto& volume : postgres["volumes"]) {
        data_volume |= volume.as<std::string>().starts_with("pgdata:/var/lib/postgresql/data");
    }
    CHECK(data_volume);

    CHECK(sluice["depends_on"]["postgres"]["condition"].as<std::string>() == "service_healthy");
    // The image is built from the repository with deploy/Dockerfile.
    const auto context = kDeploy / sluice["build"]["context"].as<std::string>();
    CHECK(fs::exists(context / sluice["build"]["dockerfile"].as<std::string>()));

    // Every bind mount's host side exists, and the config and rules land where the image reads them.
    std::set<std::string> targets;
    for (const auto& service : {postgres, sluice}) {
        for (const auto& volume : service["volumes"]) {
            const auto spec = volume.as<std::string>();
            if (!spec.starts_with("./")) {
                continue;
            }
            const auto colon = spec.find(':');
            INFO(spec);
            CHECK(fs::exists(kDeploy / spec.substr(0, colon)));
            targets.insert(spec.substr(colon + 1, spec.find(':', colon + 1) - colon - 1));
        }
    }
    CHECK(targets.count("/etc/sluice/sluice.yaml") == 1);
    CHECK(targets.count("/etc/sluice/sync-rules.yaml") == 1);

    // Every ${VAR} that deploy/docker/sluice.yaml requires is set for the sluice service.
    std::set<std::string> provided;
    for (const auto& entry : sluice["environment"]) {
        provided.insert(entry.first.as<std::string>());
    }
    for (const auto& name : required_variables(read_file(kDeploy / "docker" / "sluice.yaml"))) {
        INFO("deploy/docker/sluice.yaml needs " << name);
        CHECK(provided.count(name) == 1);
    }
}

TEST_CASE("deploy/Dockerfile: two Debian 12 stages, non-root runtime with a liveness health check") {
    const auto lines = logical_lines(read_file(kDeploy / "Dockerfile"));
    std::vector<std::string> stages;
    std::string user;
    std::string healthcheck;
    std::string entrypoint;
    std::vector<std::string> copy_sources;
    std::vector<std::set<std::string>> apt_packages;  // per stage
    for (const auto& line : lines) {
        const auto w = words(line);
        if (w.empty()) {
            continue;
        }
        if (w[0] == "FROM") {
            stages.push_back(line.substr(5));
            apt_packages.emplace_back();
            user.clear();
        } else if (w[0] == "USER") {
            user = w[1];
        } else if (w[0] == "HEALTHCHECK") {
            healthcheck = line;
        } else if (w[0] == "ENTRYPOINT") {
            entrypoint = line.substr(11);
        } else if (w[0] == "COPY" && !w[1].starts_with("--from")) {
            copy_sources.insert(copy_sources.end(), w.begin() + 1, w.end() - 1);
        } else if (w[0] == "RUN" && line.find("apt-get install") != std::string::npos) {
            bool in_list = false;
            for (const auto& word : w) {
                if (word == "--no-install-recommends") {
                    in_list = true;
                } else if (word == "&&") {
                    in_list = false;
                } else if (in_list) {
                    apt_packages.back().insert(word);
                }
            }
        }
    }
    REQUIRE(stages.size() == 2);
    CHECK(stages[0] == "debian:12 AS build");
    CHECK(stages[1] == "debian:12-slim AS runtime");
    CHECK(!user.empty());
    CHECK(!user.starts_with("root"));
    CHECK(!user.starts_with("0"));
    CHECK(healthcheck.find("/probes/liveness") != std::string::npos);
    CHECK(entrypoint == R"(["sluice", "run", "-c", "/etc/sluice/sluice.yaml"])");
    for (const auto& source : copy_sources) {
        INFO("COPY " << source);
        CHECK(fs::exists(kRoot / source));
    }

    // The build stage installs what scripts/install-deps.sh installs for building sluice.
    const auto install_deps = read_file(kRoot / "scripts" / "install-deps.sh");
    for (const auto& package : apt_packages[0]) {
        INFO("build-stage package " << package);
        const auto escaped = std::regex_replace(package, std::regex(R"([.+])"), R"(\$&)");
        CHECK(std::regex_search(install_deps, std::regex("[ (]" + escaped + "[ \n]")));
    }
    // The runtime stage installs the package of every shared library the built binary needs, beyond
    // those in debian:12-slim itself (libc, libstdc++, libgcc).
    const std::set<std::string> in_base_image = {"libc6", "libstdc++6", "libgcc-s1"};
    const auto binary = sluice::test::sluice_binary();
    const auto dynamic = run_command({"/usr/bin/objdump", "-p", binary});
    const auto ldd = run_command({"/usr/bin/ldd", binary});
    REQUIRE(dynamic.exit_code == 0);
    REQUIRE(ldd.exit_code == 0);
    const std::regex needed_entry(R"(NEEDED\s+(\S+))");
    int libraries = 0;
    for (auto it = std::sregex_iterator(dynamic.output.begin(), dynamic.output.end(), needed_entry);
         it != std::sregex_iterator(); ++it) {
        const auto soname = (*it)[1].str();
        std::smatch where;
        REQUIRE(std::regex_search(ldd.output, where, std::regex(std::regex_replace(soname, std::regex(R"([.+])"), R"(\$&)") +
                                                                   R"( => (\S+))")));
        // dpkg records a library under /lib or /usr/lib (merged /usr): ask for both.
        auto path = fs::canonical(where[1].str()).string();
        auto owner = run_command({"/usr/bin/dpkg", "-S", path});
        if (owner.exit_code != 0) {
            path = path.starts_with("/usr/") ? path.substr(4) : "/usr" + path;
            owner = run_command({"/usr/bin/dpkg", "-S", path});
        }
        INFO(soname << " (" << path << "): " << owner.output);
        REQUIRE(owner.exit_code == 0);
        const auto package = owner.output.substr(0, owner.output.find(':'));
        if (in_base_image.count(package) == 0) {
            CHECK(apt_packages[1].count(package) == 1);
        }
        ++libraries;
    }
    CHECK(libraries >= 5);  // libpq, libpqxx, simdjson, fmt, yaml-cpp, OpenSSL at least
}

TEST_CASE("deploy/Dockerfile's HEALTHCHECK command passes against a running sluice and fails once it stops") {
    // The command exactly as the Dockerfile writes it (exec form: a JSON array, which YAML reads too).
    std::string healthcheck;
    for (const auto& line : logical_lines(read_file(kDeploy / "Dockerfile"))) {
        if (line.starts_with("HEALTHCHECK")) {
            healthcheck = line;
        }
    }
    const auto cmd = healthcheck.find(" CMD [");
    REQUIRE(cmd != std::string::npos);
    std::vector<std::string> argv;
    for (const auto& word : YAML::Load(healthcheck.substr(cmd + 5))) {
        argv.push_back(word.as<std::string>());
    }
    REQUIRE(argv.size() >= 2);
    REQUIRE(argv[0] == "bash");
    argv[0] = "/bin/bash";

    const std::string source = sluice::test::fresh_database("deploy_health_source");
    ScratchDir dir("health");
    std::ofstream(dir.path / "sync-rules.yaml") << read_file(kDeploy / "demo" / "sync-rules.yaml");
    sluice::test::exec_sql(source, read_file(kDeploy / "demo" / "schema.sql"));
    const auto port = sluice::test::free_port();
    std::ofstream(dir.path / "sluice.yaml") << "source:\n  uri: \"" << source << "\"\n  slot: deploy_health_slot\n"
                                            << "storage:\n  database: t_deploy_health_storage\n  create_database: true\n"
                                            << "server:\n  listen_address: 127.0.0.1\n  port: " << port << "\n"
                                            << "auth:\n  audience: [t]\n  keys:\n    - {kid: k, alg: HS256, secret: s}\n";
    const std::vector<std::string> env = {"SLUICE_PORT=" + std::to_string(port)};
    {
        sluice::test::ServiceProcess sluice(
            {sluice::test::sluice_binary(), "run", "-c", (dir.path / "sluice.yaml").string()});
        const bool ready = sluice.wait_for_notification("READY=1");
        INFO(sluice.output());
        REQUIRE(ready);
        const auto healthy = run_command(argv, env);
        INFO(healthy.output);
        CHECK(healthy.exit_code == 0);
        sluice.send_signal(SIGTERM);
        CHECK(sluice.wait_exit() == 0);
    }
    const auto stopped = run_command(argv, env);
    CHECK(stopped.exit_code != 0);
    sluice::test::drop_fresh_database("deploy_health_source");
    sluice::test::drop_fresh_database("deploy_health_storage");
}
