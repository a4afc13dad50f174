// The walsender's CopyData framing around pgoutput messages, and the standby status update the
// client sends back. Spec: Postgres docs, "Streaming Replication Protocol" (XLogData 'w', primary
// keepalive 'k', standby status update 'r').
#pragma once

#include <string>
#include <string_view>
#include <variant>

#include "protocol/pgoutput/messages.h"
#include "protocol/status.h"

namespace sluice::protocol::pgoutput {

struct XLogData {
    Lsn wal_start;  // where this message's WAL starts (0 for some messages inside a transaction)
    Lsn wal_end;    // the server's current end of WAL
    PgTimestamp send_time = 0;
    std::string_view payload;  // one pgoutput message; a view into the frame
    bool operator==(const XLogData&) const = default;
};

struct PrimaryKeepalive {
    Lsn wal_end;
    PgTimestamp send_time = 0;
    bool reply_requested = false;  // answer at once or the server times the connection out
    bool operator==(const PrimaryKeepalive&) const = default;
};

using CopyDataMessage = std::variant<XLogData, PrimaryKeepalive>;

// One CopyData payload from the walsender; kPgoutputMalformed or kPgoutputUnsupported otherwise.
[[nodiscard]] Result<CopyDataMessage> decode_copy_data(std::string_view frame);

struct StandbyStatusUpdate {
    Lsn written;  // received and written
    Lsn flushed;  // durable: the slot's confirmed_flush_lsn moves here
    Lsn applied;
    PgTimestamp client_time = 0;
    bool reply_requested = false;
    bool operator==(const StandbyStatusUpdate&) const = default;
};

// The 34-byte 'r' message to send with PQputCopyData.
[[nodiscard]] std::string encode_standby_status(const StandbyStatusUpdate& update);
// Its inverse, for tests and tools.
[[nodiscard]] Result<StandbyStatusUpdate> decode_standby_status(std::string_view bytes);

// Converts Unix-epoch microseconds to Postgres's 2000-01-01 epoch and back.
constexpr PgTimestamp kUnixToPgEpochMicros = 946'684'800LL * 1'000'000LL;
[[nodiscard]] constexpr PgTimestamp pg_time_from_unix_micros(std::int64_t unix_micros) {
    return unix_micros - kUnixToPgEpochMicros;
}

}  // namespace sluice::protocol::pgoutput
