// The serving stack the HTTP tests run against: source and storage databases in the private
// Postgres with the demo schema (deploy/demo), the replicator, the checkpoint listener and the real
// HTTP/WebSocket server over loopback, in-process. Plus tokens and a line reader for test clients.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "protocol/wire/client_state.h"
#include "server/app/replicator.h"
#include "server/http/server.h"
#include "server/storage/checkpoint_listener.h"
#include "tests/support/jwt_signer.h"

namespace sluice::test {

[[nodiscard]] std::int64_t unix_now();
// The HS256 key the stack's server trusts (kid k1, audience sluice-test).
[[nodiscard]] const TestKey& stack_key();
[[nodiscard]] std::string token_for(const std::string& user, std::int64_t lifetime = 3600);

struct Stack {
    std::string source;
    std::string storage;
    std::shared_ptr<const config::rules::RuleSet> rules;
    std::shared_ptr<sync::CheckpointHub> hub = std::make_shared<sync::CheckpointHub>();
    std::unique_ptr<app::Replicator> replicator;
    std::atomic<bool> stop{false};
    std::thread replicator_thread;
    std::unique_ptr<storage::CheckpointListener> listener;
    std::unique_ptr<http::Server> server;

    // Databases named after `name` (unique per test case), seeded with users u1, u2, lists l1 (u1's)
    // and l2 (u2's), todos t1 (l1) and t2 (l2); returns once the first checkpoint is published.
    // `rules_yaml` replaces the demo rules (deploy/demo/sync-rules.yaml) when not empty.
    explicit Stack(const std::string& name, http::ServerOptions options = {}, const std::string& rules_yaml = "");
    ~Stack();
    Stack(const Stack&) = delete;
    Stack& operator=(const Stack&) = delete;
    [[nodiscard]] std::uint16_t port() const { return server->port(); }

private:
    std::string m_slot;

public:

    template <typename F>
    static void wait_until(F condition, const char* what) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
        while (!condition()) {
            if (std::chrono::steady_clock::now() > deadline) {
                FAIL("timed out waiting for " << what);
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polling a condition, with a deadline
        }
    }
};

// A sync request body that resumes what `client` holds.
[[nodiscard]] std::string request_body(const protocol::wire::ClientState& client);

// Reads lines into the client until a checkpoint_complete that shows `done` true.
template <typename Next, typename Done>
std::vector<std::string> read_until(Next next, protocol::wire::ClientState& client, Done done) {
    std::vector<std::string> lines;
    for (;;) {
        auto line = next();
        REQUIRE(line.has_value());
        auto status = client.apply_line(*line);
        INFO(*line << " -> " << status.to_string());
        REQUIRE(status.is_ok());
        lines.push_back(*line);
        if (line->starts_with(R"({"checkpoint_complete")") && done()) {
            REQUIRE(client.last_outcome() == protocol::wire::ClientState::Outcome::kApplied);
            return lines;
        }
    }
}

}  // namespace sluice::test
