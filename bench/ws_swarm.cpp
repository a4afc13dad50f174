// WsSwarm (see ws_swarm.h): RFC 6455 client side, just enough for the benchmarks: masked text
// frames out; text, continuation, ping and close frames in.
#include "bench/ws_swarm.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace sluice::bench {

WsSwarm::WsSwarm(std::uint16_t port, std::string token, std::string sync_request, OnMessage on_message)
    : m_port(port),
      m_token(std::move(token)),
      m_sync_request(std::move(sync_request)),
      m_on_message(std::move(on_message)),
      m_epoll(::epoll_create1(EPOLL_CLOEXEC)) {
    if (m_epoll < 0) {
        throw std::runtime_error(std::string("epoll_create1: ") + std::strerror(errno));
    }
}

WsSwarm::~WsSwarm() {
    for (auto& c : m_clients) {
        if (c.fd >= 0) {
            ::close(c.fd);
        }
    }
    ::close(m_epoll);
}

std::string WsSwarm::masked_frame(int opcode, std::string_view payload) {
    std::string frame;
    frame.push_back(static_cast<char>(0x80 | opcode));
    const std::size_t n = payload.size();
    if (n < 126) {
        frame.push_back(static_cast<char>(0x80 | n));
    } else if (n < 65536) {
        frame.push_back(static_cast<char>(0x80 | 126));
        frame.push_back(static_cast<char>(n >> 8));
        frame.push_back(static_cast<char>(n & 0xff));
    } else {
        frame.push_back(static_cast<char>(0x80 | 127));
        for (int i = 7; i >= 0; --i) {
            frame.push_back(static_cast<char>((static_cast<std::uint64_t>(n) >> (8 * i)) & 0xff));
        }
    }
    const char mask[4] = {0x1b, 0x2c, 0x3d, 0x4e};
    frame.append(mask, 4);
    for (std::size_t i = 0; i < n; ++i) {
        frame.push_back(static_cast<char>(payload[i] ^ mask[i % 4]));
    }
    return frame;
}

void WsSwarm::start_client() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        throw std::runtime_error(std::string("socket: ") + std::strerror(errno) + " (raise ulimit -n)");
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(m_port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 && errno != EINPROGRESS) {
        throw std::runtime_error(std::string("connect: ") + std::strerror(errno));
    }
    Client client;
    client.fd = fd;
    client.out = "GET /sync/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                 "Authorization: Bearer " +
                 m_token + "\r\n\r\n";
    m_clients.push_back(std::move(client));
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
    ev.data.u64 = m_clients.size() - 1;
    ::epoll_ctl(m_epoll, EPOLL_CTL_ADD, fd, &ev);
    ++m_upgrading;
}

void WsSwarm::flush(Client& client) {
    while (!client.out.empty()) {
        const auto n = ::send(client.fd, client.out.data(), client.out.size(), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOTCONN) {
                return;  // EPOLLOUT (edge-triggered) tells when to go on
            }
            close_client(client);
            return;
        }
        client.out.erase(0, static_cast<std::size_t>(n));
    }
}

void WsSwarm::close_client(Client& client) {
    if (client.state == State::kClosed) {
        return;
    }
    if (client.state != State::kOpen) {
        --m_upgrading;
        m_refused = true;
    }
    client.state = State::kClosed;
    ::close(client.fd);
    client.fd = -1;
    ++m_closed;
}

void WsSwarm::on_event(std::size_t index, std::uint32_t events) {
    auto& client = m_clients[index];
    if (client.state == State::kClosed) {
        return;
    }
    if (client.state == State::kConnecting && (events & EPOLLOUT) != 0) {
        client.state = State::kUpgrading;
    }
    if ((events & EPOLLOUT) != 0) {
        flush(client);
    }
    if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) {
        read(index);
    }
}

