// Start-up checks of the source Postgres (see preflight.h).
#include "server/replication/preflight.h"

#include <fmt/format.h>

#include "server/replication/pg_connection.h"

namespace sluice::replication {
namespace {

using protocol::ErrorCode;
using protocol::Status;

// Quotes a SQL string literal for the simple-query protocol.
std::string literal(std::string_view text) {
    std::string out = "'";
    for (const char c : text) {
        out += c;
        if (c == '\'') {
            out += '\'';
        }
    }
    out += '\'';
    return out;
}

const std::string& field(const Rows& rows, std::size_t row, std::size_t col) {
    static const std::string kEmpty;
    if (row >= rows.size() || col >= rows[row].size() || !rows[row][col]) {
        return kEmpty;
    }
    return *rows[row][col];
}

}  // namespace

protocol::Result<SourceInfo> preflight(const PreflightOptions& options) {
    auto opened = PgConnection::open(options.conninfo, ConnectionKind::kRegular, options.connect_timeout_seconds);
    if (!opened) {
        return opened.status();
    }
    PgConnection& sql = opened.value();
    SourceInfo info;
    info.server_version = sql.server_version();

    auto settings = sql.query(
        "SELECT current_setting('wal_level'), current_user, "
        "       (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user), "
        "       current_setting('max_replication_slots')::int, "
        "       (SELECT count(*) FROM pg_replication_slots), "
        "       (SELECT string_agg(slot_name || ' (' || slot_type || CASE WHEN active THEN ', active' ELSE '' END "
        "               || ')', ', ' ORDER BY slot_name) FROM pg_replication_slots), "
        "       current_setting('max_wal_senders')::int, "
        "       (SELECT count(*) FROM pg_stat_replication)");
    if (!settings) {
        return settings.status();
    }
    const auto& rows = settings.value();
    const auto& wal_level = field(rows, 0, 0);
    const auto& user = field(rows, 0, 1);
    if (wal_level != "logical") {
        return Status(ErrorCode::kSourceWalLevel,
                      fmt::format("the source Postgres has wal_level = '{}', but logical replication needs "
                                  "'logical': set wal_level = logical in postgresql.conf (or run ALTER SYSTEM SET "
                                  "wal_level = logical) and restart Postgres; the setting takes effect only after a "
                                  "restart",
                                  wal_level));
    }
    if (field(rows, 0, 2) != "t") {
        return Status(ErrorCode::kSourceNoReplicationPrivilege,
                      fmt::format("the source user '{}' may not replicate: run ALTER ROLE \"{}\" WITH REPLICATION as "
                                  "a superuser",
                                  user, user));
    }

    auto slot = sql.query("SELECT plugin FROM pg_replication_slots WHERE slot_name = " + literal(options.slot_name));
    if (!slot) {
        return slot.status();
    }
    info.slot_exists = !slot.value().empty();
    if (info.slot_exists && field(slot.value(), 0, 0) != "pgoutput") {
        return Status(ErrorCode::kSourceQueryFailed,
                      fmt::format("replication slot '{}' exists but is not a pgoutput logical slot; drop it "
                                  "(SELECT pg_drop_replication_slot('{}')) or set source.slot to another name",
                                  options.slot_name, options.slot_name));
    }
    const int max_slots = std::stoi(field(rows, 0, 3));
    const int used_slots = std::stoi(field(rows, 0, 4));
    if (!info.slot_exists && used_slots >= max_slots) {
        return Status(ErrorCode::kSourceNoFreeSlots,
                      fmt::format("the source Postgres has no free replication slot for '{}': all {} of "
                                  "max_replication_slots are in use ({}); drop unused ones with SELECT "
                                  "pg_drop_replication_slot('<name>'), or raise max_replication_slots and restart "
                                  "Postgres",
                                  options.slot_name, max_slots, field(rows, 0, 5)));
    }
    const int max_senders = std::stoi(field(rows, 0, 6));
    const int used_senders = std::stoi(field(rows, 0, 7));
    if (used_senders >= max_senders) {
        return Status(ErrorCode::kSourceNoFreeWalSenders,
                      fmt::format("the source Postgres has no free WAL sender: all {} of max_wal_senders are in use; "
                                  "raise max_wal_senders and restart Postgres, or stop other replication clients",
                                  max_senders));
    }

    // A replication connection proves pg_hba.conf allows it and that a WAL sender can start.
    auto replication =
        PgConnection::open(options.conninfo, ConnectionKind::kReplication, options.connect_timeout_seconds);
    if (!replication) {
        return replication.status();
    }
    auto identify = replication.value().query("IDENTIFY_SYSTEM");
    if (!identify) {
        return identify.status();
    }
    info.system_id = field(identify.value(), 0, 0);
    info.current_lsn = protocol::Lsn::parse(field(identify.value(), 0, 2)).value_or(protocol::Lsn{});
    return info;
}

}  // namespace sluice::replication
