// The listener, HTTP sessions (probes, CORS preflight, POST /sync/stream as chunked NDJSON), the
// session registry with its limits, and the Pump shared with WebSocket sessions (ws_session.cpp).
// Sessions are templates over the transport: plain TCP, or TLS when server.tls is configured.
// Spec: protocol/README.md ("HTTP", "Server lines", "Errors before streaming").
#include "server/http/detail/connection.h"
#include "server/http/embedded_pages.h"

#include <algorithm>
#include <thread>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/beast/websocket.hpp>

#include "protocol/wire/line_encoder.h"
#include "protocol/wire/request.h"

namespace sluice::http {
namespace detail {
namespace {

using protocol::ErrorCode;
using protocol::Status;
using namespace net::experimental::awaitable_operators;
constexpr auto kTuple = net::as_tuple(net::use_awaitable);

const core::Logger kLog("http");

bool iequals_prefix(std::string_view text, std::string_view prefix) {
    if (text.size() < prefix.size()) {
        return false;
    }
    for (std::size_t i = 0; i < prefix.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(text[i])) != prefix[i]) {
            return false;
        }
    }
    return true;
}

}  // namespace

void log_failure(const std::exception_ptr& e) {
    if (e) {
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& x) {
            kLog.error("connection failed: {}", x.what());
        }
    }
}

