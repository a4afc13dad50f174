// Begin … Commit grouping and the relation cache (see transaction_assembler.h).
#include "server/replication/transaction_assembler.h"

#include <fmt/format.h>

namespace sluice::replication {

namespace pg = protocol::pgoutput;
using protocol::ErrorCode;
using protocol::Status;

RelationPtr TransactionAssembler::relation(pg::Oid id) const {
    const auto it = m_relations.find(id);
    return it == m_relations.end() ? nullptr : it->second;
}

protocol::Result<RelationPtr> TransactionAssembler::change_relation(pg::Oid id, const char* what) const {
    if (!m_current) {
        return Status(ErrorCode::kPgoutputOutOfOrder, fmt::format("{} of relation {} outside a transaction", what, id));
    }
    auto rel = relation(id);
    if (!rel) {
        return Status(ErrorCode::kPgoutputUnknownRelation,
                      fmt::format("{} of relation {} before any Relation message describing it", what, id));
    }
    return rel;
}

namespace {

Status check_tuple(const pg::Relation& rel, const pg::Tuple& tuple, const char* what) {
    if (tuple.size() != rel.columns.size()) {
        return {ErrorCode::kPgoutputMalformed,
                fmt::format("{} of {}.{} has {} values for {} columns", what, rel.schema, rel.name, tuple.size(),
                            rel.columns.size())};
    }
    return Status::ok();
}

}  // namespace

protocol::Result<std::optional<SourceTransaction>> TransactionAssembler::add(pg::Message message) {
    auto result = add_message(std::move(message));
    if (!result || result.value() || !m_current || m_current->changes.size() < m_max_chunk_changes) {
        return result;
    }
    // A large transaction: hand on what we have; the rest (and its commit) follows in later chunks.
    SourceTransaction chunk;
    chunk.xid = m_current->xid;
    chunk.commit_lsn = m_current->commit_lsn;
    chunk.commit_time = m_current->commit_time;
    chunk.origin = m_current->origin;
    chunk.changes = std::move(m_current->changes);
    chunk.complete = false;
    m_current->changes.clear();
    if (chunk.commit_lsn < m_skip_through) {
        return std::optional<SourceTransaction>();  // already durable: the resumed stream repeats it
    }
    return std::optional<SourceTransaction>(std::move(chunk));
}

protocol::Result<std::optional<SourceTransaction>> TransactionAssembler::add_message(pg::Message message) {
    using Out = std::optional<SourceTransaction>;
    if (auto* begin = std::get_if<pg::Begin>(&message)) {
        if (m_current) {
            return Status(ErrorCode::kPgoutputOutOfOrder,
                          fmt::format("Begin of xid {} inside transaction {}", begin->xid, m_current->xid));
        }
        m_current.emplace();
        m_current->xid = begin->xid;
        m_current->commit_lsn = begin->final_lsn;
        m_current->commit_time = begin->commit_time;
        return Out();
    }
    if (auto* commit = std::get_if<pg::Commit>(&message)) {
        if (!m_current) {
            return Status(ErrorCode::kPgoutputOutOfOrder, "Commit outside a transaction");
        }
        SourceTransaction done = std::move(*m_current);
        m_current.reset();
        done.commit_lsn = commit->commit_lsn;
        done.end_lsn = commit->end_lsn;
        done.commit_time = commit->commit_time;
        if (done.end_lsn <= m_skip_through) {
            return Out();
        }
        return Out(std::move(done));
    }
    if (auto* rel = std::get_if<pg::Relation>(&message)) {
        m_relations[rel->id] = std::make_shared<const pg::Relation>(std::move(*rel));
        return Out();
    }
    if (auto* type = std::get_if<pg::Type>(&message)) {
        m_types[type->oid] = std::move(*type);
        return Out();
    }
    if (auto* origin = std::get_if<pg::Origin>(&message)) {
        if (m_current) {
            m_current->origin = std::move(origin->name);
        }
        return Out();
    }
    if (auto* ins = std::get_if<pg::Insert>(&message)) {
        auto rel = change_relation(ins->relation_id, "Insert");
        if (!rel) {
            return rel.status();
        }
        if (auto s = check_tuple(**rel, ins->new_tuple, "Insert"); !s) {
            return s;
        }
        m_current->changes.emplace_back(
            RowChange{RowChange::Kind::kInsert, *rel, pg::OldTupleKind::kNone, {}, std::move(ins->new_tuple)});
        return Out();
    }
    if (auto* upd = std::get_if<pg::Update>(&message)) {
        auto rel = change_relation(upd->relation_id, "Update");
        if (!rel) {
            return rel.status();
        }
        if (auto s = check_tuple(**rel, upd->new_tuple, "Update"); !s) {
            return s;
        }
        if (upd->old_kind != pg::OldTupleKind::kNone) {
            if (auto s = check_tuple(**rel, upd->old_tuple, "Update (old row)"); !s) {
                return s;
            }
        }
        m_current->changes.emplace_back(RowChange{RowChange::Kind::kUpdate, *rel, upd->old_kind,
                                                  std::move(upd->old_tuple), std::move(upd->new_tuple)});
        return Out();
    }
    if (auto* del = std::get_if<pg::Delete>(&message)) {
        auto rel = change_relation(del->relation_id, "Delete");
        if (!rel) {
            return rel.status();
        }
        if (auto s = check_tuple(**rel, del->old_tuple, "Delete"); !s) {
            return s;
        }
        m_current->changes.emplace_back(
            RowChange{RowChange::Kind::kDelete, *rel, del->old_kind, std::move(del->old_tuple), {}});
        return Out();
    }
    if (auto* trunc = std::get_if<pg::Truncate>(&message)) {
        TruncateChange change;
        change.options = trunc->options;
        for (const auto id : trunc->relation_ids) {
            auto rel = change_relation(id, "Truncate");
            if (!rel) {
                return rel.status();
            }
            change.relations.push_back(*rel);
        }
        m_current->changes.emplace_back(std::move(change));
        return Out();
    }
    if (auto* msg = std::get_if<pg::LogicalMessage>(&message)) {
        if (m_current) {
            m_current->changes.emplace_back(std::move(*msg));
            return Out();
        }
        if (msg->transactional) {
            return Status(ErrorCode::kPgoutputOutOfOrder, "a transactional logical message outside a transaction");
        }
        // A non-transactional message stands alone; confirming its LSN is safe once it is durable.
        SourceTransaction alone;
        alone.commit_lsn = msg->lsn;
        alone.end_lsn = msg->lsn;
        alone.changes.emplace_back(std::move(*msg));
        if (alone.end_lsn <= m_skip_through) {
            return Out();
        }
        return Out(std::move(alone));
    }
    return Status(ErrorCode::kPgoutputUnsupported,
                  fmt::format("pgoutput {} messages (protocol v2 streaming) are not assembled yet; stream with "
                              "proto_version 1",
                              pg::message_name(message)));
}

}  // namespace sluice::replication
