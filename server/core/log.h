// Logging: one line per event, each with a level, a category (the layer) and a scope (what it is
// about: "slot=sluice", "conn=42 user=u1"). Text or JSON lines on stderr; thread-safe.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace sluice::core {

enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError };
enum class LogFormat { kText, kJson };

void set_log_level(LogLevel level);
void set_log_format(LogFormat format);
// Replaces stderr as the destination of complete lines (tests); an empty function restores stderr.
void set_log_sink(std::function<void(std::string_view line)> sink);

// A warning or error as logged, kept for the status page.
struct LoggedProblem {
    std::string timestamp;  // UTC, ISO 8601
    std::string level;      // "warn" or "error"
    std::string category;
    std::string scope;
    std::string message;
};

// The most recent warnings and errors (at most 50), oldest first. Every warning and error is also
// counted in the metric sluice_log_problems_total{level, code}, where code is the first SLnnnn code
// in the message ("none" without one).
[[nodiscard]] std::vector<LoggedProblem> recent_problems();

class Logger {
public:
    explicit Logger(std::string category, std::string scope = {})
        : m_category(std::move(category)), m_scope(std::move(scope)) {}

    // A logger for the same category with a narrower scope, e.g. log.with_scope("conn=42").
    [[nodiscard]] Logger with_scope(std::string_view scope) const;

    template <typename... Args>
    void trace(fmt::format_string<Args...> f, Args&&... args) const {
        log(LogLevel::kTrace, f, std::forward<Args>(args)...);
    }
    template <typename... Args>
    void debug(fmt::format_string<Args...> f, Args&&... args) const {
        log(LogLevel::kDebug, f, std::forward<Args>(args)...);
    }
    template <typename... Args>
    void info(fmt::format_string<Args...> f, Args&&... args) const {
        log(LogLevel::kInfo, f, std::forward<Args>(args)...);
    }
    template <typename... Args>
    void warn(fmt::format_string<Args...> f, Args&&... args) const {
        log(LogLevel::kWarn, f, std::forward<Args>(args)...);
    }
    template <typename... Args>
    void error(fmt::format_string<Args...> f, Args&&... args) const {
        log(LogLevel::kError, f, std::forward<Args>(args)...);
    }

    [[nodiscard]] static bool enabled(LogLevel level);

private:
    template <typename... Args>
    void log(LogLevel level, fmt::format_string<Args...> f, Args&&... args) const {
        if (enabled(level)) {
            write(level, fmt::format(f, std::forward<Args>(args)...));
        }
    }
    void write(LogLevel level, std::string_view message) const;

    std::string m_category;
    std::string m_scope;
};

}  // namespace sluice::core