std::int64_t Shared::now() const {
    if (deps.clock) {
        return deps.clock();
    }
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

protocol::Result<std::unique_ptr<SessionSlot>> SessionSlot::acquire(Shared& shared, const std::string& user) {
    std::lock_guard lock(shared.mutex);
    if (shared.sessions >= shared.options.max_connections) {
        shared.stats.rejected_limits++;
        return Status{ErrorCode::kTooManyConnections,
                      fmt::format("the server has reached its limit of {} sync connections", shared.options.max_connections)};
    }
    auto& mine = shared.sessions_per_user[user];
    if (mine >= shared.options.max_connections_per_user) {
        shared.stats.rejected_limits++;
        return Status{ErrorCode::kTooManyUserConnections,
                      fmt::format("user '{}' already has {} sync connections (the limit)", user, mine)};
    }
    ++mine;
    ++shared.sessions;
    shared.stats.sessions_active++;
    shared.stats.sessions_total++;
    return std::unique_ptr<SessionSlot>(new SessionSlot(shared, user));
}

SessionSlot::~SessionSlot() {
    std::lock_guard lock(m_shared.mutex);
    --m_shared.sessions;
    m_shared.stats.sessions_active--;
    if (auto it = m_shared.sessions_per_user.find(m_user); it != m_shared.sessions_per_user.end() && --it->second == 0) {
        m_shared.sessions_per_user.erase(it);
    }
}

ConnectionGuard::ConnectionGuard(Shared& shared, std::function<void()> abort) : m_shared(shared) {
    std::lock_guard lock(shared.mutex);
    m_id = shared.next_connection++;
    shared.aborts.emplace(m_id, std::move(abort));
}

ConnectionGuard::~ConnectionGuard() {
    std::lock_guard lock(m_shared.mutex);
    m_shared.aborts.erase(m_id);
}

bhttp::status status_for(ErrorCode code) {
    switch (code) {
        case ErrorCode::kAuthMissing:
        case ErrorCode::kAuthInvalid:
        case ErrorCode::kAuthExpired:
            return bhttp::status::unauthorized;
        case ErrorCode::kMessageTooLarge:
            return bhttp::status::payload_too_large;
        case ErrorCode::kTooManyConnections:
            return bhttp::status::service_unavailable;
        case ErrorCode::kTooManyUserConnections:
            return bhttp::status::too_many_requests;
        case ErrorCode::kNotFound:
            return bhttp::status::not_found;
        case ErrorCode::kUnsupportedMediaType:
            return bhttp::status::unsupported_media_type;
        case ErrorCode::kSessionStorageFailed:
        case ErrorCode::kUploadSourceSetup:
        case ErrorCode::kInternal:
            return bhttp::status::internal_server_error;
        case ErrorCode::kUploadTooManyOps:
            return bhttp::status::payload_too_large;
        case ErrorCode::kUploadUnavailable:
            return bhttp::status::service_unavailable;
        case ErrorCode::kUploadBatchIdTaken:
            return bhttp::status::conflict;
        case ErrorCode::kUploadNotSupported:
            return bhttp::status::not_implemented;
        default:
            return bhttp::status::bad_request;
    }
}

std::string error_body(const Status& status) {
    std::string body;
    protocol::wire::encode_error(body, status, static_cast<std::int32_t>(status_for(status.code())));
    return body;
}

void add_cors(const Shared& shared, const Request& request, bhttp::fields& fields) {
    auto origin = request[bhttp::field::origin];
    if (origin.empty()) {
        return;
    }
    const auto& allowed = shared.options.cors_origins;
    const bool any = std::find(allowed.begin(), allowed.end(), "*") != allowed.end();
    if (any || std::find(allowed.begin(), allowed.end(), std::string(origin)) != allowed.end()) {
        fields.set(bhttp::field::access_control_allow_origin, any ? std::string_view("*") : std::string_view(origin));
        fields.set(bhttp::field::vary, "Origin");
    }
}

// ---------------------------------------------------------------------------------------------
// Pump

Pump::Pump(Shared& shared, net::any_io_executor executor, Send send, std::function<void()> abort, bool ndjson)
    : m_shared(shared),
      m_executor(executor),
      m_send(std::move(send)),
      m_abort(std::move(abort)),
      m_ndjson(ndjson),
      m_last_progress(std::chrono::steady_clock::now()),
      m_wake(executor),
      m_writer_wake(executor) {}

void Pump::set_session(std::unique_ptr<sync::SyncSession> session, std::vector<std::string> lines) {
    m_changes.push_back({std::move(session), std::move(lines), {}});
    m_wake.cancel();
}

void Pump::change_session(SessionChange change) {
    m_changes.push_back({nullptr, {}, std::move(change)});
    m_wake.cancel();
}

const sync::SyncSession* Pump::session() const {
    for (auto it = m_changes.rbegin(); it != m_changes.rend(); ++it) {
        if (it->session) {
            return it->session.get();
        }
    }
    return m_session.get();
}

void Pump::apply_changes() {
    while (!m_changes.empty()) {
        auto next = std::move(m_changes.front());
        m_changes.pop_front();
        if (next.session) {
            m_session = std::move(next.session);
        } else if (m_session) {
            next.change(*m_session, next.lines);
        }
        push(next.lines);
    }
}

void Pump::push(std::vector<std::string>& lines) {
    if (m_state == State::kClosed) {
        return;
    }
    if (m_queued_bytes == 0 && !lines.empty()) {
        m_last_progress = std::chrono::steady_clock::now();  // the stall clock starts when lines wait
    }
    for (auto& line : lines) {
        if (m_ndjson) {
            line.push_back('\n');
        }
        m_queued_bytes += line.size();
        m_queue.push_back(std::move(line));
    }
    lines.clear();
    if (m_queued_bytes > m_shared.options.session_queue_bytes && m_queue.size() > 1) {
        close_slow();
        return;
    }
    m_writer_wake.cancel();
}

void Pump::fail(const Status& status) {
    std::vector<std::string> lines{error_body(status)};
    push(lines);
    if (m_state == State::kRunning) {
        m_state = State::kClosing;
    }
    m_writer_wake.cancel();
    m_wake.cancel();
}

void Pump::abort() {
    m_state = State::kClosed;
    m_wake.cancel();
    m_writer_wake.cancel();
    if (m_abort) {
        m_abort();
    }
}

void Pump::finish() {
    m_going_away = true;
    if (m_state == State::kRunning) {
        m_state = State::kClosing;
    }
    m_writer_wake.cancel();
    m_wake.cancel();
}

void Pump::close_slow() {
    m_shared.stats.slow_clients_closed++;
    kLog.warn("closing a sync session: {}", protocol::error_info(ErrorCode::kClientTooSlow).cause);
    abort();
}

net::awaitable<void> Pump::run() {
    std::weak_ptr<Pump> weak = weak_from_this();
    auto subscription = m_shared.deps.hub->subscribe([weak, executor = m_executor](std::int64_t) {
        net::post(executor, [weak] {
            if (auto self = weak.lock()) {
                self->m_wake.cancel();
            }
        });
    });
    co_await (drive() && write());
}

net::awaitable<void> Pump::drive() {
    auto self = shared_from_this();
    while (m_state != State::kClosed) {
        std::chrono::milliseconds wait(1000);
        apply_changes();  // no step is running here
        if (m_session && m_state == State::kRunning) {
            std::vector<std::string> lines;
            const auto next = m_session->on_clock(m_shared.now(), lines);
            push(lines);
            wait = std::chrono::seconds(next);
            if (m_session->state() == sync::SessionState::kEnded && m_state == State::kRunning) {
                m_state = State::kClosing;
                m_writer_wake.cancel();
            }
            const auto latest = m_shared.deps.hub->latest();
            if (m_state == State::kRunning && m_queued_bytes < m_shared.options.session_queue_bytes / 2 &&
                m_session->has_work(latest)) {
                auto* session = m_session.get();
                Status status = co_await net::co_spawn(
                    m_shared.workers.get_executor(),
                    [this, session, latest, &lines]() -> net::awaitable<Status> {
                        co_return m_shared.deps.storage->with(
                            [&](sync::SyncStorage& storage) { return session->step(storage, latest, lines); });
                    },
                    net::use_awaitable);
                if (!status.is_ok()) {
                    kLog.warn("session user={} failed: {}", m_session->user_id(), status.to_string());
                    fail(status);
                    continue;
                }
                push(lines);
                continue;
            }
        }
        if (m_queued_bytes > 0) {  // queued or being written (a batch in flight is no longer in m_queue)
            const auto stalled = std::chrono::steady_clock::now() - m_last_progress;
            if (stalled >= m_shared.options.stall_timeout) {
                close_slow();
                break;
            }
            wait = std::min(wait, std::chrono::duration_cast<std::chrono::milliseconds>(
                                      m_shared.options.stall_timeout - stalled) + std::chrono::milliseconds(1));
        }
        m_wake.expires_after(wait);
        co_await m_wake.async_wait(kTuple);
    }
}

net::awaitable<void> Pump::write() {
    auto self = shared_from_this();
    while (m_state != State::kClosed) {
        if (m_queue.empty()) {
            if (m_state == State::kClosing) {
                m_state = State::kClosed;
                m_wake.cancel();
                break;
            }
            m_last_progress = std::chrono::steady_clock::now();
            m_writer_wake.expires_at(std::chrono::steady_clock::time_point::max());
            co_await m_writer_wake.async_wait(kTuple);
            continue;
        }
        std::deque<std::string> batch;
        std::size_t bytes = 0;
        while (!m_queue.empty() && (batch.empty() || bytes < 512 * 1024)) {
            bytes += m_queue.front().size();
            batch.push_back(std::move(m_queue.front()));
            m_queue.pop_front();
        }
        auto ec = co_await m_send(batch);
        m_queued_bytes -= std::min(m_queued_bytes, bytes);
        if (!ec) {
            m_shared.stats.bytes_sent += bytes;
        }
        if (ec) {
            m_state = State::kClosed;
            m_wake.cancel();
            break;
        }
        m_last_progress = std::chrono::steady_clock::now();
        if (m_queued_bytes < m_shared.options.session_queue_bytes / 2) {
            m_wake.cancel();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP

namespace {

using Response = bhttp::response<bhttp::string_body>;

Response make_response(const Shared& shared, const Request& request, bhttp::status status, std::string body,
                       std::string_view content_type = "application/json") {
    Response res{status, request.version()};
    res.set(bhttp::field::server, "sluice");
    res.set(bhttp::field::content_type, content_type);
    add_cors(shared, request, res.base());
    res.keep_alive(request.keep_alive());
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

Response error_response(Shared& shared, const Request& request, const Status& status) {
    if (status_for(status.code()) == bhttp::status::unauthorized) {
        shared.stats.auth_failures++;
    }
    return make_response(shared, request, status_for(status.code()), error_body(status));
}

std::string_view path_of(std::string_view target) { return target.substr(0, target.find('?')); }

// Verifies the request's token: the Authorization header, or (WebSocket, browsers) the `token`
// query parameter.
protocol::Result<auth::VerifiedToken> authenticate(Shared& shared, const Request& request) {
    std::string authorization(request[bhttp::field::authorization]);
    if (authorization.empty()) {
        const auto target = std::string_view(request.target());
        if (auto q = target.find("?token="); q != std::string_view::npos) {
            authorization = std::string(target.substr(q + 7, target.find('&', q + 7) - (q + 7)));
        } else if (auto a = target.find("&token="); a != std::string_view::npos) {
            authorization = std::string(target.substr(a + 7, target.find('&', a + 7) - (a + 7)));
        }
    }
    if (authorization.empty()) {
        return Status{ErrorCode::kAuthMissing, "no token: send Authorization: Bearer <jwt>"};
    }
    return shared.deps.verifier->verify(authorization);
}

template <class Stream>
net::awaitable<bool> write_response(Stream& stream, Response& res) {
    const bool keep = res.keep_alive();
    auto [ec, n] = co_await bhttp::async_write(stream, res, kTuple);
    co_return !ec && keep;
}

// POST /sync/stream: checks, the first step (so errors still get an HTTP status), then the stream.
template <class Stream>
net::awaitable<void> sync_stream(Shared& shared, Stream& stream, const Request& request) {
    if (!iequals_prefix(request[bhttp::field::content_type], "application/json")) {
        {
        auto r_ = error_response(shared, request,
                                                       {ErrorCode::kUnsupportedMediaType,
                                                        "the sync request must be sent as Content-Type: application/json"});
        co_await write_response(stream, r_);
    }
        co_return;
    }
    auto token = authenticate(shared, request);
    if (!token) {
        {
        auto r_ = error_response(shared, request, token.status());
        co_await write_response(stream, r_);
    }
        co_return;
    }
    auto parsed = protocol::wire::parse_sync_request(request.body(), shared.options.max_message_bytes);
    if (!parsed) {
        {
        auto r_ = error_response(shared, request, parsed.status());
        co_await write_response(stream, r_);
    }
        co_return;
    }
    auto slot = SessionSlot::acquire(shared, token->user_id);
    if (!slot) {
        {
        auto r_ = error_response(shared, request, slot.status());
        co_await write_response(stream, r_);
    }
        co_return;
    }
    auto created = sync::SyncSession::create(shared.deps.rules, std::move(token).value(), std::move(parsed).value(),
                                             shared.options.session, shared.now());
    if (!created) {
        {
        auto r_ = error_response(shared, request, created.status());
        co_await write_response(stream, r_);
    }
        co_return;
    }
    auto session = std::move(created).value();
    std::vector<std::string> first;
    const auto latest = shared.deps.hub->latest();
    if (session->has_work(latest)) {
        auto* s = session.get();
        Status status = co_await net::co_spawn(
            shared.workers.get_executor(),
            [&shared, s, latest, &first]() -> net::awaitable<Status> {
                co_return shared.deps.storage->with(
                    [&](sync::SyncStorage& storage) { return s->step(storage, latest, first); });
            },
            net::use_awaitable);
        if (!status.is_ok()) {
            {
        auto r_ = error_response(shared, request, status);
        co_await write_response(stream, r_);
    }
            co_return;
        }
    }

    bhttp::response<bhttp::empty_body> res{bhttp::status::ok, request.version()};
    res.set(bhttp::field::server, "sluice");
    res.set(bhttp::field::content_type, "application/x-ndjson");
    res.set(bhttp::field::cache_control, "no-cache");
    add_cors(shared, request, res.base());
    res.chunked(true);
    res.keep_alive(false);
    bhttp::response_serializer<bhttp::empty_body> serializer{res};
    beast::get_lowest_layer(stream).expires_never();
    auto [ec, n] = co_await bhttp::async_write_header(stream, serializer, kTuple);
    if (ec) {
        co_return;
    }
    auto executor = co_await net::this_coro::executor;
    auto pump = std::make_shared<Pump>(
        shared, executor,
        [&stream](std::deque<std::string>& lines) -> net::awaitable<beast::error_code> {
            std::vector<net::const_buffer> buffers;
            buffers.reserve(lines.size());
            for (const auto& line : lines) {
                buffers.emplace_back(net::buffer(line));
            }
            auto [wec, wn] = co_await net::async_write(stream, bhttp::make_chunk(buffers), kTuple);
            co_return wec;
        },
        [&stream] {
            beast::error_code ignored;
            beast::get_lowest_layer(stream).socket().shutdown(tcp::socket::shutdown_both, ignored);
            beast::get_lowest_layer(stream).socket().close(ignored);
        },
        true);
    ConnectionGuard guard(shared, [executor, weak = std::weak_ptr<Pump>(pump)] {
        net::post(executor, [weak] {
            if (auto p = weak.lock()) {
                p->finish();
            }
        });
    });
    pump->set_session(std::move(session), std::move(first));
    co_await pump->run();
    if (beast::get_lowest_layer(stream).socket().is_open()) {
        auto [lec, ln] = co_await net::async_write(stream, bhttp::make_chunk_last(), kTuple);
        (void)lec;
    }
}

// The bearer token of a request, from the Authorization header or the `token` query parameter.
std::string bearer_token(const Request& request) {
    std::string_view authorization = request[bhttp::field::authorization];
    if (iequals_prefix(authorization, "bearer ")) {
        return std::string(authorization.substr(7));
    }
    const auto target = std::string_view(request.target());
    for (std::string_view key : {"?token=", "&token="}) {
        if (auto at = target.find(key); at != std::string_view::npos) {
            const auto start = at + key.size();
            return std::string(target.substr(start, target.find('&', start) - start));
        }
    }
    return {};
}

// Compares in time that depends only on the lengths, so a guess's timing says nothing.
bool same_secret(std::string_view a, std::string_view b) {
    unsigned char diff = a.size() == b.size() ? 0 : 1;
    for (std::size_t i = 0; i < a.size(); ++i) {
        diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
    }
    return diff == 0;
}

// GET /admin, /admin/status.json, /metrics: the operators' endpoints (see ServerDeps).
Response operator_response(Shared& shared, const Request& request, std::string_view path) {
    const auto& deps = shared.deps;
    if (deps.admin_token.empty()) {
        return error_response(shared, request,
                              {ErrorCode::kNotFound, fmt::format("{} is disabled: set auth.admin_token to enable it", path)});
    }
    if (request.method() != bhttp::verb::get) {
        return error_response(shared, request, {ErrorCode::kBadRequest, fmt::format("use GET for {}", path)});
    }
    if (path == "/admin") {
        auto res = make_response(shared, request, bhttp::status::ok, std::string(admin_page_html()),
                                 "text/html; charset=utf-8");
        res.set(bhttp::field::cache_control, "no-store");
        return res;
    }
    const auto token = bearer_token(request);
    if (token.empty()) {
        return error_response(shared, request,
                              {ErrorCode::kAuthMissing, "send the admin token: Authorization: Bearer <auth.admin_token>"});
    }
    if (!same_secret(token, deps.admin_token)) {
        return error_response(shared, request, {ErrorCode::kAuthInvalid, "wrong admin token"});
    }
    if (path == "/metrics") {
        return make_response(shared, request, bhttp::status::ok, deps.metrics_text ? deps.metrics_text() : "",
                             "text/plain; version=0.0.4; charset=utf-8");
    }
    auto res = make_response(shared, request, bhttp::status::ok, deps.status_json ? deps.status_json() : "{}");
    res.set(bhttp::field::cache_control, "no-store");
    return res;
}

// One request that is not a stream or a WebSocket. Returns whether to keep the connection.
template <class Stream>
net::awaitable<bool> handle(Shared& shared, Stream& stream, const Request& request) {
    const auto path = path_of(request.target());
    auto routed = co_await upload_route(shared, request);  // upload_routes.cpp
    if (routed) {
        co_return co_await write_response(stream, *routed);
    }
    if (request.method() == bhttp::verb::options) {
        Response res{bhttp::status::no_content, request.version()};
        res.set(bhttp::field::server, "sluice");
        add_cors(shared, request, res.base());
        if (res.count(bhttp::field::access_control_allow_origin) != 0) {
            res.set(bhttp::field::access_control_allow_methods, "GET, POST, OPTIONS");
            auto asked = request[bhttp::field::access_control_request_headers];
            res.set(bhttp::field::access_control_allow_headers,
                    asked.empty() ? std::string_view("Authorization, Content-Type") : std::string_view(asked));
            res.set(bhttp::field::access_control_max_age, "86400");
        }
        res.keep_alive(request.keep_alive());
        res.prepare_payload();
        co_return co_await write_response(stream, res);
    }
    if (path == "/sync/stream") {
        if (request.method() != bhttp::verb::post) {
            auto res = error_response(shared, request, {ErrorCode::kBadRequest, "use POST for /sync/stream"});
            co_return co_await write_response(stream, res);
        }
        co_await sync_stream(shared, stream, request);
        co_return false;
    }
    if (request.method() == bhttp::verb::get && path.starts_with("/probes/")) {
        const auto probe = path.substr(8);
        if (probe == "liveness" || probe == "startup") {
            auto res = make_response(shared, request, bhttp::status::ok, R"({"ready":true})");
            co_return co_await write_response(stream, res);
        }
        if (probe == "readiness") {
            const bool ready = shared.deps.hub->latest() > 0;
            auto res = make_response(shared, request, ready ? bhttp::status::ok : bhttp::status::service_unavailable,
                                     ready ? R"({"ready":true})" : R"({"ready":false})");
            co_return co_await write_response(stream, res);
        }
    }
    if (path == "/demo" && shared.options.demo_page && request.method() == bhttp::verb::get) {
        auto res = make_response(shared, request, bhttp::status::ok, std::string(demo_page_html()),
                                 "text/html; charset=utf-8");
        co_return co_await write_response(stream, res);
    }
    if (path == "/metrics" || path == "/admin" || path == "/admin/status.json") {
        // The status reads block on Postgres: off the I/O thread.
        auto res = co_await net::co_spawn(
            shared.workers.get_executor(),
            [&shared, &request, path]() -> net::awaitable<Response> { co_return operator_response(shared, request, path); },
            net::use_awaitable);
        co_return co_await write_response(stream, res);
    }
    if (path == "/sync/ws") {
        auto res = error_response(shared, request, {ErrorCode::kBadRequest, "/sync/ws expects a WebSocket upgrade"});
        co_return co_await write_response(stream, res);
    }
    auto res = error_response(shared, request, {ErrorCode::kNotFound, fmt::format("no endpoint {}", path)});
    co_return co_await write_response(stream, res);
}

// Ends a connection that is not handed to a WebSocket session: TCP shutdown, or TLS close_notify first.
net::awaitable<void> shut_down(PlainStream& stream) {
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    co_return;
}

net::awaitable<void> shut_down(TlsStream& stream) {
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(5));
    auto [ec] = co_await stream.async_shutdown(kTuple);
    (void)ec;  // a client that just closes is fine
    beast::error_code ignored;
    beast::get_lowest_layer(stream).socket().shutdown(tcp::socket::shutdown_both, ignored);
}

// The requests of one connection, over either transport.
template <class Stream>
net::awaitable<void> serve(Shared& shared, Stream& stream) {
    beast::flat_buffer buffer;
    auto executor = co_await net::this_coro::executor;
    auto alive = std::make_shared<beast::tcp_stream*>(&beast::get_lowest_layer(stream));  // the abort below may run after this frame ends
    std::optional<ConnectionGuard> guard;
    guard.emplace(shared, [executor, weak = std::weak_ptr<beast::tcp_stream*>(alive)] {
        net::post(executor, [weak] {
            if (auto s = weak.lock()) {
                beast::error_code ignored;
                (*s)->socket().close(ignored);
            }
        });
    });
    for (;;) {
        bhttp::request_parser<bhttp::string_body> parser;
        parser.body_limit(shared.options.max_message_bytes);
        parser.header_limit(64 * 1024);
        beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(60));
        auto [ec, n] = co_await bhttp::async_read(stream, buffer, parser, kTuple);
        if (ec == bhttp::error::body_limit) {
            Request stub;
            stub.version(11);
            stub.keep_alive(false);
            {
        auto r_ = error_response(shared, stub,
                                                           {ErrorCode::kMessageTooLarge,
                                                            fmt::format("the request body is over {} bytes",
                                                                        shared.options.max_message_bytes)});
        co_await write_response(stream, r_);
    }
            break;
        }
        if (ec) {
            break;
        }
        Request request = parser.release();
        if (beast::websocket::is_upgrade(request) && path_of(request.target()) == "/sync/ws") {
            guard.reset();  // the WebSocket session registers its own
            start_websocket(shared, std::move(stream), std::move(request));
            co_return;
        }
        if (!co_await handle(shared, stream, request)) {
            break;
        }
    }
    co_await shut_down(stream);
}

net::awaitable<void> serve_plain(Shared& shared, tcp::socket socket) {
    PlainStream stream(std::move(socket));
    co_await serve(shared, stream);
}

net::awaitable<void> serve_tls(Shared& shared, tcp::socket socket) {
    TlsStream stream(std::move(socket), *shared.tls);
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(30));
    auto [ec] = co_await stream.async_handshake(net::ssl::stream_base::server, kTuple);
    if (ec) {
        kLog.debug("TLS handshake failed: {}", ec.message());
        co_return;
    }
    co_await serve(shared, stream);
}

net::awaitable<void> connection(Shared& shared, tcp::socket socket) {
    if (shared.tls) {
        co_await serve_tls(shared, std::move(socket));
    } else {
        co_await serve_plain(shared, std::move(socket));
    }
}

net::awaitable<void> accept_loop(Shared& shared, tcp::acceptor& acceptor, net::io_context& ioc) {
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(net::make_strand(ioc), kTuple);
        if (ec) {
            if (!acceptor.is_open()) {
                co_return;
            }
            continue;
        }
        shared.stats.connections_total++;
        // Lines are small and latency matters: no Nagle delay (a line held for the client's delayed ACK).
        beast::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        auto executor = socket.get_executor();
        net::co_spawn(executor, connection(shared, std::move(socket)), log_failure);
    }
}

}  // namespace
}  // namespace detail

