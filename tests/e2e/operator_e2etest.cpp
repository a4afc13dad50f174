// The operator's view of the real `sluice` binary: GET /metrics (Prometheus text), the /admin page
// and its /admin/status.json, both behind auth.admin_token, and the periodic summary line in the log.
#include <csignal>
#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>

#include "tests/server/http/test_client.h"
#include "tests/support/pg.h"
#include "tests/support/process.h"

namespace fs = std::filesystem;
using sluice::test::eventually;
using sluice::test::http_request;

namespace {

constexpr const char* kAdminToken = "operator-token-0123456789";

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("operator endpoints: /metrics, /admin and the log summary, behind the admin token") {
    const std::string source_db = "e2e_operator_source";
    const std::string storage_db = "e2e_operator_storage";
    const auto admin = sluice::test::pg_uri();
    sluice::test::exec_sql(admin, "SELECT pg_drop_replication_slot('e2e_operator') FROM pg_replication_slots "
                                  "WHERE slot_name = 'e2e_operator'");
    for (const auto& db : {source_db, storage_db}) {
        sluice::test::exec_sql(admin, "DROP DATABASE IF EXISTS " + db + " WITH (FORCE)");
    }
    sluice::test::exec_sql(admin, "CREATE DATABASE " + source_db);
    const auto source = sluice::test::with_database(admin, source_db);
    sluice::test::exec_sql(source, "CREATE TABLE lists (id text PRIMARY KEY, name text NOT NULL); "
                                   "INSERT INTO lists SELECT 'l' || g, 'list ' || g FROM generate_series(1, 50) g");

    const fs::path dir = fs::temp_directory_path() / "sluice-e2e-operator";
    fs::remove_all(dir);
    fs::create_directories(dir);
    std::ofstream(dir / "sync-rules.yaml") << "bucket_definitions:\n  global:\n    data:\n      - SELECT * FROM lists\n";
    const auto port = sluice::test::free_port();
    std::ofstream(dir / "sluice.yaml") << "source:\n  uri: \"" << source << "\"\n  slot: e2e_operator\n"
                                       << "storage:\n  database: " << storage_db << "\n  create_database: true\n"
                                       << "server:\n  listen_address: 127.0.0.1\n  port: " << port << "\n"
                                       << "auth:\n  keys:\n    - kid: k1\n      alg: HS256\n"
                                       << "      secret: operator-secret-0123456789abcdef\n"
                                       << "  admin_token: " << kAdminToken << "\n"
                                       << "logging:\n  summary_interval_seconds: 1\n";
    sluice::test::ServiceProcess sluice({sluice::test::sluice_binary(), "run", "-c", (dir / "sluice.yaml").string()});
    REQUIRE(sluice.wait_for_notification("READY=1"));
    const sluice::test::Headers bearer = {{"Authorization", std::string("Bearer ") + kAdminToken}};

    SECTION("without the token, or with a wrong one, nothing is shown") {
        auto missing = http_request(port, "GET", "/metrics");
        CHECK(missing.status == 401);
        CHECK(contains(missing.body, "SL5101"));
        auto wrong = http_request(port, "GET", "/admin/status.json", {{"Authorization", "Bearer operator-token-0123456788"}});
        CHECK(wrong.status == 401);
        CHECK(contains(wrong.body, "SL5102"));
        auto short_token = http_request(port, "GET", "/metrics?token=operator");
        CHECK(short_token.status == 401);
    }

    SECTION("metrics follow replication: snapshot done, ops written, lag and WAL retained reported") {
        std::string metrics;
        const bool snapshot_done = eventually([&] {
            auto res = http_request(port, "GET", "/metrics", bearer);
            metrics = res.body;
            // The slot turns active once streaming starts, a moment after the snapshot is done.
            return res.status == 200 && contains(metrics, "\nsluice_snapshot_done 1\n") &&
                   contains(metrics, "\nsluice_storage_ops_written_total 50\n") &&
                   contains(metrics, "\nsluice_replication_slot_active 1\n");
        });
        INFO(metrics);
        INFO(sluice.output());
        REQUIRE(snapshot_done);
        for (const char* family : {"# TYPE sluice_replication_lag_bytes gauge", "# TYPE sluice_replication_lag_seconds gauge",
                                   "# TYPE sluice_replication_wal_retained_bytes gauge",
                                   "# TYPE sluice_storage_checkpoints_total counter",
                                   "\nsluice_snapshot_rows_done 50\n", "# TYPE sluice_sync_sessions gauge",
                                   "# TYPE sluice_sync_bytes_sent_total counter", "\nsluice_source_reachable 1\n"}) {
            CHECK(contains(metrics, family));
        }
        // A row written now shows up as one more op.
        sluice::test::exec_sql(source, "INSERT INTO lists VALUES ('l51', 'list 51')");
        CHECK(eventually([&] {
            return contains(http_request(port, "GET", "/metrics", bearer).body, "\nsluice_storage_ops_written_total 51\n");
        }));
        // The query-string form works too (Prometheus' `params`, a browser).
        CHECK(http_request(port, "GET", std::string("/metrics?token=") + kAdminToken).status == 200);
    }

    SECTION("the status page and its data") {
        auto page = http_request(port, "GET", "/admin");
        CHECK(page.status == 200);
        CHECK(page.headers["content-type"].starts_with("text/html"));
        CHECK(contains(page.body, "<title>Sluice status</title>"));
        std::string json;
        CHECK(eventually([&] {
            auto res = http_request(port, "GET", "/admin/status.json", bearer);
            json = res.body;
            return res.status == 200 && contains(json, R"("snapshot":{"done":true)");
        }));
        INFO(json);
        CHECK(contains(json, R"("slot":"e2e_operator")"));
        CHECK(contains(json, R"("table":"public.lists","rows_done":50)"));
        CHECK(contains(json, R"("largest_buckets":[{"bucket":"1#global[]","ops":50}])"));
        CHECK(contains(json, R"("source_error":"")"));
    }

    SECTION("a summary line in the log every logging.summary_interval_seconds") {
        CHECK(eventually([&] { return contains(sluice.output(), "summary: lag "); }));
    }

    sluice.send_signal(SIGTERM);
    CHECK(sluice.wait_exit() == 0);
    fs::remove_all(dir);
}
