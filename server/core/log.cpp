// Log line formatting and the process-wide sink.
#include "server/core/log.h"

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <deque>
#include <mutex>

#include "server/core/metrics.h"

namespace sluice::core {
namespace {

std::atomic<LogLevel> g_level{LogLevel::kInfo};
std::atomic<LogFormat> g_format{LogFormat::kText};
std::mutex g_sink_mutex;                                // guards g_sink and the writes to stderr
std::function<void(std::string_view)> g_sink;           // under g_sink_mutex

std::string_view level_name(LogLevel level) {
    switch (level) {
        case LogLevel::kTrace:
            return "trace";
        case LogLevel::kDebug:
            return "debug";
        case LogLevel::kInfo:
            return "info";
        case LogLevel::kWarn:
            return "warn";
        case LogLevel::kError:
            return "error";
    }
    return "?";
}

std::string timestamp() {
    const auto now = std::chrono::system_clock::now();
    const auto seconds = std::chrono::system_clock::to_time_t(now);
    const auto millis =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday,
                       utc.tm_hour, utc.tm_min, utc.tm_sec, millis);
}

void append_json_string(std::string& out, std::string_view text) {
    out += '"';
    for (const char c : text) {
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
                } else {
                    out += c;
                }
        }
    }
    out += '"';
}

constexpr std::size_t kRecentProblems = 50;
std::mutex g_problems_mutex;
std::deque<LoggedProblem> g_problems;  // under g_problems_mutex

// The first error code (SL followed by four digits) in a message, or "none".
std::string error_code_in(std::string_view message) {
    for (std::size_t i = message.find("SL"); i != std::string_view::npos; i = message.find("SL", i + 1)) {
        const auto digits = message.substr(i + 2, 4);
        if (digits.size() == 4 && digits.find_first_not_of("0123456789") == std::string_view::npos &&
            (i + 6 == message.size() || std::isdigit(static_cast<unsigned char>(message[i + 6])) == 0)) {
            return std::string(message.substr(i, 6));
        }
    }
    return "none";
}

void record_problem(LoggedProblem problem) {
    metrics()
        .counter("sluice_log_problems_total", "warnings and errors logged, by level and error code",
                 {{"level", problem.level}, {"code", error_code_in(problem.message)}})
        .add();
    std::lock_guard lock(g_problems_mutex);
    g_problems.push_back(std::move(problem));
    if (g_problems.size() > kRecentProblems) {
        g_problems.pop_front();
    }
}

}  // namespace

std::vector<LoggedProblem> recent_problems() {
    std::lock_guard lock(g_problems_mutex);
    return {g_problems.begin(), g_problems.end()};
}

void set_log_level(LogLevel level) { g_level.store(level, std::memory_order_relaxed); }
void set_log_format(LogFormat format) { g_format.store(format, std::memory_order_relaxed); }

void set_log_sink(std::function<void(std::string_view)> sink) {
    std::lock_guard lock(g_sink_mutex);
    g_sink = std::move(sink);
}

bool Logger::enabled(LogLevel level) { return level >= g_level.load(std::memory_order_relaxed); }

Logger Logger::with_scope(std::string_view scope) const {
    if (m_scope.empty()) {
        return Logger(m_category, std::string(scope));
    }
    return Logger(m_category, m_scope + " " + std::string(scope));
}

void Logger::write(LogLevel level, std::string_view message) const {
    const auto ts = timestamp();
    if (level >= LogLevel::kWarn) {
        record_problem({ts, std::string(level_name(level)), m_category, m_scope, std::string(message)});
    }
    std::string line;
    if (g_format.load(std::memory_order_relaxed) == LogFormat::kJson) {
        line = fmt::format(R"({{"ts":"{}","level":"{}","category":)", ts, level_name(level));
        append_json_string(line, m_category);
        line += R"(,"scope":)";
        append_json_string(line, m_scope);
        line += R"(,"msg":)";
        append_json_string(line, message);
        line += "}\n";
    } else {
        line = fmt::format("{} {:<5} [{}]{}{} {}\n", ts, level_name(level), m_category,
                           m_scope.empty() ? "" : " ", m_scope, message);
    }
    std::lock_guard lock(g_sink_mutex);
    if (g_sink) {
        g_sink(line);
    } else {
        std::fwrite(line.data(), 1, line.size(), stderr);
    }
}

}  // namespace sluice::core