ServerOptions options_from_config(const config::Config& config) {
    ServerOptions o;
    o.listen_address = config.server.listen_address;
    o.port = static_cast<std::uint16_t>(config.server.port);
    o.cors_origins = config.server.cors_origins;
    o.demo_page = config.server.demo_page;
    o.tls_cert_file = config.server.tls.cert_file;
    o.tls_key_file = config.server.tls.key_file;
    o.max_message_bytes = static_cast<std::size_t>(config.limits.max_message_bytes);
    o.session_queue_bytes = static_cast<std::size_t>(config.limits.session_queue_bytes);
    o.max_connections = static_cast<std::size_t>(config.limits.max_connections);
    o.max_connections_per_user = static_cast<std::size_t>(config.limits.max_connections_per_user);
    o.upload_threads = static_cast<std::size_t>(config.uploads.connections);
    o.max_upload_ops = static_cast<std::size_t>(config.limits.max_upload_batch_ops);
    o.session.max_buckets = static_cast<std::size_t>(config.limits.max_buckets_per_connection);
    o.session.max_subscriptions = static_cast<std::size_t>(config.limits.max_subscriptions_per_connection);
    o.session.max_parameter_results = static_cast<std::size_t>(config.limits.max_parameter_query_results);
    return o;
}

struct Server::Impl {
    detail::Shared shared;
    detail::net::io_context ioc;
    // On a strand: the accept loop and stop()'s close run on different I/O threads otherwise, and a
    // close racing a new async_accept crashes inside Asio's reactor.
    detail::tcp::acceptor acceptor{detail::net::make_strand(ioc)};
    std::vector<std::thread> threads;
    bool stopped = false;

