// Background refresh of the JWKS URL's keys (see jwks_fetcher.h); swaps an immutable KeyList.
#include "server/auth/jwks_fetcher.h"

#include <algorithm>

namespace sluice::auth {

JwksFetcher::JwksFetcher(HttpUrl url, std::chrono::seconds refresh, Clock clock)
    : m_url(std::move(url)),
      m_refresh(refresh.count() > 0 ? refresh : std::chrono::seconds(300)),
      m_clock(std::move(clock)),
      m_log("auth", "jwks=" + m_url.host),
      m_keys(std::make_shared<const KeyList>()) {}

JwksFetcher::~JwksFetcher() {
    {
        std::lock_guard lock(m_mutex);
        m_stop = true;
    }
    m_wake_cv.notify_all();
    if (m_thread.joinable()) {
        m_thread.join();
    }
}

void JwksFetcher::start() {
    fetch_once();
    m_thread = std::thread([this] { run(); });
}

std::shared_ptr<const KeyList> JwksFetcher::keys() const {
    std::lock_guard lock(m_mutex);
    return m_keys;
}

void JwksFetcher::on_unknown_kid() const {
    const std::int64_t now = m_clock();
    std::int64_t last = m_last_attempt.load();
    if (now - last < kUnknownKidRefetchSeconds) {
        return;
    }
    // One caller wins the right to wake the thread; others see the new time and return.
    if (!m_last_attempt.compare_exchange_strong(last, now)) {
        return;
    }
    {
        std::lock_guard lock(m_mutex);
        m_wake = true;
    }
    m_wake_cv.notify_one();
}

void JwksFetcher::run() {
    std::unique_lock lock(m_mutex);
    while (!m_stop) {
        const auto wait = m_last_ok ? m_refresh : std::min(m_refresh, std::chrono::seconds(kRetryAfterFailure));
        m_wake_cv.wait_for(lock, wait, [this] { return m_stop || m_wake; });
        if (m_stop) {
            break;
        }
        m_wake = false;
        lock.unlock();
        fetch_once();
        lock.lock();
    }
}

void JwksFetcher::fetch_once() {
    m_last_attempt.store(m_clock());
    auto body = http_get(m_url, kFetchTimeout, kMaxJwksBytes);
    protocol::Result<JwkSet> set = body ? parse_jwks(*body) : protocol::Result<JwkSet>(body.status());
    if (set && set->keys.empty()) {
        set = protocol::Status{protocol::ErrorCode::kAuthJwksFetchFailed, "the JWKS holds no usable key"};
    }
    if (!set) {
        const auto& st = set.status();
        m_log.warn("SL5104: fetching auth.jwks_uri failed, keeping the {} keys fetched before: {}", keys()->size(),
                   st.message());
        m_last_ok = false;
    } else {
        for (const auto& why : set->skipped) {
            m_log.warn("skipped a key of auth.jwks_uri: {}", why);
        }
        auto fresh = std::make_shared<const KeyList>(std::move(set->keys));
        m_log.info("fetched auth.jwks_uri: {} keys", fresh->size());
        {
            std::lock_guard lock(m_mutex);
            m_keys = std::move(fresh);
        }
        m_last_ok = true;
    }
    m_completed.fetch_add(1);
}

}  // namespace sluice::auth
