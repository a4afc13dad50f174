// Publication and slot setup on the source (see replication_setup.h).
#include "server/replication/replication_setup.h"

#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "server/replication/wal_stream.h"

namespace sluice::replication {
namespace {

using protocol::ErrorCode;
using protocol::Lsn;
using protocol::Status;

std::string qualified(const std::pair<std::string, std::string>& t) {
    return quote_identifier(t.first) + "." + quote_identifier(t.second);
}

std::string display(const std::pair<std::string, std::string>& t) { return t.first + "." + t.second; }

}  // namespace

std::pair<std::string, std::string> split_table_name(const std::string& table) {
    const auto dot = table.find('.');
    if (dot == std::string::npos) {
        return {"public", table};
    }
    return {table.substr(0, dot), table.substr(dot + 1)};
}

Status ensure_publication(PgConnection& connection, const PublicationSpec& spec) {
    std::set<std::pair<std::string, std::string>> wanted;
    for (const auto& t : spec.tables) {
        auto parts = split_table_name(t);
        if (parts.first == kStorageSchema) {
            return {ErrorCode::kPublicationStorageSchema,
                    fmt::format("table {} is in Sluice's storage schema '{}' and must never be published (it would "
                                "replicate Sluice's own writes back into itself)",
                                t, kStorageSchema)};
        }
        wanted.insert(std::move(parts));
    }
    auto existing = connection.query("SELECT puballtables FROM pg_publication WHERE pubname = " +
                                      quote_literal(spec.name));
    if (!existing) {
        return existing.status();
    }
    const std::string pub = quote_identifier(spec.name);
    if (existing->empty()) {
        if (spec.mode == PublicationMode::kUserManaged) {
            return {ErrorCode::kPublicationSetupFailed,
                    fmt::format("publication '{}' does not exist; create it (CREATE PUBLICATION {} FOR TABLE …) or "
                                "let Sluice manage it",
                                spec.name, pub)};
        }
        std::string sql = "CREATE PUBLICATION " + pub;
        if (!wanted.empty()) {
            sql += " FOR TABLE ";
            bool first = true;
            for (const auto& t : wanted) {
                sql += (first ? "" : ", ") + qualified(t);
                first = false;
            }
        }
        if (auto r = connection.query(sql); !r) {
            return {ErrorCode::kPublicationSetupFailed,
                    fmt::format("cannot create publication '{}': {}; the source user must own the tables",
                                spec.name, r.status().message())};
        }
        return Status::ok();
    }
    auto rows = connection.query("SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = " +
                                 quote_literal(spec.name));
    if (!rows) {
        return rows.status();
    }
    std::set<std::pair<std::string, std::string>> published;
    for (const auto& row : *rows) {
        published.emplace(row[0].value_or(""), row[1].value_or(""));
    }
    for (const auto& t : published) {
        if (t.first == kStorageSchema) {
            return {ErrorCode::kPublicationStorageSchema,
                    fmt::format("publication '{}' publishes {}, a table of Sluice's storage schema; remove it with "
                                "ALTER PUBLICATION {} DROP TABLE {} (a FOR ALL TABLES publication cannot be used when "
                                "the storage is in the source database)",
                                spec.name, display(t), pub, qualified(t))};
        }
    }
    std::vector<std::pair<std::string, std::string>> missing;
    std::set_difference(wanted.begin(), wanted.end(), published.begin(), published.end(), std::back_inserter(missing));
    if (spec.mode == PublicationMode::kUserManaged) {
        if (!missing.empty()) {
            std::string names;
            for (const auto& t : missing) {
                names += (names.empty() ? "" : ", ") + qualified(t);
            }
            return {ErrorCode::kPublicationSetupFailed,
                    fmt::format("publication '{}' does not include {}; run ALTER PUBLICATION {} ADD TABLE {}",
                                spec.name, names, pub, names)};
        }
        return Status::ok();
    }
    if ((*existing)[0][0].value_or("f") == "t") {
        return Status::ok();  // FOR ALL TABLES already covers everything (and no storage table is in it)
    }
    std::vector<std::pair<std::string, std::string>> extra;
    std::set_difference(published.begin(), published.end(), wanted.begin(), wanted.end(), std::back_inserter(extra));
    for (const auto& t : missing) {
        if (auto r = connection.query(fmt::format("ALTER PUBLICATION {} ADD TABLE {}", pub, qualified(t))); !r) {
            return {ErrorCode::kPublicationSetupFailed,
                    fmt::format("cannot add {} to publication '{}': {}", display(t), spec.name, r.status().message())};
        }
    }
    for (const auto& t : extra) {
        if (auto r = connection.query(fmt::format("ALTER PUBLICATION {} DROP TABLE {}", pub, qualified(t))); !r) {
            return {ErrorCode::kPublicationSetupFailed, fmt::format("cannot drop {} from publication '{}': {}",
                                                                    display(t), spec.name, r.status().message())};
        }
    }
    return Status::ok();
}

protocol::Result<SlotInfo> ensure_slot(PgConnection& replication, const std::string& slot, SlotSnapshot snapshot) {
    if (!valid_slot_name(slot)) {
        return Status(ErrorCode::kSlotSetupFailed,
                      fmt::format("invalid replication slot name '{}': use 1-63 of a-z, 0-9 and _", slot));
    }
    auto rows = replication.query(
        "SELECT plugin, slot_type, database = current_database(), confirmed_flush_lsn, wal_status "
        "FROM pg_replication_slots WHERE slot_name = " +
        quote_literal(slot));
    if (!rows) {
        return Status(ErrorCode::kSlotSetupFailed, rows.status().message());
    }
    if (!rows->empty()) {
        const auto& row = (*rows)[0];
        if (row[1].value_or("") != "logical" || row[0].value_or("") != "pgoutput" || row[2].value_or("f") != "t") {
            return Status(ErrorCode::kSlotWrongPlugin,
                          fmt::format("slot '{}' exists but is a {} slot with plugin '{}'{}; drop it with SELECT "
                                      "pg_drop_replication_slot('{}') or choose another slot name",
                                      slot, row[1].value_or("?"), row[0].value_or(""),
                                      row[2].value_or("f") == "t" ? "" : " of another database", slot));
        }
        if (row[4].value_or("") == "lost") {
            return Status(ErrorCode::kSlotSetupFailed,
                          fmt::format("slot '{}' was invalidated by Postgres (wal_status = lost): the WAL it needed "
                                      "was removed; drop it and snapshot again",
                                      slot));
        }
        SlotInfo info;
        info.consistent_point = Lsn::parse(row[3].value_or("0/0")).value_or(Lsn());
        return info;
    }
    const auto command = fmt::format("CREATE_REPLICATION_SLOT {} LOGICAL pgoutput (SNAPSHOT '{}')", slot,
                                     snapshot == SlotSnapshot::kExport ? "export" : "nothing");
    auto created = replication.query(command);
    if (!created) {
        return Status(ErrorCode::kSlotSetupFailed,
                      fmt::format("cannot create replication slot '{}': {}", slot, created.status().message()));
    }
    if (created->size() != 1 || (*created)[0].size() < 4) {
        return Status(ErrorCode::kSlotSetupFailed, fmt::format("unexpected reply to '{}'", command));
    }
    SlotInfo info;
    info.created = true;
    const auto point = Lsn::parse((*created)[0][1].value_or(""));
    if (!point) {
        return Status(ErrorCode::kSlotSetupFailed,
                      fmt::format("unexpected consistent point '{}' from '{}'", (*created)[0][1].value_or(""), command));
    }
    info.consistent_point = *point;
    info.snapshot_name = (*created)[0][2].value_or("");
    return info;
}

}  // namespace sluice::replication
