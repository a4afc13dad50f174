// Drives a SyncSession in the pure session tests: steps it to a checkpoint and applies every line to
// a ClientState (which verifies every checksum).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "protocol/wire/client_state.h"
#include "server/sync/sync_session.h"
#include "server/sync/sync_storage.h"

namespace sluice::test {

// Runs the session to `latest`, applying every line to the client; returns the lines.
inline std::vector<std::string> drain(sync::SyncSession& s, sync::SyncStorage& storage, std::int64_t latest,
                                      protocol::wire::ClientState& client) {
    std::vector<std::string> all;
    int guard = 0;
    while (s.has_work(latest)) {
        REQUIRE(++guard < 10'000);
        std::vector<std::string> out;
        auto status = s.step(storage, latest, out);
        INFO(status.to_string());
        REQUIRE(status.is_ok());
        for (auto& line : out) {
            auto applied = client.apply_line(line);
            INFO(line << " -> " << applied.to_string());
            REQUIRE(applied.is_ok());
            all.push_back(std::move(line));
        }
    }
    return all;
}

}  // namespace sluice::test
