// CheckpointListener: a dedicated storage connection that LISTENs on `sluice_checkpoint` (sent by
// BucketWriter with each committed checkpoint) and, at each notification, reads and reports the
// newest checkpoint of the active rules version (a version being built notifies too; its
// checkpoints are not reported). On (re)connect, and every poll interval as a safety net, it reads
// it too, so a notification lost while disconnected is never missed. Runs its own thread;
// reconnects with backoff.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace sluice::storage {

// The newest checkpoint clients may see, and the rules version it belongs to.
struct ActiveCheckpoint {
    std::int64_t op_id = 0;            // 0: no checkpoint yet
    std::int64_t rules_version = 1;
    std::int64_t rules_from_op_id = 0;  // the checkpoint at which that version became active
    // The version's sync-rules text, given when the version differs from the previous report (and
    // at the first); nullopt otherwise, and when storage records no version (tests' plain writers).
    std::optional<std::string> rules_content;
};

class CheckpointListener {
public:
    using Callback = std::function<void(const ActiveCheckpoint& checkpoint)>;

    // Starts the thread. `on_checkpoint` is called from it, with op_ids that may repeat (callers
    // keep the maximum); a new rules version is reported before any of its checkpoints.
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