    Impl(ServerOptions o, ServerDeps d) : shared(std::move(o), std::move(d)), ioc(static_cast<int>(shared.options.io_threads)) {}
};

namespace {

// The TLS context for server.tls: the certificate chain and key, TLS 1.2 and newer.
protocol::Status load_tls(detail::Shared& shared) {
    const auto& o = shared.options;
    if (o.tls_cert_file.empty() && o.tls_key_file.empty()) {
        return protocol::Status::ok();
    }
    namespace ssl = detail::net::ssl;
    auto& context = shared.tls.emplace(ssl::context::tls_server);
    context.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                        ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
    detail::beast::error_code ec;
    context.use_certificate_chain_file(o.tls_cert_file, ec);
    if (ec) {
        shared.tls.reset();
        return {protocol::ErrorCode::kConfigInvalidValue,
                fmt::format("server.tls.cert_file '{}': {} (give a PEM certificate chain, server certificate first)",
                            o.tls_cert_file, ec.message())};
    }
    context.use_private_key_file(o.tls_key_file, ssl::context::pem, ec);
    if (!ec && SSL_CTX_check_private_key(context.native_handle()) != 1) {
        ec = detail::beast::error_code(static_cast<int>(::ERR_get_error()), detail::net::error::get_ssl_category());
    }
    if (ec) {
        shared.tls.reset();
        return {protocol::ErrorCode::kConfigInvalidValue,
                fmt::format("server.tls.key_file '{}': {} (give the unencrypted PEM private key of the certificate)",
                            o.tls_key_file, ec.message())};
    }
    return protocol::Status::ok();
}

}  // namespace

