// CheckpointHub (see checkpoint_hub.h).
#include "server/sync/checkpoint_hub.h"

namespace sluice::sync {

CheckpointHub::Subscription& CheckpointHub::Subscription::operator=(Subscription&& other) noexcept {
    if (this != &other) {
        reset();
        m_hub = other.m_hub;
        m_id = other.m_id;
        other.m_hub = nullptr;
    }
    return *this;
}

void CheckpointHub::Subscription::reset() {
    if (m_hub != nullptr) {
        m_hub->unsubscribe(m_id);
        m_hub = nullptr;
    }
}

void CheckpointHub::publish(std::int64_t op_id) {
    std::lock_guard lock(m_mutex);
    if (op_id <= m_latest.load()) {
        return;
    }
    m_latest.store(op_id);
    for (auto& [id, callback] : m_subscribers) {
        callback(op_id);
    }
}

CheckpointHub::Subscription CheckpointHub::subscribe(Callback callback) {
    std::lock_guard lock(m_mutex);
    const auto id = m_next_id++;
    m_subscribers.emplace(id, std::move(callback));
    return Subscription(this, id);
}

std::size_t CheckpointHub::subscriber_count() const {
    std::lock_guard lock(m_mutex);
    return m_subscribers.size();
}

void CheckpointHub::unsubscribe(std::uint64_t id) {
    std::lock_guard lock(m_mutex);
    m_subscribers.erase(id);
}

}  // namespace sluice::sync
