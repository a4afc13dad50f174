// The bounded hand-off between the replication thread (producer) and the consumer that stores
// transactions (bucket storage), plus the consumer's report of what is durable. Bounded by count
// and by changes: the producer waits when it is full, so Postgres keeps the WAL instead of us
// growing memory. A transaction larger than the change bound is admitted only into an empty queue.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>

#include "protocol/lsn.h"
#include "server/replication/source_transaction.h"

namespace sluice::replication {

class TransactionQueue {
public:
    TransactionQueue(std::size_t max_transactions, std::size_t max_changes)
        : m_max_transactions(max_transactions), m_max_changes(max_changes) {}

    enum class PushResult { kPushed, kTimeout, kClosed };
    // Producer. Moves from `txn` only when it returns kPushed.
    [[nodiscard]] PushResult push(SourceTransaction& txn, std::chrono::milliseconds timeout);
    // Consumer. nullopt on timeout, or when closed and drained.
    [[nodiscard]] std::optional<SourceTransaction> pop(std::chrono::milliseconds timeout);
    // Either side: no more pushes; pop drains what is left, then returns nullopt at once.
    void close();
    [[nodiscard]] bool closed() const;
    [[nodiscard]] std::size_t size() const;

    // Consumer: every transaction with end_lsn <= `lsn` is durable. Never moves backwards.
    void mark_durable(protocol::Lsn lsn);
    // Producer: the LSN it may confirm to Postgres.
    [[nodiscard]] protocol::Lsn durable() const;

private:
    const std::size_t m_max_transactions;
    const std::size_t m_max_changes;
    // All below: touched by producer and consumer threads, under m_mutex.
    mutable std::mutex m_mutex;
    std::condition_variable m_changed;
    std::deque<SourceTransaction> m_items;
    std::size_t m_changes = 0;
    bool m_closed = false;
    protocol::Lsn m_durable;
};

}  // namespace sluice::replication
