// The web pages of the real `sluice` binary in headless Chromium (Debian's `chromium`, installed by
// scripts/install-deps.sh): the /admin status page renders live replication state, and the /demo
// page shows each user exactly their rows over WebSocket, following a grant made in Postgres.
// Screenshots are left in the build folder (tests/e2e/*.png) for a person to look at.
#include <csignal>
#include <ctime>
#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>

#include "tests/support/demo_oracle.h"
#include "tests/support/jwt_signer.h"
#include "tests/support/pg.h"
#include "tests/support/process.h"

namespace fs = std::filesystem;
using sluice::test::eventually;

namespace {

constexpr const char* kChromium = "/usr/bin/chromium";
constexpr const char* kSecret = "browser-secret-0123456789abcdef";

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// The page's DOM after its scripts ran for a while (virtual time: the page's timers, not a pause of
// ours), optionally with a screenshot.
std::string render(const std::string& url, const std::string& screenshot = {}) {
    std::vector<std::string> argv = {kChromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                     "--window-size=1200,800",
                                     // A screenshot has one chance: let the page run longer first.
                                     screenshot.empty() ? "--virtual-time-budget=3000" : "--virtual-time-budget=10000",
                                     "--user-data-dir=" + (fs::temp_directory_path() / "sluice-e2e-chromium").string()};
    if (!screenshot.empty()) {
        argv.push_back("--screenshot=" + screenshot);
    } else {
        argv.push_back("--dump-dom");
    }
    argv.push_back(url);
    auto result = sluice::test::run_command(argv);
    return result.output;
}

// The text of the demo page's panel for `user` in a DOM dump ("" when it is not there).
std::string panel(const std::string& dom, const std::string& user) {
    const auto start = dom.find("data-user=\"" + user + "\"");
    if (start == std::string::npos) {
        return {};
    }
    const auto end = dom.find("<section class=\"user\"", start + 1);
    return dom.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

}  // namespace

TEST_CASE("in Chromium: the status page and two users' demo clients, live") {
    REQUIRE(fs::exists(kChromium));  // scripts/install-deps.sh installs Debian's chromium
    const std::string source_db = "e2e_browser_source";
    const std::string storage_db = "e2e_browser_storage";
    const auto admin = sluice::test::pg_uri();
    sluice::test::exec_sql(admin, "SELECT pg_drop_replication_slot('e2e_browser') FROM pg_replication_slots "
                                  "WHERE slot_name = 'e2e_browser'");
    for (const auto& db : {source_db, storage_db}) {
        sluice::test::exec_sql(admin, "DROP DATABASE IF EXISTS " + db + " WITH (FORCE)");
    }
    sluice::test::exec_sql(admin, "CREATE DATABASE " + source_db);
    const auto source = sluice::test::with_database(admin, source_db);
    sluice::test::create_demo_schema(source);

    const fs::path dir = fs::temp_directory_path() / "sluice-e2e-browser";
    fs::remove_all(dir);
    fs::create_directories(dir);
    fs::copy_file(std::string(SLUICE_SOURCE_DIR) + "/deploy/demo/sync-rules.yaml", dir / "sync-rules.yaml");
    const auto port = sluice::test::free_port();
    std::ofstream(dir / "sluice.yaml") << "source:\n  uri: \"" << source << "\"\n  slot: e2e_browser\n"
                                       << "storage:\n  database: " << storage_db << "\n  create_database: true\n"
                                       << "server:\n  listen_address: 127.0.0.1\n  port: " << port
                                       << "\n  demo_page: true\n"
                                       << "auth:\n  keys:\n    - kid: k1\n      alg: HS256\n      secret: " << kSecret
                                       << "\n  admin_token: browser-admin-token\n";
    sluice::test::ServiceProcess sluice({sluice::test::sluice_binary(), "run", "-c", (dir / "sluice.yaml").string()});
    REQUIRE(sluice.wait_for_notification("READY=1"));
    const auto base = "http://127.0.0.1:" + std::to_string(port);
    const auto shots = std::string(SLUICE_BINARY_DIR) + "/tests/e2e/";

    // The status page: the snapshot completes and the page shows it, with the demo's tables.
    std::string dom;
    CHECK(eventually(
        [&] {
            dom = render(base + "/admin?token=browser-admin-token");
            return contains(dom, "public.todos") && contains(dom, ">complete<") && contains(dom, "e2e_browser");
        },
        120));
    INFO(dom);
    CHECK(contains(dom, "1#user_lists[\"groceries\"]"));
    render(base + "/admin?token=browser-admin-token", shots + "admin_page.png");
    CHECK(fs::file_size(shots + "admin_page.png") > 10'000);

    // The demo page: alice sees her groceries, bob his garage, neither the other's.
    const sluice::test::TestKey key = sluice::test::TestKey::hmac("HS256", kSecret, "k1");
    const auto now = static_cast<std::int64_t>(std::time(nullptr));
    const auto demo = base + "/demo#alice=" + sluice::test::mint_token(key, "alice", now) +
                      "&bob=" + sluice::test::mint_token(key, "bob", now);
    CHECK(eventually(
        [&] {
            dom = render(demo);
            return contains(panel(dom, "alice"), "Milk") && contains(panel(dom, "bob"), "Fix the bike");
        },
        120));
    INFO(dom);
    CHECK_FALSE(contains(panel(dom, "alice"), "Fix the bike"));
    CHECK_FALSE(contains(panel(dom, "bob"), "Milk"));

    // A grant made in Postgres reaches bob's panel; alice's is unchanged.
    sluice::test::exec_sql(source, "INSERT INTO list_shares VALUES ('groceries', 'bob')");
    CHECK(eventually(
        [&] {
            // Each render is a fresh page load: under load one panel may still be connecting, so
            // both panels are awaited in the same render.
            dom = render(demo);
            return contains(panel(dom, "bob"), "Milk") && contains(panel(dom, "bob"), "shared by alice") &&
                   contains(panel(dom, "alice"), "Milk");
        },
        120));
    CHECK(contains(panel(dom, "alice"), "Milk"));
    render(demo, shots + "demo_page.png");
    CHECK(fs::file_size(shots + "demo_page.png") > 10'000);

    sluice.send_signal(SIGTERM);
    CHECK(sluice.wait_exit() == 0);
    fs::remove_all(dir);
}
