// The walsender's COPY BOTH stream on a replication connection (raw libpq): START_REPLICATION of a
// logical slot with pgoutput options, reading CopyData frames with a timeout, sending standby status
// updates. Spec: Postgres docs, "Streaming Replication Protocol".
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "protocol/lsn.h"
#include "protocol/pgoutput/walsender.h"
#include "protocol/status.h"
#include "server/replication/pg_connection.h"

namespace sluice::replication {

// GUCs for the source sessions, so that value text forms are what protocol/pgoutput expects.
inline constexpr const char* kSourceSessionOptions =
    "-c datestyle=ISO -c intervalstyle=postgres -c timezone=UTC -c extra_float_digits=3 -c bytea_output=hex";

struct StartOptions {
    std::string slot;
    protocol::Lsn from;  // 0/0: the slot's confirmed_flush_lsn
    int proto_version = 1;
    std::vector<std::string> publications;
    bool messages = true;    // pg_logical_emit_message() payloads
    bool streaming = false;  // v2 in-progress streaming of large transactions (needs proto_version >= 2)
};

// Slot names are [a-z0-9_]{1,63}; Postgres enforces it, we check before building commands.
[[nodiscard]] bool valid_slot_name(const std::string& name);
// "identifier" with embedded quotes doubled.
[[nodiscard]] std::string quote_identifier(const std::string& name);
// 'literal' with embedded quotes doubled (standard_conforming_strings is always on since PG 9.1).
[[nodiscard]] std::string quote_literal(const std::string& text);
[[nodiscard]] std::string start_replication_command(const StartOptions& options);

class WalStream {
public:
    // Sends START_REPLICATION on a replication connection and enters COPY BOTH mode.
    [[nodiscard]] static protocol::Result<WalStream> start(PgConnection connection, const StartOptions& options);

    // The next CopyData payload; nullopt when none arrived within `timeout`. kReplicationStreamFailed
    // when the connection broke or the server ended the stream.
    [[nodiscard]] protocol::Result<std::optional<std::string>> read_frame(std::chrono::milliseconds timeout);
    [[nodiscard]] protocol::Status send_status(const protocol::pgoutput::StandbyStatusUpdate& update);
    // Ends the COPY (the server then stops streaming) and drains what is left.
    void finish();

private:
    explicit WalStream(PgConnection connection) : m_connection(std::move(connection)) {}
    PgConnection m_connection;
    bool m_finished = false;
};

// Microseconds since 2000-01-01 now (the client time field of status updates).
[[nodiscard]] protocol::pgoutput::PgTimestamp pg_now();

}  // namespace sluice::replication
