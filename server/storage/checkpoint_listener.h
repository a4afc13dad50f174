// CheckpointListener: a dedicated storage connection that LISTENs on `sluice_checkpoint` (sent by
// BucketWriter with each committed checkpoint) and reports each new checkpoint op_id at once. On
// (re)connect, and every poll interval as a safety net, it also reads the newest checkpoint, so a
// notification lost while disconnected is never missed. Runs its own thread; reconnects with backoff.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace sluice::storage {

class CheckpointListener {
public:
    using Callback = std::function<void(std::int64_t op_id)>;

    // Starts the thread. `on_checkpoint` is called from it, with op_ids that may repeat (callers
    // keep the maximum).
    CheckpointListener(std::string conninfo, Callback on_checkpoint,
                       std::chrono::milliseconds poll_interval = std::chrono::seconds(5));
    ~CheckpointListener();  // stops and joins the thread
    CheckpointListener(const CheckpointListener&) = delete;
    CheckpointListener& operator=(const CheckpointListener&) = delete;

    // True once the LISTEN connection is up (readiness).
    [[nodiscard]] bool connected() const;

    struct Impl;

private:
    std::unique_ptr<Impl> m_impl;
};

}  // namespace sluice::storage
