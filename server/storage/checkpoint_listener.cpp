// CheckpointListener (see checkpoint_listener.h): libpqxx LISTEN loop on its own thread.
#include "server/storage/checkpoint_listener.h"

#include <atomic>
#include <utility>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <pqxx/pqxx>

#include "server/core/log.h"

namespace sluice::storage {
namespace {

const core::Logger kLog("storage", "listener=sluice_checkpoint");

// A notification only says "some version has a new checkpoint": which one clients may see is read
// after it (one short query per notification and process, not per session).
class Receiver final : public pqxx::notification_receiver {
public:
    explicit Receiver(pqxx::connection_base& c) : pqxx::notification_receiver(c, "sluice_checkpoint") {}
    void operator()(const std::string& /*payload*/, int /*backend_pid*/) override { m_notified = true; }
    bool take() { return std::exchange(m_notified, false); }

private:
    bool m_notified = false;
};

// Reads the active version's newest checkpoint; `known_version` is the last one reported (its rules
// text is not read again).
ActiveCheckpoint read_latest(pqxx::connection& c, std::int64_t known_version) {
    pqxx::nontransaction tx(c);
    auto r = tx.exec_params(
        "SELECT v.id, COALESCE(v.activated_op_id, 0), CASE WHEN v.id <> $1 THEN v.content END, "
        "       COALESCE((SELECT max(op_id) FROM sluice.checkpoints WHERE rules_version = v.id), 0) "
        "FROM sluice.rules_versions v WHERE v.state = 'active'",
        known_version);
    ActiveCheckpoint out;
    if (r.empty()) {  // no recorded version: a writer used without the version manager
        out.op_id = tx.exec1("SELECT COALESCE(max(op_id), 0) FROM sluice.checkpoints WHERE rules_version = 1")[0]
                        .as<std::int64_t>();
        return out;
    }
    out.rules_version = r[0][0].as<std::int64_t>();
    out.rules_from_op_id = r[0][1].as<std::int64_t>();
    out.rules_content = r[0][2].get<std::string>();
    out.op_id = r[0][3].as<std::int64_t>();
    return out;
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
    std::int64_t known_version = -1;  // the rules version last reported; the thread's own

    void report(const ActiveCheckpoint& checkpoint) {
        if (checkpoint.rules_content) {
            known_version = checkpoint.rules_version;
        }
        callback(checkpoint);
    }

    void run() {
        auto backoff = std::chrono::milliseconds(200);
        while (!stop.load()) {
            try {
                pqxx::connection c(conninfo);
                Receiver receiver(c);
                c.get_notifs();  // the LISTEN is sent by the receiver's constructor
                connected = true;
                backoff = std::chrono::milliseconds(200);
                report(read_latest(c, known_version));
                auto next_poll = std::chrono::steady_clock::now() + poll_interval;
                while (!stop.load()) {
                    c.await_notification(0, 200'000);  // wakes at least every 200 ms to see `stop`
                    if (receiver.take() || std::chrono::steady_clock::now() >= next_poll) {
                        report(read_latest(c, known_version));
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
