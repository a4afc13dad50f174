// The client-facing server: POST /sync/stream (NDJSON), GET /sync/ws (WebSocket, same lines as text
// frames, plus the client messages of protocol/README.md), POST /upload, GET /write-checkpoint2.json,
// POST /sync/checkpoint-request, GET /probes/*, CORS preflight. Boost.Beast
// lives only in this folder's .cpp files; this header is Asio-free so server/app includes it cheaply.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/rules/rule_set.h"
#include "config/sluice_config.h"
#include "protocol/status.h"
#include "server/auth/token_verifier.h"
#include "server/sync/checkpoint_hub.h"
#include "server/sync/sync_session.h"
#include "server/sync/sync_storage.h"
#include "server/upload/uploader.h"

namespace sluice::http {

struct ServerOptions {
    std::string listen_address = "127.0.0.1";
    std::uint16_t port = 0;  // 0: any free port (see Server::port())
    std::size_t io_threads = 2;
    std::size_t worker_threads = 2;  // run the sessions' blocking storage reads
    std::size_t upload_threads = 8;  // run upload batches (uploads.connections)
    std::size_t max_upload_ops = 1000;  // limits.max_upload_batch_ops
    std::vector<std::string> cors_origins;  // "*" allows any origin
    bool demo_page = false;                 // GET /demo
    // PEM files (server.tls): both set, every connection is HTTPS/WSS; both empty, plain HTTP/WS.
    std::string tls_cert_file;
    std::string tls_key_file;
    std::size_t max_message_bytes = 16 << 20;   // request bodies and WebSocket frames
    std::size_t session_queue_bytes = 8 << 20;  // outbound queue per session
    std::size_t max_connections = 10'000;       // sync sessions (HTTP streams + WebSockets) in total
    std::size_t max_connections_per_user = 50;
    // A session whose queued lines made no progress for this long is closed as too slow (SL5011).
    std::chrono::milliseconds stall_timeout{30'000};
    sync::SessionLimits session;
};

// The options from sluice.yaml (server and limits sections).
[[nodiscard]] ServerOptions options_from_config(const config::Config& config);

struct ServerDeps {
    std::shared_ptr<const sync::RulesSource> rules;  // the rules each checkpoint resolves buckets with
    std::shared_ptr<const auth::TokenVerifier> verifier;
    std::shared_ptr<sync::StoragePool> storage;
    std::shared_ptr<sync::CheckpointHub> hub;
    std::shared_ptr<upload::Uploader> uploader;  // null: uploads answered with SL5015
    std::function<std::int64_t()> clock;  // Unix seconds; empty: the system clock
    // Operators' endpoints, behind `admin_token` (Authorization: Bearer, or ?token=): GET /metrics
    // (Prometheus text) and GET /admin/status.json; GET /admin is the page that shows the latter.
    // With no admin token they answer 404. The functions block: they run on worker threads.
    std::string admin_token;
    std::function<std::string()> metrics_text;
    std::function<std::string()> status_json;
};

// Counters, updated by the I/O threads, read by anyone.
struct ServerStats {
    std::atomic<std::uint64_t> connections_total{0};    // accepted TCP connections
    std::atomic<std::uint64_t> sessions_active{0};      // sync sessions streaming now
    std::atomic<std::uint64_t> sessions_total{0};
    std::atomic<std::uint64_t> slow_clients_closed{0};  // closed with SL5011
    std::atomic<std::uint64_t> rejected_limits{0};      // refused by max_connections(_per_user)
    std::atomic<std::uint64_t> auth_failures{0};
    std::atomic<std::uint64_t> bytes_sent{0};           // sync lines written to clients
};

class Server {
public:
    // Binds and starts serving on its own threads. Fails when the address cannot be bound or the
    // TLS certificate or key cannot be loaded.
    [[nodiscard]] static protocol::Result<std::unique_ptr<Server>> start(ServerOptions options, ServerDeps deps);
    ~Server();  // stop()
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // The bound port (the real one when options.port was 0).
    [[nodiscard]] std::uint16_t port() const;
    [[nodiscard]] const ServerStats& stats() const;
    // Stops accepting, closes every connection and joins the threads. Idempotent.
    void stop();

    struct Impl;

private:
    explicit Server(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> m_impl;
};

}  // namespace sluice::http
