// pgoutput message decoder (see decoder.h); field layouts follow the Postgres docs, "Logical
// Replication Message Formats".
#include "protocol/pgoutput/decoder.h"

#include <algorithm>
#include <cctype>
#include <limits>

#include <fmt/format.h>

#include "protocol/pgoutput/detail/byte_reader.h"

namespace sluice::protocol::pgoutput {
namespace {

using detail::ByteReader;

std::optional<Xid> read_stream_xid(ByteReader& r, const DecodeOptions& options) {
    if (!options.in_stream) {
        return std::nullopt;
    }
    return r.u32("xid");
}

Tuple read_tuple(ByteReader& r) {
    Tuple tuple;
    const auto count = r.i16("tuple column count");
    if (count < 0) {
        r.fail("tuple column count", fmt::format("negative count {}", count));
        return tuple;
    }
    // Each column takes at least one byte: never reserve more than the message could hold.
    tuple.reserve(std::min<std::size_t>(static_cast<std::size_t>(count), r.remaining()));
    for (int i = 0; i < count && !r.failed(); ++i) {
        Datum datum;
        const auto kind = r.u8("tuple column kind");
        switch (kind) {
            case 'n':
                datum.kind = DatumKind::kNull;
                break;
            case 'u':
                datum.kind = DatumKind::kUnchangedToast;
                break;
            case 't':
            case 'b': {
                datum.kind = kind == 't' ? DatumKind::kText : DatumKind::kBinary;
                const auto length = r.i32("tuple column length");
                if (length < 0) {
                    r.fail("tuple column length", fmt::format("negative length {}", length));
                    break;
                }
                datum.data = std::string(r.bytes(static_cast<std::size_t>(length), "tuple column value"));
                break;
            }
            default:
                if (!r.failed()) {
                    r.fail("tuple column kind", fmt::format("unknown kind byte 0x{:02x}", kind));
                }
                break;
        }
        tuple.push_back(std::move(datum));
    }
    return tuple;
}

// 'K' or 'O' followed by a tuple; `tag` has been read already.
bool is_old_tuple_tag(std::uint8_t tag) { return tag == 'K' || tag == 'O'; }

Relation read_relation(ByteReader& r, const DecodeOptions& options) {
    Relation rel;
    rel.xid = read_stream_xid(r, options);
    rel.id = r.u32("relation id");
    rel.schema = r.cstring("namespace");
    rel.name = r.cstring("relation name");
    const auto identity = r.u8("replica identity");
    switch (identity) {
        case 'd':
        case 'n':
        case 'f':
        case 'i':
            rel.identity = static_cast<ReplicaIdentity>(identity);
            break;
        default:
            if (!r.failed()) {
                r.fail("replica identity", fmt::format("unknown setting 0x{:02x}", identity));
            }
    }
    const auto count = r.i16("column count");
    if (count < 0) {
        r.fail("column count", fmt::format("negative count {}", count));
    }
    for (int i = 0; i < count && !r.failed(); ++i) {
        Column col;
        const auto flags = r.u8("column flags");
        col.is_key = (flags & 1U) != 0;
        col.name = r.cstring("column name");
        col.type_oid = r.u32("column type oid");
        col.type_modifier = r.i32("column type modifier");
        rel.columns.push_back(std::move(col));
    }
    return rel;
}

Message read_body(std::uint8_t tag, ByteReader& r, const DecodeOptions& options) {
    switch (tag) {
        case 'B': {
            Begin m;
            m.final_lsn = Lsn(r.u64("final lsn"));
            m.commit_time = r.i64("commit timestamp");
            m.xid = r.u32("xid");
            return m;
        }
        case 'C': {
            Commit m;
            m.flags = r.u8("flags");
            m.commit_lsn = Lsn(r.u64("commit lsn"));
            m.end_lsn = Lsn(r.u64("end lsn"));
            m.commit_time = r.i64("commit timestamp");
            return m;
        }
        case 'O': {
            Origin m;
            m.commit_lsn = Lsn(r.u64("origin commit lsn"));
            m.name = r.cstring("origin name");
            return m;
        }
        case 'R':
            return read_relation(r, options);
        case 'Y': {
            Type m;
            m.xid = read_stream_xid(r, options);
            m.oid = r.u32("type oid");
            m.schema = r.cstring("type namespace");
            m.name = r.cstring("type name");
            return m;
        }
        case 'I': {
            Insert m;
            m.xid = read_stream_xid(r, options);
            m.relation_id = r.u32("relation id");
            const auto n = r.u8("new tuple tag");
            if (n != 'N' && !r.failed()) {
                r.fail("new tuple tag", fmt::format("expected 'N', got 0x{:02x}", n));
            }
            m.new_tuple = read_tuple(r);
            return m;
        }
        case 'U': {
            Update m;
            m.xid = read_stream_xid(r, options);
            m.relation_id = r.u32("relation id");
            auto t = r.u8("tuple tag");
            if (is_old_tuple_tag(t)) {
                m.old_kind = static_cast<OldTupleKind>(t);
                m.old_tuple = read_tuple(r);
                t = r.u8("new tuple tag");
            }
            if (t != 'N' && !r.failed()) {
                r.fail("new tuple tag", fmt::format("expected 'K', 'O' or 'N', got 0x{:02x}", t));
            }
            m.new_tuple = read_tuple(r);
            return m;
        }
        case 'D': {
            Delete m;
            m.xid = read_stream_xid(r, options);
            m.relation_id = r.u32("relation id");
            const auto t = r.u8("old tuple tag");
            if (is_old_tuple_tag(t)) {
                m.old_kind = static_cast<OldTupleKind>(t);
            } else if (!r.failed()) {
                r.fail("old tuple tag", fmt::format("expected 'K' or 'O', got 0x{:02x}", t));
            }
            m.old_tuple = read_tuple(r);
            return m;
        }
        case 'T': {
            Truncate m;
            m.xid = read_stream_xid(r, options);
            const auto count = r.i32("relation count");
            m.options = r.u8("options");
            if (count < 0 || static_cast<std::size_t>(count) > r.remaining() / 4) {
                if (!r.failed()) {
                    r.fail("relation count", fmt::format("{} relation ids do not fit in the {} bytes left", count,
                                                         r.remaining()));
                }
                return m;
            }
            m.relation_ids.reserve(static_cast<std::size_t>(count));
            for (int i = 0; i < count; ++i) {
                m.relation_ids.push_back(r.u32("relation id"));
            }
            return m;
        }
        case 'M': {
            LogicalMessage m;
            m.xid = read_stream_xid(r, options);
            const auto flags = r.u8("flags");
            m.transactional = (flags & 1U) != 0;
            m.lsn = Lsn(r.u64("message lsn"));
            m.prefix = r.cstring("prefix");
            const auto length = r.i32("content length");
            if (length < 0 && !r.failed()) {
                r.fail("content length", fmt::format("negative length {}", length));
                return m;
            }
            m.content = std::string(r.bytes(static_cast<std::size_t>(length), "content"));
            return m;
        }
        case 'S': {
            StreamStart m;
            m.xid = r.u32("xid");
            m.first_segment = r.u8("first segment") == 1;
            return m;
        }
        case 'E':
            return StreamStop{};
        case 'c': {
            StreamCommit m;
            m.xid = r.u32("xid");
            m.flags = r.u8("flags");
            m.commit_lsn = Lsn(r.u64("commit lsn"));
            m.end_lsn = Lsn(r.u64("end lsn"));
            m.commit_time = r.i64("commit timestamp");
            return m;
        }
        case 'A': {
            StreamAbort m;
            m.xid = r.u32("xid");
            m.subxact_xid = r.u32("subtransaction xid");
            return m;
        }
        default:
            return StreamStop{};  // not reached: the caller checks the tag first
    }
}

const char* tag_name(std::uint8_t tag) {
    switch (tag) {
        case 'B': return "Begin";
        case 'C': return "Commit";
        case 'O': return "Origin";
        case 'R': return "Relation";
        case 'Y': return "Type";
        case 'I': return "Insert";
        case 'U': return "Update";
        case 'D': return "Delete";
        case 'T': return "Truncate";
        case 'M': return "Message";
        case 'S': return "Stream Start";
        case 'E': return "Stream Stop";
        case 'c': return "Stream Commit";
        case 'A': return "Stream Abort";
        default: return nullptr;
    }
}

}  // namespace

Result<Message> decode_message(std::string_view bytes, DecodeOptions options) {
    if (bytes.empty()) {
        return Status(ErrorCode::kPgoutputMalformed, "empty pgoutput message");
    }
    const auto tag = static_cast<std::uint8_t>(bytes[0]);
    const char* name = tag_name(tag);
    if (name == nullptr) {
        return Status(ErrorCode::kPgoutputUnsupported,
                      fmt::format("unsupported pgoutput message type 0x{:02x} ('{}'), {} bytes; Sluice speaks "
                                  "protocol versions 1 and 2 without two-phase commit",
                                  tag, std::isprint(tag) ? static_cast<char>(tag) : '?', bytes.size()));
    }
    ByteReader r(bytes.substr(1));
    auto message = read_body(tag, r, options);
    if (!r.failed() && !r.at_end()) {
        r.fail("end of message", fmt::format("{} unexpected trailing byte(s)", r.remaining()));
    }
    if (r.failed()) {
        return Status(ErrorCode::kPgoutputMalformed,
                      fmt::format("malformed pgoutput {} message ({} bytes): {} at byte {}: {}", name, bytes.size(),
                                  r.failed_field(), r.failure_position() + 1, r.failure_reason()));
    }
    return message;
}

Result<Message> Decoder::decode(std::string_view bytes) {
    auto result = decode_message(bytes, {m_in_stream});
    if (result.is_ok()) {
        if (std::holds_alternative<StreamStart>(result.value())) {
            m_in_stream = true;
        } else if (std::holds_alternative<StreamStop>(result.value())) {
            m_in_stream = false;
        }
    }
    return result;
}

const char* message_name(const Message& message) {
    return std::visit(
        [](const auto& m) -> const char* {
            using T = std::decay_t<decltype(m)>;
            if constexpr (std::is_same_v<T, Begin>) return "Begin";
            else if constexpr (std::is_same_v<T, Commit>) return "Commit";
            else if constexpr (std::is_same_v<T, Origin>) return "Origin";
            else if constexpr (std::is_same_v<T, Relation>) return "Relation";
            else if constexpr (std::is_same_v<T, Type>) return "Type";
            else if constexpr (std::is_same_v<T, Insert>) return "Insert";
            else if constexpr (std::is_same_v<T, Update>) return "Update";
            else if constexpr (std::is_same_v<T, Delete>) return "Delete";
            else if constexpr (std::is_same_v<T, Truncate>) return "Truncate";
            else if constexpr (std::is_same_v<T, LogicalMessage>) return "Message";
            else if constexpr (std::is_same_v<T, StreamStart>) return "Stream Start";
            else if constexpr (std::is_same_v<T, StreamStop>) return "Stream Stop";
            else if constexpr (std::is_same_v<T, StreamCommit>) return "Stream Commit";
            else return "Stream Abort";
        },
        message);
}

}  // namespace sluice::protocol::pgoutput
