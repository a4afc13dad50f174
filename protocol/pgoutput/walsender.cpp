// CopyData framing of the walsender and the standby status update (see walsender.h).
#include "protocol/pgoutput/walsender.h"

#include <fmt/format.h>

#include "protocol/pgoutput/detail/byte_reader.h"

namespace sluice::protocol::pgoutput {
namespace {

void put_u64(std::string& out, std::uint64_t v) {
    for (int shift = 56; shift >= 0; shift -= 8) {
        out.push_back(static_cast<char>((v >> static_cast<unsigned>(shift)) & 0xFFU));
    }
}

Status malformed(const char* what, std::size_t size, const detail::ByteReader& r) {
    return {ErrorCode::kPgoutputMalformed,
            fmt::format("malformed walsender {} ({} bytes): {} at byte {}: {}", what, size, r.failed_field(),
                        r.failure_position() + 1, r.failure_reason())};
}

}  // namespace

Result<CopyDataMessage> decode_copy_data(std::string_view frame) {
    if (frame.empty()) {
        return Status(ErrorCode::kPgoutputMalformed, "empty CopyData message from the walsender");
    }
    detail::ByteReader r(frame.substr(1));
    switch (frame[0]) {
        case 'w': {
            XLogData m;
            m.wal_start = Lsn(r.u64("wal start"));
            m.wal_end = Lsn(r.u64("wal end"));
            m.send_time = r.i64("send time");
            m.payload = r.rest();
            if (r.failed()) {
                return malformed("XLogData", frame.size(), r);
            }
            return CopyDataMessage(m);
        }
        case 'k': {
            PrimaryKeepalive m;
            m.wal_end = Lsn(r.u64("wal end"));
            m.send_time = r.i64("send time");
            m.reply_requested = r.u8("reply requested") != 0;
            if (!r.failed() && !r.at_end()) {
                r.fail("end of message", fmt::format("{} unexpected trailing byte(s)", r.remaining()));
            }
            if (r.failed()) {
                return malformed("keepalive", frame.size(), r);
            }
            return CopyDataMessage(m);
        }
        default:
            return Status(ErrorCode::kPgoutputUnsupported,
                          fmt::format("unknown CopyData message type 0x{:02x} from the walsender ({} bytes)",
                                      static_cast<unsigned char>(frame[0]), frame.size()));
    }
}

std::string encode_standby_status(const StandbyStatusUpdate& update) {
    std::string out;
    out.reserve(34);
    out.push_back('r');
    put_u64(out, update.written.value());
    put_u64(out, update.flushed.value());
    put_u64(out, update.applied.value());
    put_u64(out, static_cast<std::uint64_t>(update.client_time));
    out.push_back(update.reply_requested ? '\1' : '\0');
    return out;
}

Result<StandbyStatusUpdate> decode_standby_status(std::string_view bytes) {
    if (bytes.empty() || bytes[0] != 'r') {
        return Status(ErrorCode::kPgoutputMalformed, "a standby status update starts with 'r'");
    }
    detail::ByteReader r(bytes.substr(1));
    StandbyStatusUpdate m;
    m.written = Lsn(r.u64("written lsn"));
    m.flushed = Lsn(r.u64("flushed lsn"));
    m.applied = Lsn(r.u64("applied lsn"));
    m.client_time = r.i64("client time");
    m.reply_requested = r.u8("reply requested") != 0;
    if (!r.failed() && !r.at_end()) {
        r.fail("end of message", fmt::format("{} unexpected trailing byte(s)", r.remaining()));
    }
    if (r.failed()) {
        return malformed("standby status update", bytes.size(), r);
    }
    return m;
}

}  // namespace sluice::protocol::pgoutput
