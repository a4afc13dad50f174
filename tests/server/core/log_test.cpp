// Log lines: level filtering, category and scope on every line, JSON escaping.
#include <catch2/catch.hpp>

#include "server/core/log.h"

using namespace sluice::core;

namespace {
struct CaptureLog {
    std::vector<std::string> lines;
    CaptureLog() {
        set_log_sink([this](std::string_view line) { lines.emplace_back(line); });
    }
    ~CaptureLog() {
        set_log_sink({});
        set_log_level(LogLevel::kInfo);
        set_log_format(LogFormat::kText);
    }
};
}  // namespace

TEST_CASE("text lines carry level, category and scope") {
    CaptureLog capture;
    set_log_level(LogLevel::kInfo);
    const Logger log("replication", "slot=s1");
    log.debug("hidden {}", 1);
    log.info("lag {} bytes", 42);
    log.with_scope("table=todos").warn("slow");
    REQUIRE(capture.lines.size() == 2);
    CHECK(capture.lines[0].substr(25) == "info  [replication] slot=s1 lag 42 bytes\n");
    CHECK(capture.lines[1].substr(25) == "warn  [replication] slot=s1 table=todos slow\n");
    CHECK(capture.lines[0][10] == 'T');
}

TEST_CASE("json lines escape their fields") {
    CaptureLog capture;
    set_log_format(LogFormat::kJson);
    Logger("session", "conn=1").error("bad \"frame\"\n");
    REQUIRE(capture.lines.size() == 1);
    const auto& line = capture.lines[0];
    CHECK(line.find(R"("level":"error","category":"session","scope":"conn=1","msg":"bad \"frame\"\n"})") !=
          std::string::npos);
}
