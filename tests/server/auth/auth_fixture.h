// Shared pieces of the auth tests: an injected clock, a scratch folder, and AuthConfig builders.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <unistd.h>

#include <fmt/format.h>
#include <catch2/catch.hpp>

#include "server/auth/token_verifier.h"
#include "tests/support/jwt_signer.h"

namespace sluice::test {

inline constexpr std::int64_t kNow = 1'700'000'000;

struct TestClock {
    std::shared_ptr<std::atomic<std::int64_t>> now = std::make_shared<std::atomic<std::int64_t>>(kNow);
    [[nodiscard]] auth::Clock clock() const {
        return [n = now] { return n->load(); };
    }
    void advance(std::int64_t seconds) const { now->fetch_add(seconds); }
};

// A folder under the system temp dir, removed at the end of the test.
class ScratchDir {
public:
    ScratchDir() {
        static std::atomic<int> counter{0};
        m_path = std::filesystem::temp_directory_path() /
                 ("sluice-auth-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
        std::filesystem::create_directories(m_path);
    }
    ~ScratchDir() {
        std::error_code ec;
        std::filesystem::remove_all(m_path, ec);
    }
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;

    [[nodiscard]] std::string write(const std::string& name, const std::string& content) const {
        const auto file = (m_path / name).string();
        std::ofstream(file, std::ios::binary) << content;
        return file;
    }

private:
    std::filesystem::path m_path;
};

inline config::AuthConfig base_config() {
    config::AuthConfig auth;
    auth.leeway_seconds = 60;
    auth.max_lifetime_seconds = 86400;
    auth.jwks_refresh_seconds = 300;
    return auth;
}

// An inline key for `key`: its secret, or its public PEM written into `dir`.
inline config::AuthKey inline_key(const TestKey& key, const ScratchDir& dir, std::string alg = {}) {
    config::AuthKey k;
    k.kid = key.kid();
    k.alg = alg.empty() ? key.alg() : alg;
    if (key.public_pem().empty()) {
        k.secret = key.secret();
    } else {
        static std::atomic<int> counter{0};
        k.public_key_file = dir.write("key" + std::to_string(counter++) + ".pem", key.public_pem());
    }
    return k;
}

inline std::unique_ptr<auth::TokenVerifier> make_verifier(const config::AuthConfig& auth, const TestClock& clock) {
    auto created = auth::TokenVerifier::create(auth, clock.clock());
    INFO(created.status().to_string());
    REQUIRE(created.is_ok());
    return std::move(created).value();
}

inline std::string header_for(const TestKey& key) {
    return key.kid().empty() ? R"({"alg":")" + key.alg() + R"(","typ":"JWT"})"
                             : R"({"alg":")" + key.alg() + R"(","typ":"JWT","kid":")" + key.kid() + R"("})";
}

}  // namespace sluice::test
