// Process-wide metrics, rendered in the Prometheus text exposition format (version 0.0.4) for
// GET /metrics. Each layer asks for its counters and gauges once (by name and labels) and keeps the
// reference: updates are single atomic operations, safe from any thread. Values that are cheaper to
// read when asked (replication lag, WAL retained by the slot) come from collectors, functions run at
// each render that set gauges.
//
// Names follow Prometheus conventions: sluice_<layer>_<what>[_unit][_total for counters].
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::core {

// Label pairs, e.g. {{"code", "SL3005"}}; order is kept as given.
using MetricLabels = std::vector<std::pair<std::string, std::string>>;

class Counter {
public:
    void add(std::uint64_t n = 1) { m_value.fetch_add(n, std::memory_order_relaxed); }
    // For a counter that mirrors a running total a component keeps itself.
    void store(std::uint64_t total) { m_value.store(total, std::memory_order_relaxed); }
    [[nodiscard]] std::uint64_t value() const { return m_value.load(std::memory_order_relaxed); }

private:
    std::atomic<std::uint64_t> m_value{0};
};

class Gauge {
public:
    void set(double v) { m_value.store(v, std::memory_order_relaxed); }
    void add(double v) {
        double old = m_value.load(std::memory_order_relaxed);
        while (!m_value.compare_exchange_weak(old, old + v, std::memory_order_relaxed)) {
        }
    }
    [[nodiscard]] double value() const { return m_value.load(std::memory_order_relaxed); }

private:
    std::atomic<double> m_value{0};
};

class MetricsRegistry {
public:
    // The same name and labels always give the same object. A name keeps the help text and type it
    // was first registered with; asking for it as the other type is a programming error (throws).
    Counter& counter(std::string_view name, std::string_view help, const MetricLabels& labels = {});
    Gauge& gauge(std::string_view name, std::string_view help, const MetricLabels& labels = {});

    // Runs at the start of every render(), on the rendering thread; keep it fast or cache inside.
    // Returns an id for remove_collector (components that stop, tests).
    std::uint64_t add_collector(std::function<void()> collector);
    void remove_collector(std::uint64_t id);

    // Every metric in the text format, families in name order.
    [[nodiscard]] std::string render();

private:
    enum class Type : std::uint8_t { kCounter, kGauge };
    struct Family {
        Type type;
        std::string help;
        // Rendered label set ("{code=\"SL3005\"}" or "") -> value.
        std::map<std::string, std::unique_ptr<Counter>> counters;
        std::map<std::string, std::unique_ptr<Gauge>> gauges;
    };
    Family& family(std::string_view name, std::string_view help, Type type);

    std::mutex m_mutex;
    std::map<std::string, Family, std::less<>> m_families;
    std::mutex m_collectors_mutex;  // held while collectors run: one render collects at a time
    std::map<std::uint64_t, std::function<void()>> m_collectors;
    std::uint64_t m_next_collector = 1;
};

// The registry the daemon serves.
[[nodiscard]] MetricsRegistry& metrics();

}  // namespace sluice::core
