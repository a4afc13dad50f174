// Private to server/http (includes Beast: never include it from another folder). What the HTTP
// and WebSocket sessions share: the server state, the connection registry with its limits, and
// the Pump that drives a SyncSession into one bounded outbound queue with a single writer.
#pragma once

#include <utility>  // first: Asio with -std=c++20 (toolchain-notes.md)

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "protocol/wire/client_message.h"
#include "server/core/log.h"
#include "server/http/server.h"

namespace sluice::http::detail {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using Request = bhttp::request<bhttp::string_body>;
// The two transports every session is written once for (templates instantiated for both).
using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// Server-wide state every connection reads; owned by Server::Impl, outlives every connection.
struct Shared {
    ServerOptions options;
    ServerDeps deps;
    ServerStats stats;
    net::thread_pool workers;  // runs SyncSession::step (blocking storage reads)
    net::thread_pool upload_workers;  // runs upload batches and write checkpoints (blocking source writes)
    std::optional<net::ssl::context> tls;  // set when server.tls is configured: every connection is TLS

    std::mutex mutex;  // guards the members below; taken by I/O threads
    std::size_t sessions = 0;
    std::map<std::string, std::size_t> sessions_per_user;
    std::map<std::uint64_t, std::function<void()>> aborts;  // live connections: end them on stop
    std::uint64_t next_connection = 1;
    bool stopping = false;

    Shared(ServerOptions o, ServerDeps d)
        : options(std::move(o)),
          deps(std::move(d)),
          workers(options.worker_threads),
          upload_workers(std::max<std::size_t>(1, options.upload_threads)) {}
    [[nodiscard]] std::int64_t now() const;
};

// A place among the sync sessions (limits.max_connections, max_connections_per_user); released
// when destroyed.
class SessionSlot {
public:
    // SL5009 (total) or SL5010 (this user) when full.
    [[nodiscard]] static protocol::Result<std::unique_ptr<SessionSlot>> acquire(Shared& shared, const std::string& user);
    ~SessionSlot();
    SessionSlot(const SessionSlot&) = delete;
    SessionSlot& operator=(const SessionSlot&) = delete;

private:
    SessionSlot(Shared& shared, std::string user) : m_shared(shared), m_user(std::move(user)) {}
    Shared& m_shared;
    std::string m_user;
};

// Registers a connection's abort function (run on stop) for its lifetime.
class ConnectionGuard {
public:
    ConnectionGuard(Shared& shared, std::function<void()> abort);
    ~ConnectionGuard();
    ConnectionGuard(const ConnectionGuard&) = delete;
    ConnectionGuard& operator=(const ConnectionGuard&) = delete;

private:
    Shared& m_shared;
    std::uint64_t m_id = 0;
};

// The HTTP status that goes with an error code (401 for auth, 429/503 for limits, ...).
[[nodiscard]] bhttp::status status_for(protocol::ErrorCode code);
// {"error":{...}} for a status.
[[nodiscard]] std::string error_body(const protocol::Status& status);
// Adds CORS headers when the request's Origin is allowed.
void add_cors(const Shared& shared, const Request& request, bhttp::fields& fields);

// Drives one SyncSession: produces lines on the worker pool when the queue has room and the
// session has work (a new checkpoint, data left, the clock), and writes them with one writer.
// Everything here runs on the connection's strand, except step() on the pool.
class Pump : public std::enable_shared_from_this<Pump> {
public:
    using Send = std::function<net::awaitable<beast::error_code>(std::deque<std::string>& lines)>;

    enum class State : std::uint8_t {
        kRunning,  // producing and writing
        kClosing,  // the session ended (token expired, error): flush the queue, then stop
        kClosed,   // the queue is flushed or the client is gone: both loops return
    };

    Pump(Shared& shared, net::any_io_executor executor, Send send, std::function<void()> abort, bool ndjson);

    using SessionChange = std::function<void(sync::SyncSession&, std::vector<std::string>& lines)>;

    // Sets (or replaces, for a WebSocket sync_request sent again) the session, with lines already
    // produced for it. Like every change to the session, it takes effect between two steps: a step
    // runs on a worker thread, and the session must not change (or be freed) under it.
    void set_session(std::unique_ptr<sync::SyncSession> session, std::vector<std::string> lines);
    // Runs `change` on the session between two steps, in order with set_session and other changes
    // (a WebSocket token or update_subscriptions message); it is dropped when there is no session.
    void change_session(SessionChange change);
    // The newest session: the last one set_session queued, else the running one; null before the
    // first. For reading its request() on the connection's strand (steps never change it).
    [[nodiscard]] const sync::SyncSession* session() const;
    // Queues lines; closes the session as too slow when the queue would exceed its bound.
    void push(std::vector<std::string>& lines);
    // Queues an error line and closes once it is written.
    void fail(const protocol::Status& status);
    // Ends both loops now (client gone).
    void abort();
    // The server is stopping: writes what is queued, then the stream ends (the WebSocket with close
    // code 1001 "going away", the HTTP stream with its last chunk), so clients reconnect at once.
    void finish();
    [[nodiscard]] bool going_away() const { return m_going_away; }
    [[nodiscard]] State state() const { return m_state; }

    // Runs until closed. Subscribes to new checkpoints for its lifetime.
    net::awaitable<void> run();

private:
    net::awaitable<void> drive();
    void apply_changes();  // the queued set_session / change_session calls, in order
    net::awaitable<void> write();
    void close_slow();

    Shared& m_shared;
    net::any_io_executor m_executor;
    Send m_send;
    std::function<void()> m_abort;
    bool m_ndjson;  // HTTP stream: lines end with '\n'
    State m_state = State::kRunning;
    bool m_going_away = false;  // finish() was called
    std::unique_ptr<sync::SyncSession> m_session;
    struct Change {
        std::unique_ptr<sync::SyncSession> session;  // set_session
        std::vector<std::string> lines;
        SessionChange change;                        // or change_session
    };
    std::deque<Change> m_changes;  // applied by drive() between steps
    std::deque<std::string> m_queue;
    std::size_t m_queued_bytes = 0;
    std::chrono::steady_clock::time_point m_last_progress;
    net::steady_timer m_wake;         // the driver waits on it; cancel() wakes it
    net::steady_timer m_writer_wake;  // the writer waits on it
};

// The upload routes (upload_routes.cpp): POST /upload, GET /write-checkpoint2.json,
// POST /sync/checkpoint-request. nullopt when the request is for none of them.
net::awaitable<std::optional<bhttp::response<bhttp::string_body>>> upload_route(Shared& shared, const Request& request);
// A WebSocket `upload` message: runs the batch on the upload pool and queues the reply line.
net::awaitable<void> websocket_upload(Shared& shared, const auth::VerifiedToken& token, Pump& pump,
                                      const protocol::wire::UploadMessage& message);

// The WebSocket endpoint (ws_session.cpp): takes over the connection after an upgrade request, as a
// coroutine of its own (so the HTTP connection's frames and buffers are freed: an idle session holds
// only what it needs). Instantiated for PlainStream and TlsStream.
template <class Stream>
void start_websocket(Shared& shared, Stream stream, Request request);

// Completion of a detached connection coroutine: logs an exception that escaped it.
void log_failure(const std::exception_ptr& e);

}  // namespace sluice::http::detail
