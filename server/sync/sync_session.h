// SyncSession: the download side of one client connection, as a state machine without sockets.
// Driven by "storage has checkpoint N" (step) and a clock (on_clock), it produces the server lines
// of protocol/README.md ("Server lines", "Order on a stream") into a vector: a full checkpoint,
// data per bucket from each `after` in bounded batches, priority by priority, then checkpoint_diffs
// with the buckets re-resolved at each checkpoint (grants and revokes add and remove buckets live,
// and so does a switch to a new rules version: see rules_source.h).
// Each checkpoint line carries the client's newest write checkpoint that it includes (request
// client_id); a new write checkpoint alone is sent as a checkpoint_diff without bucket changes.
// step() reads storage and blocks: run it on a worker thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "config/rules/request.h"
#include "config/rules/rule_set.h"
#include "protocol/status.h"
#include "protocol/wire/request.h"
#include "server/auth/token_verifier.h"
#include "server/sync/rules_source.h"
#include "server/sync/sync_storage.h"

namespace sluice::sync {

struct SessionLimits {
    std::size_t max_buckets = 1000;            // limits.max_buckets_per_connection
    std::size_t max_parameter_results = 1000;  // limits.max_parameter_query_results
    std::size_t max_subscriptions = 1000;      // limits.max_subscriptions_per_connection (Sync Streams)
    std::size_t ops_per_line = 1000;           // ops per data line (one storage read)
    std::size_t line_bytes = 256 * 1024;       // a data line stops growing past this much row data (>= 1 op),
                                               // so one line never outgrows a session's outbound queue
    std::size_t step_bytes = 256 * 1024;       // step() returns once it produced about this much
    std::int64_t keepalive_seconds = 20;       // token_expires_in every so often
};

enum class SessionState : std::uint8_t {
    kWaiting,      // every checkpoint up to sent_checkpoint() is complete; waiting for a newer one
    kDownloading,  // a checkpoint or diff was sent; its data lines are still being produced
    kEnded,        // the token expired: nothing more is sent, the connection closes
};

class SyncSession {
public:
    // Fails with SL2021 when the token's claims or the request's parameters are not JSON objects.
    // Each checkpoint resolves buckets with the rules `rules` names for it.
    [[nodiscard]] static protocol::Result<std::unique_ptr<SyncSession>> create(
        std::shared_ptr<const RulesSource> rules, auth::VerifiedToken token, protocol::wire::SyncRequest request,
        SessionLimits limits, std::int64_t now);
    // With one fixed rules version.
    [[nodiscard]] static protocol::Result<std::unique_ptr<SyncSession>> create(
        std::shared_ptr<const config::rules::RuleSet> rules, auth::VerifiedToken token,
        protocol::wire::SyncRequest request, SessionLimits limits, std::int64_t now);

    // True when step() has lines to produce for storage checkpoint `latest`.
    [[nodiscard]] bool has_work(std::int64_t latest) const;

    // Produces up to about limits.step_bytes of lines (each without a newline) towards checkpoint
    // `latest`: starts a checkpoint (or diff) when none is in progress and `latest` is newer than
    // the last one sent, then data lines, partial_checkpoint_complete lines and checkpoint_complete.
    // A checkpoint in progress is finished before a newer one starts. Errors: the rules' limits
    // (SL2018, SL2019), storage failures; the session is unusable after an error.
    [[nodiscard]] protocol::Status step(SyncStorage& storage, std::int64_t latest, std::vector<std::string>& out);

    // Keepalive: a token_expires_in line every limits.keepalive_seconds; at expiry
    // token_expires_in 0 and kEnded. Returns the seconds until it should be called again.
    std::int64_t on_clock(std::int64_t now, std::vector<std::string>& out);

    // A new complete Sync Streams subscription list (WebSocket `update_subscriptions`): the next
    // step() sends a full checkpoint at once, resolved with it, and data only for what the client
    // does not hold yet (a checkpoint in progress is abandoned; buckets keep their progress).
    void update_streams(protocol::wire::StreamsRequest streams);

    // A fresh token for the same user (WebSocket `token` message): answered with token_expires_in.
    // SL5102 when it names another user.
    [[nodiscard]] protocol::Status replace_token(auth::VerifiedToken token, std::int64_t now,
                                                 std::vector<std::string>& out);

    [[nodiscard]] SessionState state() const { return m_state; }
    [[nodiscard]] const std::string& user_id() const { return m_token.user_id; }
    [[nodiscard]] std::int64_t expires_at() const { return m_token.expires_at; }
    // The last checkpoint (or diff) whose lines were started; 0 before the first.
    [[nodiscard]] std::int64_t sent_checkpoint() const { return m_checkpoint; }
    [[nodiscard]] const protocol::wire::SyncRequest& request() const { return m_request; }

private:
    struct BucketInfo {
        int priority = 3;
        std::uint32_t checksum = 0;
        std::int64_t count = 0;
        std::vector<config::rules::BucketSource> sources;  // the streams / subscriptions it serves
        bool operator==(const BucketInfo&) const = default;
    };
    struct Pending {
        std::string bucket;
        int priority = 3;
    };

    SyncSession(std::shared_ptr<const RulesSource> rules, auth::VerifiedToken token,
                protocol::wire::SyncRequest request, config::rules::Request rules_request, SessionLimits limits,
                std::int64_t now);

    protocol::Status begin_checkpoint(SyncStorage& storage, std::int64_t latest, std::vector<std::string>& out);
    // Hands the request's streams to the rules request; subscriptions past the limit are kept out
    // and reported (m_excess_subscriptions) in the checkpoint's streams.
    void apply_streams();
    protocol::Status produce_data(SyncStorage& storage, std::size_t& bytes, std::vector<std::string>& out);
    void finish_bucket(std::vector<std::string>& out, std::size_t& bytes);

    std::shared_ptr<const RulesSource> m_source;
    std::shared_ptr<const RulesVersion> m_rules;  // the version of the last checkpoint started
    auth::VerifiedToken m_token;
    protocol::wire::SyncRequest m_request;
    config::rules::Request m_rules_request;
    SessionLimits m_limits;

    SessionState m_state = SessionState::kWaiting;
    bool m_started = false;         // the first full checkpoint was sent (false again after update_streams)
    bool m_resolve_now = false;     // update_streams: a full checkpoint is due even at the same op_id
    std::set<std::string> m_unfinished;  // update_streams: buckets of the abandoned checkpoint not yet sent in full
    std::int64_t m_checkpoint = 0;  // the checkpoint being sent (kDownloading) or last sent
    std::optional<std::uint64_t> m_write_checkpoint;  // the last write_checkpoint sent
    std::int64_t m_write_checkpoint_read_at = -1;     // the checkpoint its own was last read at (-1: never)
    std::map<std::string, BucketInfo> m_buckets;     // what the client was told, per bucket
    std::map<std::string, std::int64_t> m_after;     // highest op_id the client holds, per bucket
    std::vector<Pending> m_pending;                  // buckets of the current checkpoint still to send
    std::size_t m_next = 0;                          // index into m_pending
    std::int64_t m_next_keepalive = 0;               // Unix seconds
};

}  // namespace sluice::sync
