// A one-thread HTTP server on 127.0.0.1, port 0, that answers every request with the current body
// (a JWKS in the tests) and counts requests. Test-only.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#include <fmt/format.h>

namespace sluice::test {

class JwksServer {
public:
    explicit JwksServer(std::string body = {}) : m_body(std::move(body)) {
        m_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = 0;
        socklen_t len = sizeof(addr);
        if (m_fd < 0 || ::bind(m_fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
            ::listen(m_fd, 16) != 0 || ::getsockname(m_fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
            throw std::runtime_error("JwksServer: cannot listen");
        }
        m_port = ntohs(addr.sin_port);
        m_thread = std::thread([this] { run(); });
    }
    ~JwksServer() {
        m_stop = true;
        m_thread.join();
        ::close(m_fd);
    }
    JwksServer(const JwksServer&) = delete;
    JwksServer& operator=(const JwksServer&) = delete;

    [[nodiscard]] std::string url() const { return fmt::format("http://127.0.0.1:{}/.well-known/jwks.json", m_port); }
    [[nodiscard]] int requests() const { return m_requests.load(); }
    void set_body(std::string body, int status = 200) {
        std::lock_guard lock(m_mutex);
        m_body = std::move(body);
        m_status = status;
    }

private:
    void run() {
        while (!m_stop) {
            pollfd p{m_fd, POLLIN, 0};
            if (::poll(&p, 1, 20) <= 0) {
                continue;
            }
            const int conn = ::accept4(m_fd, nullptr, nullptr, SOCK_CLOEXEC);
            if (conn < 0) {
                continue;
            }
            serve(conn);
            ::close(conn);
        }
    }

    void serve(int conn) {
        std::string request;
        char buf[4096];
        while (request.find("\r\n\r\n") == std::string::npos) {
            pollfd p{conn, POLLIN, 0};
            if (::poll(&p, 1, 2000) <= 0) {
                return;
            }
            const auto n = ::recv(conn, buf, sizeof(buf), 0);
            if (n <= 0) {
                return;
            }
            request.append(buf, static_cast<std::size_t>(n));
        }
        std::string reply;
        {
            std::lock_guard lock(m_mutex);
            reply = fmt::format("HTTP/1.0 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
                                m_status, m_body.size(), m_body);
        }
        std::string_view rest = reply;
        while (!rest.empty()) {
            const auto n = ::send(conn, rest.data(), rest.size(), MSG_NOSIGNAL);
            if (n <= 0) {
                return;
            }
            rest.remove_prefix(static_cast<std::size_t>(n));
        }
        m_requests.fetch_add(1);
    }

    int m_fd = -1;
    int m_port = 0;
    std::atomic<bool> m_stop{false};
    std::atomic<int> m_requests{0};
    std::mutex m_mutex;  // guards m_body and m_status (test thread writes, server thread reads)
    std::string m_body;
    int m_status = 200;
    std::thread m_thread;
};

}  // namespace sluice::test
