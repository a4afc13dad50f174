// CheckpointHub: in-process fan-out of "storage has a new checkpoint" to every live session. The
// checkpoint listener (server/storage/checkpoint_listener.h) publishes; sessions subscribe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>

namespace sluice::sync {

class CheckpointHub {
public:
    using Callback = std::function<void(std::int64_t op_id)>;

    // Unsubscribes when destroyed. After the destructor returns, the callback is never called again.
    class Subscription {
    public:
        Subscription() = default;
        Subscription(CheckpointHub* hub, std::uint64_t id) : m_hub(hub), m_id(id) {}
        Subscription(Subscription&& other) noexcept : m_hub(other.m_hub), m_id(other.m_id) { other.m_hub = nullptr; }
        Subscription& operator=(Subscription&& other) noexcept;
        Subscription(const Subscription&) = delete;
        Subscription& operator=(const Subscription&) = delete;
        ~Subscription() { reset(); }
        void reset();

    private:
        CheckpointHub* m_hub = nullptr;
        std::uint64_t m_id = 0;
    };

    // Raises the latest checkpoint to op_id (never lowers it) and, when it rose, calls every
    // subscriber (under the hub's lock: callbacks must be short and must not call the hub).
    void publish(std::int64_t op_id);
    // The newest checkpoint published so far (0: none yet).
    [[nodiscard]] std::int64_t latest() const { return m_latest.load(); }
    [[nodiscard]] Subscription subscribe(Callback callback);
    [[nodiscard]] std::size_t subscriber_count() const;

private:
    void unsubscribe(std::uint64_t id);

    std::atomic<std::int64_t> m_latest{0};  // written by publish (listener thread), read anywhere
    mutable std::mutex m_mutex;             // guards m_subscribers and m_next_id
    std::map<std::uint64_t, Callback> m_subscribers;
    std::uint64_t m_next_id = 1;
};

}  // namespace sluice::sync
