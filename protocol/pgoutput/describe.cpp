// Text renderings of messages (see describe.h).
#include "protocol/pgoutput/describe.h"

#include <fmt/format.h>

namespace sluice::protocol::pgoutput {
namespace {

std::string xid_prefix(const std::optional<Xid>& xid) { return xid ? fmt::format(" xid={}", *xid) : std::string(); }

std::string describe_tuple(const Tuple& tuple) {
    std::string out = "[";
    for (std::size_t i = 0; i < tuple.size(); ++i) {
        if (i > 0) {
            out += ',';
        }
        out += describe(tuple[i]);
    }
    out += ']';
    return out;
}

// Quoted and escaped; long texts are cut to their first 100 bytes plus a count of the rest.
std::string quoted(std::string_view text) {
    constexpr std::size_t kShown = 100;
    const std::size_t cut = text.size() > kShown + 20 ? text.size() - kShown : 0;
    if (cut > 0) {
        text = text.substr(0, kShown);
    }
    std::string out = "'";
    for (const char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '\'' || c == '\\') {
            out += '\\';
            out += c;
        } else if (u < 0x20 || u == 0x7F) {
            out += fmt::format("\\x{:02x}", u);
        } else {
            out += c;
        }
    }
    out += '\'';
    if (cut > 0) {
        out += fmt::format("…(+{} bytes)", cut);
    }
    return out;
}

const char* old_kind_name(OldTupleKind kind) {
    switch (kind) {
        case OldTupleKind::kKey: return "key";
        case OldTupleKind::kFull: return "old";
        case OldTupleKind::kNone: break;
    }
    return "none";
}

}  // namespace

std::string to_hex(std::string_view bytes) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (const char c : bytes) {
        const auto u = static_cast<unsigned char>(c);
        out.push_back(kHex[u >> 4U]);
        out.push_back(kHex[u & 0xFU]);
    }
    return out;
}

std::optional<std::string> from_hex(std::string_view hex) {
    if (hex.size() % 2 != 0) {
        return std::nullopt;
    }
    auto digit = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    std::string out;
    out.reserve(hex.size() / 2);
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        const int hi = digit(hex[i]);
        const int lo = digit(hex[i + 1]);
        if (hi < 0 || lo < 0) {
            return std::nullopt;
        }
        out.push_back(static_cast<char>(hi * 16 + lo));
    }
    return out;
}

std::string describe(const Datum& datum) {
    switch (datum.kind) {
        case DatumKind::kNull: return "n";
        case DatumKind::kUnchangedToast: return "u";
        case DatumKind::kText: return "t:" + quoted(datum.data);
        case DatumKind::kBinary: return "b:" + to_hex(datum.data);
    }
    return "?";
}

std::string describe(const Message& message) {
    return std::visit(
        [](const auto& m) -> std::string {
            using T = std::decay_t<decltype(m)>;
            if constexpr (std::is_same_v<T, Begin>) {
                return fmt::format("Begin final_lsn={} xid={}", m.final_lsn.to_string(), m.xid);
            } else if constexpr (std::is_same_v<T, Commit>) {
                return fmt::format("Commit flags={} commit_lsn={} end_lsn={}", m.flags, m.commit_lsn.to_string(),
                                   m.end_lsn.to_string());
            } else if constexpr (std::is_same_v<T, Origin>) {
                return fmt::format("Origin lsn={} name={}", m.commit_lsn.to_string(), quoted(m.name));
            } else if constexpr (std::is_same_v<T, Relation>) {
                std::string cols;
                for (const auto& c : m.columns) {
                    cols += fmt::format(" {}{}:{}:{}", c.is_key ? "*" : "", c.name, c.type_oid, c.type_modifier);
                }
                return fmt::format("Relation{} id={} {}.{} identity={}{}", xid_prefix(m.xid), m.id,
                                   m.schema.empty() ? "pg_catalog" : m.schema, m.name, static_cast<char>(m.identity),
                                   cols);
            } else if constexpr (std::is_same_v<T, Type>) {
                return fmt::format("Type{} oid={} {}.{}", xid_prefix(m.xid), m.oid, m.schema, m.name);
            } else if constexpr (std::is_same_v<T, Insert>) {
                return fmt::format("Insert{} rel={} new={}", xid_prefix(m.xid), m.relation_id,
                                   describe_tuple(m.new_tuple));
            } else if constexpr (std::is_same_v<T, Update>) {
                std::string old;
                if (m.old_kind != OldTupleKind::kNone) {
                    old = fmt::format(" {}={}", old_kind_name(m.old_kind), describe_tuple(m.old_tuple));
                }
                return fmt::format("Update{} rel={}{} new={}", xid_prefix(m.xid), m.relation_id, old,
                                   describe_tuple(m.new_tuple));
            } else if constexpr (std::is_same_v<T, Delete>) {
                return fmt::format("Delete{} rel={} {}={}", xid_prefix(m.xid), m.relation_id, old_kind_name(m.old_kind),
                                   describe_tuple(m.old_tuple));
            } else if constexpr (std::is_same_v<T, Truncate>) {
                std::string ids;
                for (const auto id : m.relation_ids) {
                    ids += fmt::format("{}{}", ids.empty() ? "" : ",", id);
                }
                return fmt::format("Truncate{} options={} rels={}", xid_prefix(m.xid), m.options, ids);
            } else if constexpr (std::is_same_v<T, LogicalMessage>) {
                return fmt::format("Message{} transactional={} lsn={} prefix={} content={}", xid_prefix(m.xid),
                                   m.transactional ? 1 : 0, m.lsn.to_string(), quoted(m.prefix), quoted(m.content));
            } else if constexpr (std::is_same_v<T, StreamStart>) {
                return fmt::format("StreamStart xid={} first={}", m.xid, m.first_segment ? 1 : 0);
            } else if constexpr (std::is_same_v<T, StreamStop>) {
                return "StreamStop";
            } else if constexpr (std::is_same_v<T, StreamCommit>) {
                return fmt::format("StreamCommit xid={} flags={} commit_lsn={} end_lsn={}", m.xid, m.flags,
                                   m.commit_lsn.to_string(), m.end_lsn.to_string());
            } else {
                return fmt::format("StreamAbort xid={} subxact={}", m.xid, m.subxact_xid);
            }
        },
        message);
}

std::string describe(const CopyDataMessage& frame) {
    if (const auto* w = std::get_if<XLogData>(&frame)) {
        return fmt::format("w start={} end={}", w->wal_start.to_string(), w->wal_end.to_string());
    }
    const auto& k = std::get<PrimaryKeepalive>(frame);
    return fmt::format("k end={} reply={}", k.wal_end.to_string(), k.reply_requested ? 1 : 0);
}

}  // namespace sluice::protocol::pgoutput
