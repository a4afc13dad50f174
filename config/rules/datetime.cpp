// Time parsing and formatting for unixepoch() and datetime() (proleptic Gregorian, UTC).
#include "config/rules/datetime.h"

#include <cmath>
#include <cstdio>
#include <optional>
#include <string>

namespace sluice::config::rules {
namespace {

std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
    y -= m <= 2 ? 1 : 0;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const auto yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

void civil_from_days(std::int64_t z, std::int64_t& y, unsigned& m, unsigned& d) {
    z += 719468;
    const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const auto doe = static_cast<unsigned>(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = static_cast<std::int64_t>(yoe) + era * 400;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2 ? 1 : 0;
}

bool digits(const std::string& s, std::size_t& i, int count, int& out) {
    out = 0;
    for (int k = 0; k < count; ++k, ++i) {
        if (i >= s.size() || s[i] < '0' || s[i] > '9') {
            return false;
        }
        out = out * 10 + (s[i] - '0');
    }
    return true;
}

// Milliseconds since the epoch for ISO-8601 text, or nullopt.
std::optional<double> parse_iso(const std::string& s) {
    std::size_t i = 0;
    while (i < s.size() && s[i] == ' ') {
        ++i;
    }
    int year = 0;
    int month = 0;
    int day = 0;
    if (!digits(s, i, 4, year) || i >= s.size() || s[i++] != '-' || !digits(s, i, 2, month) || i >= s.size() ||
        s[i++] != '-' || !digits(s, i, 2, day)) {
        return std::nullopt;
    }
    if (month < 1 || month > 12 || day < 1 || day > 31) {
        return std::nullopt;
    }
    double seconds = 0;
    if (i < s.size() && (s[i] == ' ' || s[i] == 'T' || s[i] == 't')) {
        std::size_t j = i + 1;
        int hour = 0;
        int minute = 0;
        if (digits(s, j, 2, hour) && j < s.size() && s[j] == ':') {
            ++j;
            if (!digits(s, j, 2, minute)) {
                return std::nullopt;
            }
            double sec = 0;
            if (j < s.size() && s[j] == ':') {
                ++j;
                int whole = 0;
                if (!digits(s, j, 2, whole)) {
                    return std::nullopt;
                }
                sec = whole;
                if (j < s.size() && s[j] == '.') {
                    ++j;
                    double scale = 0.1;
                    while (j < s.size() && s[j] >= '0' && s[j] <= '9') {
                        sec += (s[j] - '0') * scale;
                        scale /= 10;
                        ++j;
                    }
                }
            }
            if (hour > 24 || minute > 59 || sec >= 60) {
                return std::nullopt;
            }
            seconds = hour * 3600.0 + minute * 60.0 + sec;
            i = j;
        }
    }
    while (i < s.size() && s[i] == ' ') {
        ++i;
    }
    if (i < s.size()) {
        if (s[i] == 'Z' || s[i] == 'z') {
            ++i;
        } else if (s[i] == '+' || s[i] == '-') {
            const int sign = s[i] == '+' ? 1 : -1;
            ++i;
            int oh = 0;
            int om = 0;
            if (!digits(s, i, 2, oh)) {
                return std::nullopt;
            }
            if (i < s.size() && s[i] == ':') {
                ++i;
            }
            if (i < s.size() && !digits(s, i, 2, om)) {
                return std::nullopt;
            }
            seconds -= sign * (oh * 3600.0 + om * 60.0);
        }
        while (i < s.size() && s[i] == ' ') {
            ++i;
        }
        if (i != s.size()) {
            return std::nullopt;
        }
    }
    const auto days = days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
    return (static_cast<double>(days) * 86400.0 + seconds) * 1000.0;
}

// Milliseconds since the epoch for a time value and its modifiers; nullopt for NULL results.
std::optional<double> time_of(std::span<const Value> args, bool& subsec) {
    subsec = false;
    if (args.empty() || args[0].is_null()) {
        return std::nullopt;
    }
    bool unixepoch = false;
    for (std::size_t k = 1; k < args.size(); ++k) {
        if (args[k].type() != ValueType::kText) {
            return std::nullopt;
        }
        std::string m = args[k].bytes();
        for (auto& c : m) {
            c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
        }
        if (m == "unixepoch") {
            unixepoch = true;
        } else if (m == "subsec" || m == "subsecond") {
            subsec = true;
        } else if (m != "utc") {
            return std::nullopt;
        }
    }
    const Value& v = args[0];
    std::optional<double> number;
    if (v.is_number()) {
        number = v.number();
    } else if (v.type() == ValueType::kText) {
        if (auto ms = parse_iso(v.bytes())) {
            if (unixepoch) {
                return std::nullopt;
            }
            return ms;
        }
        const Value n = to_numeric(v);
        const auto& s = v.bytes();
        const bool numeric_text = !s.empty() && (std::isdigit(static_cast<unsigned char>(s[0])) || s[0] == '-' ||
                                                 s[0] == '+' || s[0] == '.');
        if (!numeric_text || s.find_first_not_of("0123456789.+-eE ") != std::string::npos) {
            return std::nullopt;
        }
        number = n.number();
    } else {
        return std::nullopt;
    }
    if (unixepoch) {
        return *number * 1000.0;
    }
    // Julian day number: day 2440587.5 is the unix epoch.
    return (*number - 2440587.5) * 86400000.0;
}

}  // namespace

Value sql_unixepoch(std::span<const Value> args) {
    bool subsec = false;
    auto ms = time_of(args, subsec);
    if (!ms) {
        return Value::null();
    }
    if (subsec) {
        return Value::real(std::round(*ms) / 1000.0);
    }
    return Value::integer(static_cast<std::int64_t>(std::floor(*ms / 1000.0)));
}

Value sql_datetime(std::span<const Value> args) {
    bool subsec = false;
    auto ms = time_of(args, subsec);
    if (!ms) {
        return Value::null();
    }
    const auto total_ms = static_cast<std::int64_t>(std::round(*ms));
    std::int64_t days = total_ms / 86400000;
    std::int64_t rem = total_ms % 86400000;
    if (rem < 0) {
        rem += 86400000;
        --days;
    }
    std::int64_t y = 0;
    unsigned m = 0;
    unsigned d = 0;
    civil_from_days(days, y, m, d);
    const auto secs = rem / 1000;
    char buf[64];
    if (subsec) {
        std::snprintf(buf, sizeof buf, "%04lld-%02u-%02u %02lld:%02lld:%02lld.%03lld", static_cast<long long>(y), m, d,
                      static_cast<long long>(secs / 3600), static_cast<long long>(secs / 60 % 60),
                      static_cast<long long>(secs % 60), static_cast<long long>(rem % 1000));
    } else {
        std::snprintf(buf, sizeof buf, "%04lld-%02u-%02u %02lld:%02lld:%02lld", static_cast<long long>(y), m, d,
                      static_cast<long long>(secs / 3600), static_cast<long long>(secs / 60 % 60),
                      static_cast<long long>(secs % 60));
    }
    return Value::text(buf);
}

}  // namespace sluice::config::rules
