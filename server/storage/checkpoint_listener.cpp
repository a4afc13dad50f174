// CheckpointListener (see checkpoint_listener.h): libpqxx LISTEN loop on its own thread.
#include "server/storage/checkpoint_listener.h"

#include <atomic>
#include <charconv>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <pqxx/pqxx>

#include "server/core/log.h"

namespace sluice::storage {
namespace {

const core::Logger kLog("storage", "listener=sluice_checkpoint");

class Receiver final : public pqxx::notification_receiver {
public:
    Receiver(pqxx::connection_base& c, const CheckpointListener::Callback& callback)
        : pqxx::notification_receiver(c, "sluice_checkpoint"), m_callback(callback) {}
    void operator()(const std::string& payload, int /*backend_pid*/) override {
        std::int64_t op_id = 0;
        auto [ptr, ec] = std::from_chars(payload.data(), payload.data() + payload.size(), op_id);
        if (ec == std::errc() && ptr == payload.data() + payload.size()) {
            m_callback(op_id);
        }
    }

private:
    const CheckpointListener::Callback& m_callback;
};

std::int64_t read_latest(pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    auto row = tx.exec1("SELECT COALESCE(max(op_id), 0) FROM sluice.checkpoints");
    return row[0].as<std::int64_t>();
}

}  // namespace

struct CheckpointListener::Impl {
    std::string conninfo;
    Callback callback;
    std::chrono::milliseconds poll_interval;
    std::atomic<bool> stop{false};       // set by the owner, read by the thread
    std::atomic<bool> connected{false};  // set by the thread, read by anyone
    std::mutex mutex;                    // with wake: interrupts the reconnect backoff
    std::condition_variable wake;
    std::thread thread;

    void run() {
        auto backoff = std::chrono::milliseconds(200);
        while (!stop.load()) {
            try {
                pqxx::connection c(conninfo);
                Receiver receiver(c, callback);
                c.get_notifs();  // the LISTEN is sent by the receiver's constructor
                connected = true;
                backoff = std::chrono::milliseconds(200);
                callback(read_latest(c));
                auto next_poll = std::chrono::steady_clock::now() + poll_interval;
                while (!stop.load()) {
                    c.await_notification(0, 200'000);  // wakes at least every 200 ms to see `stop`
                    if (std::chrono::steady_clock::now() >= next_poll) {
                        callback(read_latest(c));
                        next_poll = std::chrono::steady_clock::now() + poll_interval;
                    }
                }
                connected = false;
                return;
            } catch (const std::exception& e) {
                connected = false;
                kLog.warn("checkpoint listener failed: {}; reconnecting in {} ms", e.what(), backoff.count());
            }
            std::unique_lock lock(mutex);
            wake.wait_for(lock, backoff, [this] { return stop.load(); });
            backoff = std::min(backoff * 2, std::chrono::milliseconds(10'000));
        }
    }
};

CheckpointListener::CheckpointListener(std::string conninfo, Callback on_checkpoint,
                                       std::chrono::milliseconds poll_interval)
    : m_impl(std::make_unique<Impl>()) {
    m_impl->conninfo = std::move(conninfo);
    m_impl->callback = std::move(on_checkpoint);
    m_impl->poll_interval = poll_interval;
    m_impl->thread = std::thread([impl = m_impl.get()] { impl->run(); });
}

CheckpointListener::~CheckpointListener() {
    {
        std::lock_guard lock(m_impl->mutex);
        m_impl->stop = true;
    }
    m_impl->wake.notify_all();
    m_impl->thread.join();
}

bool CheckpointListener::connected() const { return m_impl->connected.load(); }

}  // namespace sluice::storage
