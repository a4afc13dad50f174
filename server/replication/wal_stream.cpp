// COPY BOTH stream of a logical replication slot (see wal_stream.h).
#include "server/replication/wal_stream.h"

#include <libpq-fe.h>
#include <poll.h>

#include <fmt/format.h>

#include "server/core/pg_errors.h"

namespace sluice::replication {

using protocol::ErrorCode;
using protocol::Status;

bool valid_slot_name(const std::string& name) {
    if (name.empty() || name.size() > 63) {
        return false;
    }
    for (const char c : name) {
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
            return false;
        }
    }
    return true;
}

std::string quote_identifier(const std::string& name) {
    std::string out = "\"";
    for (const char c : name) {
        out += c;
        if (c == '"') {
            out += '"';
        }
    }
    return out + '"';
}

std::string quote_literal(const std::string& text) {
    std::string out = "'";
    for (const char c : text) {
        out += c;
        if (c == '\'') {
            out += '\'';
        }
    }
    return out + '\'';
}

std::string start_replication_command(const StartOptions& options) {
    std::string names;
    for (const auto& p : options.publications) {
        if (!names.empty()) {
            names += ',';
        }
        names += quote_identifier(p);
    }
    auto command = fmt::format("START_REPLICATION SLOT {} LOGICAL {} (proto_version '{}', publication_names {}",
                               options.slot, options.from.to_string(), options.proto_version, quote_literal(names));
    if (options.messages) {
        command += ", messages 'true'";
    }
    if (options.streaming) {
        command += ", streaming 'on'";
    }
    return command + ")";
}

protocol::Result<WalStream> WalStream::start(PgConnection connection, const StartOptions& options) {
    if (!valid_slot_name(options.slot)) {
        return Status(ErrorCode::kSlotSetupFailed,
                      fmt::format("invalid replication slot name '{}': use 1-63 of a-z, 0-9 and _", options.slot));
    }
    const auto command = start_replication_command(options);
    std::unique_ptr<PGresult, decltype(&PQclear)> result(PQexec(connection.raw(), command.c_str()), &PQclear);
    if (PQresultStatus(result.get()) != PGRES_COPY_BOTH) {
        return Status(ErrorCode::kReplicationStreamFailed,
                      fmt::format("'{}' failed: {}", command, core::one_line(PQerrorMessage(connection.raw()))));
    }
    return WalStream(std::move(connection));
}

protocol::Result<std::optional<std::string>> WalStream::read_frame(std::chrono::milliseconds timeout) {
    pg_conn* conn = m_connection.raw();
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        char* buffer = nullptr;
        const int n = PQgetCopyData(conn, &buffer, 1);
        if (n > 0) {
            std::optional<std::string> frame(std::in_place, buffer, static_cast<std::size_t>(n));
            PQfreemem(buffer);
            return frame;
        }
        if (n == -1) {
            // The server ended the COPY: collect the final result for its message.
            std::unique_ptr<PGresult, decltype(&PQclear)> result(PQgetResult(conn), &PQclear);
            const std::string message = result && PQresultStatus(result.get()) != PGRES_COMMAND_OK
                                            ? core::one_line(PQresultErrorMessage(result.get()))
                                            : std::string("the server ended the replication stream");
            m_finished = true;
            return Status(ErrorCode::kReplicationStreamFailed, message);
        }
        if (n == -2) {
            return Status(ErrorCode::kReplicationStreamFailed,
                          fmt::format("reading the replication stream failed: {}", core::one_line(PQerrorMessage(conn))));
        }
        const auto now = std::chrono::steady_clock::now();
        if (now >= deadline) {
            return std::optional<std::string>();
        }
        pollfd fd{PQsocket(conn), POLLIN, 0};
        const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
        const int ready = ::poll(&fd, 1, static_cast<int>(wait) + 1);
        if (ready < 0 && errno != EINTR) {
            return Status(ErrorCode::kReplicationStreamFailed, "poll() on the replication socket failed");
        }
        if (ready > 0 && PQconsumeInput(conn) == 0) {
            return Status(ErrorCode::kReplicationStreamFailed,
                          fmt::format("the replication connection broke: {}", core::one_line(PQerrorMessage(conn))));
        }
    }
}

Status WalStream::send_status(const protocol::pgoutput::StandbyStatusUpdate& update) {
    const auto bytes = protocol::pgoutput::encode_standby_status(update);
    pg_conn* conn = m_connection.raw();
    if (PQputCopyData(conn, bytes.data(), static_cast<int>(bytes.size())) != 1 || PQflush(conn) != 0) {
        return {ErrorCode::kReplicationStreamFailed,
                fmt::format("sending a standby status update failed: {}", core::one_line(PQerrorMessage(conn)))};
    }
    return Status::ok();
}

void WalStream::finish() {
    if (m_finished) {
        return;
    }
    m_finished = true;
    pg_conn* conn = m_connection.raw();
    if (PQputCopyEnd(conn, nullptr) != 1) {
        return;
    }
    PQflush(conn);
    // Drain: the server may still send CopyData before its CopyDone, then CommandComplete.
    for (int i = 0; i < 10000; ++i) {
        char* buffer = nullptr;
        const int n = PQgetCopyData(conn, &buffer, 0);
        if (buffer != nullptr) {
            PQfreemem(buffer);
        }
        if (n < 0) {
            break;
        }
    }
    while (PGresult* r = PQgetResult(conn)) {
        PQclear(r);
    }
}

protocol::pgoutput::PgTimestamp pg_now() {
    const auto unix_micros =
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch());
    return protocol::pgoutput::pg_time_from_unix_micros(unix_micros.count());
}

}  // namespace sluice::replication
