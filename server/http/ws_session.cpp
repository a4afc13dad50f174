// The WebSocket endpoint GET /sync/ws: the same server lines as text frames, and the client
// messages sync_request, token, update_subscriptions, upload (protocol/README.md, "WebSocket").
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include "protocol/wire/client_message.h"
#include "protocol/wire/json_write.h"
#include "server/http/detail/connection.h"

namespace sluice::http::detail {
namespace {

using protocol::ErrorCode;
using protocol::Status;
using namespace net::experimental::awaitable_operators;
namespace websocket = beast::websocket;
constexpr auto kTuple = net::as_tuple(net::use_awaitable);

const core::Logger kLog("ws");

std::string token_from(const Request& request) {
    std::string authorization(request[bhttp::field::authorization]);
    if (!authorization.empty()) {
        return authorization;
    }
    const auto target = std::string_view(request.target());
    for (const auto* key : {"?token=", "&token="}) {
        if (auto at = target.find(key); at != std::string_view::npos) {
            const auto start = at + 7;
            return std::string(target.substr(start, target.find('&', start) - start));
        }
    }
    return {};
}

// Reads client messages until the client goes away or a message is invalid; sets the close code
// for an invalid one (1008, or 1009 when too large). A message is read in pieces and refused once
// it passes limits.max_message_bytes, so the client gets the SL5002 line however large the frame
// header says it is (Beast's own limit is off: it would close without a reason).
template <class WebSocket>
net::awaitable<void> read_messages(Shared& shared, WebSocket& ws, Pump& pump, auth::VerifiedToken& token,
                                   websocket::close_code& close_code) {
    const std::size_t max_bytes = shared.options.max_message_bytes;
    beast::flat_buffer buffer;
    for (;;) {
        buffer.clear();
        beast::error_code ec;
        do {
            auto [rec, n] = co_await ws.async_read_some(buffer, 16 * 1024, kTuple);
            ec = rec;
        } while (!ec && buffer.size() <= max_bytes && !ws.is_message_done());
        if (ec) {
            pump.abort();
            co_return;
        }
        if (buffer.size() > max_bytes) {
            close_code = websocket::close_code::too_big;
            pump.fail({ErrorCode::kMessageTooLarge, fmt::format("a WebSocket message is over {} bytes", max_bytes)});
            co_return;
        }
        if (pump.state() != Pump::State::kRunning) {
            co_return;
        }
        const auto text = beast::buffers_to_string(buffer.data());
        auto message = protocol::wire::parse_client_message(text, max_bytes);
        if (!message) {
            close_code = websocket::close_code::policy_error;
            pump.fail(message.status());
            co_return;
        }
        std::vector<std::string> lines;
        if (auto* sync = std::get_if<protocol::wire::SyncRequestMessage>(&message.value())) {
            auto session = sync::SyncSession::create(shared.deps.rules, token, std::move(sync->request),
                                                     shared.options.session, shared.now());
            if (!session) {
                close_code = websocket::close_code::policy_error;
                pump.fail(session.status());
                co_return;
            }
            pump.set_session(std::move(session).value(), {});
        } else if (auto* fresh = std::get_if<protocol::wire::TokenMessage>(&message.value())) {
            auto verified = shared.deps.verifier->verify(fresh->token);
            if (!verified) {
                shared.stats.auth_failures++;
                close_code = websocket::close_code::policy_error;
                pump.fail(verified.status());
                co_return;
            }
            if (verified->user_id != token.user_id) {
                close_code = websocket::close_code::policy_error;
                pump.fail({ErrorCode::kAuthInvalid, "the new token is for another user than the session's"});
                co_return;
            }
            token = verified.value();
            pump.change_session([fresh_token = std::move(verified).value(), now = shared.now()](
                                    sync::SyncSession& session, std::vector<std::string>& out) mutable {
                (void)session.replace_token(std::move(fresh_token), now, out);  // same user: cannot fail
            });
        } else if (auto* update = std::get_if<protocol::wire::UpdateSubscriptionsMessage>(&message.value())) {
            // A new complete subscription list: the session answers with a new full checkpoint,
            // sending only data the client does not hold yet.
            if (pump.session() != nullptr) {
                pump.change_session([streams = std::move(update->streams)](sync::SyncSession& session,
                                                                           std::vector<std::string>&) mutable {
                    session.update_streams(std::move(streams));
                });
                continue;
            }
            protocol::wire::SyncRequest request;  // subscriptions before any sync_request: a session for them
            request.streams = std::move(update->streams);
            auto session = sync::SyncSession::create(shared.deps.rules, token, std::move(request),
                                                     shared.options.session, shared.now());
            if (!session) {
                close_code = websocket::close_code::policy_error;
                pump.fail(session.status());
                co_return;
            }
            pump.set_session(std::move(session).value(), {});
        } else if (auto* upload = std::get_if<protocol::wire::UploadMessage>(&message.value())) {
            // Runs on the upload pool; the next message is read once it is answered (in order).
            co_await websocket_upload(shared, token, pump, *upload);
        }
    }
}

// TCP_CORK on or off: while on, the kernel holds partial segments until it is turned off.
void set_cork(int fd, bool on) {
    const int value = on ? 1 : 0;
    (void)::setsockopt(fd, IPPROTO_TCP, TCP_CORK, &value, sizeof value);
}

// Admission before the upgrade: the verified token and a connection slot, or why not. A plain
// function on purpose: g++ 12 destroys non-trivial locals declared in branches of a coroutine twice.
struct Admission {
    Status failure;
    std::optional<auth::VerifiedToken> token;
    std::unique_ptr<SessionSlot> slot;
};

Admission admit(Shared& shared, const Request& request) {
    Admission out;
    const auto authorization = token_from(request);
    if (authorization.empty()) {
        out.failure = Status{ErrorCode::kAuthMissing, "no token: send Authorization: Bearer <jwt> or ?token=<jwt>"};
        return out;
    }
    auto token = shared.deps.verifier->verify(authorization);
    if (!token) {
        out.failure = token.status();
        return out;
    }
    auto slot = SessionSlot::acquire(shared, token->user_id);
    if (!slot) {
        out.failure = slot.status();
        return out;
    }
    out.token = std::move(token).value();
    out.slot = std::move(slot).value();
    return out;
}

}  // namespace

template <class Stream>
net::awaitable<void> run_websocket(Shared& shared, websocket::stream<Stream> ws, Request request) {
    auto reject = [&](const Status& status) -> net::awaitable<void> {  // never pass it a temporary (g++ 12 coroutines)
        if (status_for(status.code()) == bhttp::status::unauthorized) {
            shared.stats.auth_failures++;
        }
        bhttp::response<bhttp::string_body> res{status_for(status.code()), request.version()};
        res.set(bhttp::field::server, "sluice");
        res.set(bhttp::field::content_type, "application/json");
        add_cors(shared, request, res.base());
        res.keep_alive(false);
        res.body() = error_body(status);
        res.prepare_payload();
        auto [ec, n] = co_await bhttp::async_write(ws.next_layer(), res, kTuple);
        (void)ec;
    };
    Admission admission = admit(shared, request);
    if (!admission.failure.is_ok()) {
        co_await reject(admission.failure);
        co_return;
    }
    auth::VerifiedToken& token = *admission.token;  // replaced by `token` messages

    beast::get_lowest_layer(ws).expires_never();
    ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws.set_option(websocket::stream_base::decorator([&shared, &request](websocket::response_type& res) {
        res.set(bhttp::field::server, "sluice");
        add_cors(shared, request, res.base());
    }));
    ws.read_message_max(0);  // read_messages enforces limits.max_message_bytes itself
    auto [aec] = co_await ws.async_accept(request, kTuple);
    if (aec) {
        co_return;
    }
    request = Request{};  // the headers are no longer needed: free them for the session's lifetime
    ws.text(true);

    auto executor = co_await net::this_coro::executor;
    auto pump = std::make_shared<Pump>(
        shared, executor,
        [&ws](std::deque<std::string>& lines) -> net::awaitable<beast::error_code> {
            // One frame per line; corked, so a batch (a diff, its data and checkpoint_complete) leaves
            // in as few TCP segments as it fills rather than one each.
            const int fd = beast::get_lowest_layer(ws).socket().native_handle();
            set_cork(fd, lines.size() > 1);
            beast::error_code ec;
            for (const auto& line : lines) {
                auto [wec, n] = co_await ws.async_write(net::buffer(line), kTuple);
                ec = wec;
                if (ec) {
                    break;
                }
            }
            set_cork(fd, false);
            co_return ec;
        },
        [&ws] {
            beast::error_code ignored;
            beast::get_lowest_layer(ws).socket().close(ignored);
        },
        false);
    ConnectionGuard guard(shared, [executor, weak = std::weak_ptr<Pump>(pump)] {
        net::post(executor, [weak] {
            if (auto p = weak.lock()) {
                p->finish();
            }
        });
    });
    websocket::close_code close_code = websocket::close_code::normal;
    auto reader = [&]() -> net::awaitable<void> {
        co_await read_messages(shared, ws, *pump, token, close_code);
    };
    auto pump_then_close = [&]() -> net::awaitable<void> {
        co_await pump->run();
        // The stream ended (token expired, error, too slow): close so the reader returns.
        if (beast::get_lowest_layer(ws).socket().is_open()) {
            auto [cec] = co_await ws.async_close(pump->going_away() ? websocket::close_code::going_away : close_code,
                                                 kTuple);
            if (cec) {
                beast::error_code ignored;
                beast::get_lowest_layer(ws).socket().close(ignored);
            }
        }
    };
    co_await (reader() && pump_then_close());
    kLog.debug("websocket session user={} ended", token.user_id);
}

template <class Stream>
void start_websocket(Shared& shared, Stream stream, Request request) {
    auto executor = stream.get_executor();
    net::co_spawn(executor, run_websocket(shared, websocket::stream<Stream>(std::move(stream)), std::move(request)),
                  log_failure);
}

template void start_websocket<PlainStream>(Shared& shared, PlainStream stream, Request request);
template void start_websocket<TlsStream>(Shared& shared, TlsStream stream, Request request);

}  // namespace sluice::http::detail
