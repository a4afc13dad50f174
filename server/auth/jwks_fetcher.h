// The keys behind auth.jwks_uri, kept fresh by one background thread: fetched at start, every
// jwks_refresh_seconds, and, at most once per kUnknownKidRefetchSeconds, when a token names an unknown kid.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>

#include "server/auth/http_get.h"
#include "server/auth/jwks.h"
#include "server/auth/token_verifier.h"
#include "server/core/log.h"

namespace sluice::auth {

class JwksFetcher {
public:
    // Time (by the injected Clock) that must pass after a fetch started before an unknown kid triggers another.
    static constexpr std::int64_t kUnknownKidRefetchSeconds = 10;
    // After a failed fetch, the next try comes after this long (or the refresh interval, if shorter).
    static constexpr std::chrono::seconds kRetryAfterFailure{10};
    static constexpr std::chrono::seconds kFetchTimeout{5};
    static constexpr std::size_t kMaxJwksBytes = 1024 * 1024;

    // `clock` must be callable from any thread.
    JwksFetcher(HttpUrl url, std::chrono::seconds refresh, Clock clock);
    ~JwksFetcher();
    JwksFetcher(const JwksFetcher&) = delete;
    JwksFetcher& operator=(const JwksFetcher&) = delete;

    // Fetches once on the calling thread (bounded by kFetchTimeout; a failure is logged, not fatal: the
    // thread keeps trying), then starts the background thread.
    void start();

    // The keys of the last good fetch (empty before the first); never blocks on the network.
    [[nodiscard]] std::shared_ptr<const KeyList> keys() const;

    // A token named a kid that is not in keys(): wake the thread unless a fetch started too recently.
    void on_unknown_kid() const;

    // Fetches finished, good or bad (tests wait on it).
    [[nodiscard]] std::uint64_t completed_fetches() const { return m_completed.load(); }

private:
    void run();
    void fetch_once();

    const HttpUrl m_url;
    const std::chrono::seconds m_refresh;
    const Clock m_clock;
    const core::Logger m_log;

    mutable std::mutex m_mutex;  // guards the members below it up to m_thread
    mutable std::condition_variable m_wake_cv;
    std::shared_ptr<const KeyList> m_keys;  // swapped by the fetch thread, copied by verify() threads
    mutable bool m_wake = false;            // set by on_unknown_kid() on any thread
    bool m_stop = false;                    // set by the destructor
    bool m_last_ok = false;                 // fetch thread only (and start())

    mutable std::atomic<std::int64_t> m_last_attempt{0};  // Clock seconds when the last fetch started
    std::atomic<std::uint64_t> m_completed{0};
    std::thread m_thread;
};

}  // namespace sluice::auth
