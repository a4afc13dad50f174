// The metrics registry: the text format, label escaping, counters and gauges, collectors, and the
// log hook that counts warnings and errors by error code.
#include <catch2/catch.hpp>

#include "server/core/log.h"
#include "server/core/metrics.h"

using sluice::core::MetricsRegistry;

TEST_CASE("metrics render in the Prometheus text format, families in name order") {
    MetricsRegistry registry;
    registry.counter("zeta_total", "last family").add(3);
    auto& g = registry.gauge("alpha_bytes", "first family", {{"slot", "a\"b\\c\nd"}});
    g.set(1.5);
    g.add(1);
    registry.counter("zeta_total", "ignored: the first help text stays").add();
    CHECK(registry.render() ==
          "# HELP alpha_bytes first family\n# TYPE alpha_bytes gauge\nalpha_bytes{slot=\"a\\\"b\\\\c\\nd\"} 2.5\n"
          "# HELP zeta_total last family\n# TYPE zeta_total counter\nzeta_total 4\n");
}

TEST_CASE("metrics: one object per name and labels, a name is one type, collectors run at render") {
    MetricsRegistry registry;
    auto& a = registry.counter("requests_total", "requests", {{"code", "200"}});
    auto& b = registry.counter("requests_total", "requests", {{"code", "404"}});
    CHECK(&a == &registry.counter("requests_total", "requests", {{"code", "200"}}));
    CHECK(&a != &b);
    CHECK_THROWS_AS(registry.gauge("requests_total", "requests"), std::logic_error);
    int runs = 0;
    const auto id = registry.add_collector([&] { registry.gauge("collected", "set at render").set(++runs); });
    CHECK(registry.render().find("collected 1\n") != std::string::npos);
    CHECK(registry.render().find("collected 2\n") != std::string::npos);
    registry.remove_collector(id);
    CHECK(registry.render().find("collected 2\n") != std::string::npos);
    b.store(7);
    CHECK(registry.render().find("requests_total{code=\"404\"} 7\n") != std::string::npos);
}

TEST_CASE("warnings and errors are counted by error code and kept for the status page") {
    sluice::core::set_log_sink([](std::string_view) {});
    const sluice::core::Logger log("test", "scope=1");
    auto& with_code = sluice::core::metrics().counter("sluice_log_problems_total", "",
                                                      {{"level", "error"}, {"code", "SL3005"}});
    auto& without = sluice::core::metrics().counter("sluice_log_problems_total", "", {{"level", "warn"}, {"code", "none"}});
    const auto before_code = with_code.value();
    const auto before_none = without.value();
    log.error("replication stopped: SL3005: the stream broke; not SL30050 nor SLx");
    log.warn("no code in SL12 or SL123x");
    log.info("SL9999 at info is not a problem");
    CHECK(with_code.value() == before_code + 1);
    CHECK(without.value() == before_none + 1);
    const auto recent = sluice::core::recent_problems();
    REQUIRE(recent.size() >= 2);
    CHECK(recent.back().level == "warn");
    CHECK(recent.back().scope == "scope=1");
    CHECK(recent[recent.size() - 2].message.starts_with("replication stopped: SL3005"));
    for (int i = 0; i < 60; ++i) {
        log.warn("filler {}", i);
    }
    CHECK(sluice::core::recent_problems().size() == 50);
    CHECK(sluice::core::recent_problems().back().message == "filler 59");
    sluice::core::set_log_sink({});
}
