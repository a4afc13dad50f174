// Bounded producer/consumer hand-off of source transactions (see transaction_queue.h).
#include "server/replication/transaction_queue.h"

namespace sluice::replication {

TransactionQueue::PushResult TransactionQueue::push(SourceTransaction& txn, std::chrono::milliseconds timeout) {
    std::unique_lock lock(m_mutex);
    const auto fits = [&] {
        return m_closed || m_items.empty() ||
               (m_items.size() < m_max_transactions && m_changes + txn.changes.size() <= m_max_changes);
    };
    if (!m_changed.wait_for(lock, timeout, fits)) {
        return PushResult::kTimeout;
    }
    if (m_closed) {
        return PushResult::kClosed;
    }
    m_changes += txn.changes.size();
    m_items.push_back(std::move(txn));
    m_changed.notify_all();
    return PushResult::kPushed;
}

std::optional<SourceTransaction> TransactionQueue::pop(std::chrono::milliseconds timeout) {
    std::unique_lock lock(m_mutex);
    if (!m_changed.wait_for(lock, timeout, [&] { return m_closed || !m_items.empty(); }) || m_items.empty()) {
        return std::nullopt;
    }
    SourceTransaction out = std::move(m_items.front());
    m_items.pop_front();
    m_changes -= out.changes.size();
    m_changed.notify_all();
    return out;
}

void TransactionQueue::close() {
    std::lock_guard lock(m_mutex);
    m_closed = true;
    m_changed.notify_all();
}

bool TransactionQueue::closed() const {
    std::lock_guard lock(m_mutex);
    return m_closed;
}

std::size_t TransactionQueue::size() const {
    std::lock_guard lock(m_mutex);
    return m_items.size();
}

void TransactionQueue::mark_durable(protocol::Lsn lsn) {
    std::lock_guard lock(m_mutex);
    if (lsn > m_durable) {
        m_durable = lsn;
    }
}

protocol::Lsn TransactionQueue::durable() const {
    std::lock_guard lock(m_mutex);
    return m_durable;
}

}  // namespace sluice::replication
