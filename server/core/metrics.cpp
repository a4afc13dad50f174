// Metrics registry and text rendering (see metrics.h).
#include "server/core/metrics.h"

#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

namespace sluice::core {

namespace {

// Label values escape backslash, double quote and newline (exposition format, "Comments, help text,
// and type information" / "Line format").
std::string render_labels(const MetricLabels& labels) {
    if (labels.empty()) {
        return {};
    }
    std::string out = "{";
    for (std::size_t i = 0; i < labels.size(); ++i) {
        if (i > 0) {
            out += ',';
        }
        out += labels[i].first;
        out += "=\"";
        for (const char c : labels[i].second) {
            if (c == '\\' || c == '"') {
                out += '\\';
                out += c;
            } else if (c == '\n') {
                out += "\\n";
            } else {
                out += c;
            }
        }
        out += '"';
    }
    return out + "}";
}

std::string render_value(double v) {
    if (std::isnan(v)) {
        return "NaN";
    }
    if (std::isinf(v)) {
        return v > 0 ? "+Inf" : "-Inf";
    }
    return fmt::format("{}", v);
}

}  // namespace

MetricsRegistry::Family& MetricsRegistry::family(std::string_view name, std::string_view help, Type type) {
    auto it = m_families.find(name);
    if (it == m_families.end()) {
        it = m_families.emplace(std::string(name), Family{type, std::string(help), {}, {}}).first;
    } else if (it->second.type != type) {
        throw std::logic_error(fmt::format("metric {} registered as both counter and gauge", name));
    }
    return it->second;
}

Counter& MetricsRegistry::counter(std::string_view name, std::string_view help, const MetricLabels& labels) {
    std::lock_guard lock(m_mutex);
    auto& slot = family(name, help, Type::kCounter).counters[render_labels(labels)];
    if (!slot) {
        slot = std::make_unique<Counter>();
    }
    return *slot;
}

Gauge& MetricsRegistry::gauge(std::string_view name, std::string_view help, const MetricLabels& labels) {
    std::lock_guard lock(m_mutex);
    auto& slot = family(name, help, Type::kGauge).gauges[render_labels(labels)];
    if (!slot) {
        slot = std::make_unique<Gauge>();
    }
    return *slot;
}

std::uint64_t MetricsRegistry::add_collector(std::function<void()> collector) {
    std::lock_guard lock(m_collectors_mutex);
    const auto id = m_next_collector++;
    m_collectors.emplace(id, std::move(collector));
    return id;
}

void MetricsRegistry::remove_collector(std::uint64_t id) {
    std::lock_guard lock(m_collectors_mutex);
    m_collectors.erase(id);
}

std::string MetricsRegistry::render() {
    {
        std::lock_guard lock(m_collectors_mutex);
        for (const auto& [id, collect] : m_collectors) {
            collect();
        }
    }
    std::lock_guard lock(m_mutex);
    std::string out;
    for (const auto& [name, f] : m_families) {
        out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, f.help, name,
                           f.type == Type::kCounter ? "counter" : "gauge");
        for (const auto& [labels, c] : f.counters) {
            out += fmt::format("{}{} {}\n", name, labels, c->value());
        }
        for (const auto& [labels, g] : f.gauges) {
            out += fmt::format("{}{} {}\n", name, labels, render_value(g->value()));
        }
    }
    return out;
}

MetricsRegistry& metrics() {
    static MetricsRegistry registry;
    return registry;
}

}  // namespace sluice::core