protocol::Result<std::unique_ptr<Server>> Server::start(ServerOptions options, ServerDeps deps) {
    auto impl = std::make_unique<Impl>(std::move(options), std::move(deps));
    auto& o = impl->shared.options;
    if (auto status = load_tls(impl->shared); !status) {
        return status;
    }
    detail::beast::error_code ec;
    auto address = detail::net::ip::make_address(o.listen_address, ec);
    if (ec) {
        return protocol::Status{protocol::ErrorCode::kConfigInvalidValue,
                                fmt::format("server.listen_address '{}': {}", o.listen_address, ec.message())};
    }
    detail::tcp::endpoint endpoint(address, o.port);
    impl->acceptor.open(endpoint.protocol(), ec);
    if (!ec) {
        impl->acceptor.set_option(detail::net::socket_base::reuse_address(true), ec);
        impl->acceptor.bind(endpoint, ec);
    }
    if (!ec) {
        impl->acceptor.listen(detail::net::socket_base::max_listen_connections, ec);
    }
    if (ec) {
        return protocol::Status{protocol::ErrorCode::kConfigInvalidValue,
                                fmt::format("cannot listen on {}:{}: {}", o.listen_address, o.port, ec.message())};
    }
    detail::net::co_spawn(impl->acceptor.get_executor(), detail::accept_loop(impl->shared, impl->acceptor, impl->ioc),
                          detail::net::detached);
    for (std::size_t i = 0; i < std::max<std::size_t>(1, o.io_threads); ++i) {
        impl->threads.emplace_back([ioc = &impl->ioc] { ioc->run(); });
    }
    detail::kLog.info("listening on {}:{} ({})", o.listen_address, impl->acceptor.local_endpoint().port(),
                      impl->shared.tls ? "HTTPS and WSS" : "plain HTTP and WS");
    return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Server(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
Server::~Server() { stop(); }

std::uint16_t Server::port() const {
    detail::beast::error_code ec;
    return m_impl->acceptor.local_endpoint(ec).port();
}

const ServerStats& Server::stats() const { return m_impl->shared.stats; }

void Server::stop() {
    if (m_impl->stopped) {
        return;
    }
    m_impl->stopped = true;
    detail::net::post(m_impl->acceptor.get_executor(), [this] {
        detail::beast::error_code ignored;
        m_impl->acceptor.close(ignored);
    });
    {
        std::lock_guard lock(m_impl->shared.mutex);
        m_impl->shared.stopping = true;
        for (auto& [id, abort] : m_impl->shared.aborts) {
            abort();
        }
    }
    // Give connections a moment to close cleanly, then stop whatever is left.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (std::chrono::steady_clock::now() < deadline) {
        {
            std::lock_guard lock(m_impl->shared.mutex);
            if (m_impl->shared.aborts.empty()) {
                break;
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    m_impl->ioc.stop();
    for (auto& t : m_impl->threads) {
        t.join();
    }
    m_impl->shared.workers.join();
    m_impl->shared.upload_workers.join();
}

}  // namespace sluice::http
