// Many WebSocket clients of /sync/ws on one thread (non-blocking sockets and epoll), for the serving
// benchmarks: each connects, upgrades, sends one sync_request and then hands every text message it
// receives to a callback. Plain POSIX, so the clients cost the benchmark process almost nothing.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::bench {

class WsSwarm {
public:
    // (client index, a whole text message)
    using OnMessage = std::function<void(std::size_t client, std::string_view message)>;

    WsSwarm(std::uint16_t port, std::string token, std::string sync_request, OnMessage on_message);
    ~WsSwarm();
    WsSwarm(const WsSwarm&) = delete;
    WsSwarm& operator=(const WsSwarm&) = delete;

    // Opens `count` more clients, at most `in_flight` handshaking at once, serving events meanwhile;
    // returns once each is upgraded and has sent its sync request (false on a refused upgrade or
    // after `deadline`).
    bool open(std::size_t count, std::size_t in_flight, std::chrono::steady_clock::time_point deadline);
    // Serves events (reads messages, answers pings) for up to `wait`.
    void poll(std::chrono::milliseconds wait);
    // Serves events until `done()` or the deadline; returns done().
    bool poll_until(const std::function<bool()>& done, std::chrono::steady_clock::time_point deadline);

    [[nodiscard]] std::size_t size() const { return m_clients.size(); }
    [[nodiscard]] std::size_t closed() const { return m_closed; }

private:
    enum class State : std::uint8_t { kConnecting, kUpgrading, kOpen, kClosed };
    struct Client {
        int fd = -1;
        State state = State::kConnecting;
        std::string in;       // bytes not yet parsed
        std::string message;  // text of a fragmented message so far
        std::string out;      // bytes not yet sent
    };

    void start_client();
    void on_event(std::size_t index, std::uint32_t events);
    void flush(Client& client);
    void read(std::size_t index);
    void parse_frames(std::size_t index);
    void close_client(Client& client);
    [[nodiscard]] static std::string masked_frame(int opcode, std::string_view payload);

    std::uint16_t m_port;
    std::string m_token;
    std::string m_sync_request;
    OnMessage m_on_message;
    int m_epoll = -1;
    std::vector<Client> m_clients;
    std::size_t m_upgrading = 0;  // connecting or waiting for 101
    std::size_t m_closed = 0;
    bool m_refused = false;
};

}  // namespace sluice::bench
