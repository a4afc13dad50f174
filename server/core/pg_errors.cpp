// Connection-failure classification from libpq messages (see pg_errors.h).
#include "server/core/pg_errors.h"

#include <regex>

namespace sluice::core {

ConnectFailure classify_connect_failure(std::string_view message) {
    auto has = [message](std::string_view needle) { return message.find(needle) != std::string_view::npos; };
    if (has("password authentication failed") || has("no pg_hba.conf entry") ||
        (has("role \"") && has("does not exist")) || has("no password supplied") ||
        has("authentication failed")) {
        return ConnectFailure::kAuth;
    }
    if (has("database \"") && has("does not exist")) {
        return ConnectFailure::kDatabaseMissing;
    }
    if (has("must be superuser or replication role") || has("permission denied to start WAL sender")) {
        return ConnectFailure::kNoReplication;
    }
    if (has("exceeds max_wal_senders")) {
        return ConnectFailure::kNoWalSenders;
    }
    if (has("Connection refused") || has("could not translate host name") || has("timeout expired") ||
        has("No route to host") || has("Network is unreachable") || has("could not connect to server") ||
        has("No such file or directory") || has("the database system is starting up") ||
        has("the database system is shutting down")) {
        return ConnectFailure::kUnreachable;
    }
    return ConnectFailure::kOther;
}

std::string one_line(std::string_view message) {
    std::string out;
    bool space = false;
    for (const char c : message) {
        if (c == '\n' || c == '\t' || c == '\r') {
            space = !out.empty();
            continue;
        }
        if (space && c != ' ') {
            out += ' ';
        }
        space = false;
        out += c;
    }
    while (!out.empty() && out.back() == ' ') {
        out.pop_back();
    }
    return out;
}

std::string redact_conninfo(std::string_view conninfo) {
    static const std::regex kUriPassword(R"(^([a-z]+://[^:/@]*:)[^@]*@)", std::regex::icase);
    static const std::regex kKeyPassword(R"((\bpassword\s*=\s*)('([^'\\]|\\.)*'|\S+))");
    static const std::regex kQueryPassword(R"(([?&]password=)[^&]*)");
    const std::string text(conninfo);
    if (text.find("://") != std::string::npos) {
        return std::regex_replace(std::regex_replace(text, kUriPassword, "$1***@"), kQueryPassword, "$1***");
    }
    return std::regex_replace(text, kKeyPassword, "$1***");
}

}  // namespace sluice::core
