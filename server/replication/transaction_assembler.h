// Groups decoded pgoutput messages into whole source transactions (Begin … Commit) and keeps the
// relation cache that Relation messages update. Pure logic (no I/O), fed by the stream loop.
#pragma once

#include <optional>
#include <unordered_map>

#include "protocol/pgoutput/messages.h"
#include "protocol/status.h"
#include "server/replication/source_transaction.h"

namespace sluice::replication {

class TransactionAssembler {
public:
    // Transactions that end at or before `skip_through` were already made durable (a resumed
    // stream may repeat them) and are dropped.
    // A transaction with more than `max_chunk_changes` changes is handed on in chunks of that many
    // (SourceTransaction::complete is false on all but the last), so memory does not grow with it.
    explicit TransactionAssembler(protocol::Lsn skip_through = {}, std::size_t max_chunk_changes = 10000)
        : m_skip_through(skip_through), m_max_chunk_changes(max_chunk_changes) {}

    // Feeds one message in stream order. Returns a transaction when `message` completes one (a
    // Commit, or a non-transactional logical message outside a transaction), or a chunk of one. Errors: a change
    // outside Begin/Commit or of an unknown relation, a tuple that does not match its relation,
    // and protocol v2 stream messages (not assembled yet).
    [[nodiscard]] protocol::Result<std::optional<SourceTransaction>> add(protocol::pgoutput::Message message);

    [[nodiscard]] bool in_transaction() const { return m_current.has_value(); }
    [[nodiscard]] RelationPtr relation(protocol::pgoutput::Oid id) const;
    [[nodiscard]] std::size_t relation_count() const { return m_relations.size(); }

private:
    [[nodiscard]] protocol::Result<std::optional<SourceTransaction>> add_message(protocol::pgoutput::Message message);
    [[nodiscard]] protocol::Result<RelationPtr> change_relation(protocol::pgoutput::Oid id, const char* what) const;

    protocol::Lsn m_skip_through;
    std::size_t m_max_chunk_changes;
    std::optional<SourceTransaction> m_current;
    std::unordered_map<protocol::pgoutput::Oid, RelationPtr> m_relations;
    std::unordered_map<protocol::pgoutput::Oid, protocol::pgoutput::Type> m_types;
};

}  // namespace sluice::replication