void WsSwarm::read(std::size_t index) {
    auto& client = m_clients[index];
    char buffer[65536];
    for (;;) {
        const auto n = ::recv(client.fd, buffer, sizeof buffer, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
            close_client(client);
            return;
        }
        if (n < 0) {
            break;
        }
        client.in.append(buffer, static_cast<std::size_t>(n));
        if (static_cast<std::size_t>(n) < sizeof buffer) {
            break;  // a short read drained the socket: no need to see EAGAIN (edge-triggered is still satisfied)
        }
    }
    if (client.state == State::kUpgrading || client.state == State::kConnecting) {
        const auto end = client.in.find("\r\n\r\n");
        if (end == std::string::npos) {
            return;
        }
        if (client.in.compare(0, 12, "HTTP/1.1 101") != 0) {
            close_client(client);
            return;
        }
        client.in.erase(0, end + 4);
        client.state = State::kOpen;
        --m_upgrading;
        client.out += masked_frame(1, m_sync_request);
        flush(client);
    }
    parse_frames(index);
}

void WsSwarm::parse_frames(std::size_t index) {
    std::size_t at = 0;
    for (;;) {
        auto& client = m_clients[index];  // the callback may not add clients, but re-take the reference anyway
        const std::string& in = client.in;
        if (in.size() - at < 2) {
            break;
        }
        const auto b0 = static_cast<unsigned char>(in[at]);
        const auto b1 = static_cast<unsigned char>(in[at + 1]);
        std::size_t header = 2;
        std::uint64_t length = b1 & 0x7f;
        if (length == 126) {
            if (in.size() - at < 4) {
                break;
            }
            length = (static_cast<std::uint64_t>(static_cast<unsigned char>(in[at + 2])) << 8) |
                     static_cast<unsigned char>(in[at + 3]);
            header = 4;
        } else if (length == 127) {
            if (in.size() - at < 10) {
                break;
            }
            length = 0;
            for (std::size_t i = 0; i < 8; ++i) {
                length = (length << 8) | static_cast<unsigned char>(in[at + 2 + i]);
            }
            header = 10;
        }
        if (in.size() - at < header + length) {
            break;
        }
        const std::string_view payload(in.data() + at + header, length);
        at += header + length;
        const int opcode = b0 & 0x0f;
        if (opcode == 8) {
            close_client(client);
            return;
        }
        if (opcode == 9) {
            client.out += masked_frame(10, payload);
            flush(client);
            continue;
        }
        if (opcode == 10) {
            continue;
        }
        const bool fin = (b0 & 0x80) != 0;
        if (fin && client.message.empty()) {
            m_on_message(index, payload);
        } else {
            client.message.append(payload);
            if (fin) {
                std::string whole = std::move(client.message);
                client.message.clear();
                m_on_message(index, whole);
            }
        }
    }
    m_clients[index].in.erase(0, at);
}

void WsSwarm::poll(std::chrono::milliseconds wait) {
    epoll_event events[256];
    const int n = ::epoll_wait(m_epoll, events, 256, static_cast<int>(wait.count()));
    for (int i = 0; i < n; ++i) {
        on_event(static_cast<std::size_t>(events[i].data.u64), events[i].events);
    }
}

bool WsSwarm::open(std::size_t count, std::size_t in_flight, std::chrono::steady_clock::time_point deadline) {
    const std::size_t target = m_clients.size() + count;
    while (std::chrono::steady_clock::now() < deadline) {
        while (m_clients.size() < target && m_upgrading < in_flight) {
            start_client();
        }
        if (m_refused) {
            return false;
        }
        if (m_clients.size() == target && m_upgrading == 0) {
            return true;
        }
        poll(std::chrono::milliseconds(50));
    }
    return false;
}

bool WsSwarm::poll_until(const std::function<bool()>& done, std::chrono::steady_clock::time_point deadline) {
    while (!done() && std::chrono::steady_clock::now() < deadline) {
        poll(std::chrono::milliseconds(20));
    }
    return done();
}

}  // namespace sluice::bench
