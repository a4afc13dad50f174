// Blocking HTTP/1.0 GET with a deadline (RFC 9112 message syntax); TLS via OpenSSL SSL_* (libssl).
#include "server/auth/http_get.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <memory>

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

namespace sluice::auth {
namespace {

using protocol::ErrorCode;
using protocol::Status;
using Clock = std::chrono::steady_clock;

Status fetch_error(std::string message) { return {ErrorCode::kAuthJwksFetchFailed, std::move(message)}; }

int remaining_ms(Clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return left > 0 ? static_cast<int>(left) : 0;
}

bool wait_fd(int fd, short events, Clock::time_point deadline) {
    pollfd p{fd, events, 0};
    for (;;) {
        const int n = ::poll(&p, 1, remaining_ms(deadline));
        if (n > 0) return true;
        if (n == 0 || errno != EINTR) return false;
    }
}

class Socket {
public:
    explicit Socket(int fd) : m_fd(fd) {}
    ~Socket() {
        if (m_fd >= 0) ::close(m_fd);
    }
    Socket(const Socket&) = delete;
    Socket& operator=(const Socket&) = delete;
    [[nodiscard]] int fd() const { return m_fd; }

private:
    int m_fd;
};

// Connects to the first address that answers before the deadline; the socket is non-blocking.
protocol::Result<std::unique_ptr<Socket>> connect_to(const HttpUrl& url, Clock::time_point deadline) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (const int rc = ::getaddrinfo(url.host.c_str(), url.port.c_str(), &hints, &found); rc != 0) {
        return fetch_error(fmt::format("cannot resolve {}: {}", url.host, ::gai_strerror(rc)));
    }
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> list(found, ::freeaddrinfo);
    std::string last_error = "no address";
    for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
        auto sock = std::make_unique<Socket>(
            ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol));
        if (sock->fd() < 0) {
            last_error = std::strerror(errno);
            continue;
        }
        if (::connect(sock->fd(), a->ai_addr, a->ai_addrlen) == 0) {
            return sock;
        }
        if (errno != EINPROGRESS) {
            last_error = std::strerror(errno);
            continue;
        }
        if (!wait_fd(sock->fd(), POLLOUT, deadline)) {
            last_error = "connect timed out";
            continue;
        }
        int err = 0;
        socklen_t len = sizeof(err);
        if (::getsockopt(sock->fd(), SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) {
            return sock;
        }
        last_error = std::strerror(err);
    }
    return fetch_error(fmt::format("cannot connect to {}:{}: {}", url.host, url.port, last_error));
}

// Plain or TLS byte stream over a connected non-blocking socket, every call bounded by the deadline.
class Stream {
public:
    Stream(int fd, Clock::time_point deadline) : m_fd(fd), m_deadline(deadline) {}
    ~Stream() {
        if (m_ssl != nullptr) SSL_free(m_ssl);
        if (m_ctx != nullptr) SSL_CTX_free(m_ctx);
    }
    Stream(const Stream&) = delete;
    Stream& operator=(const Stream&) = delete;

    Status start_tls(const std::string& host) {
        m_ctx = SSL_CTX_new(TLS_client_method());
        if (m_ctx == nullptr) return fetch_error("cannot create a TLS context");
        SSL_CTX_set_verify(m_ctx, SSL_VERIFY_PEER, nullptr);
        SSL_CTX_set_min_proto_version(m_ctx, TLS1_2_VERSION);
        if (SSL_CTX_set_default_verify_paths(m_ctx) != 1) return fetch_error("cannot load the system CA certificates");
        m_ssl = SSL_new(m_ctx);
        if (m_ssl == nullptr || SSL_set_fd(m_ssl, m_fd) != 1 || SSL_set_tlsext_host_name(m_ssl, host.c_str()) != 1 ||
            SSL_set1_host(m_ssl, host.c_str()) != 1) {
            return fetch_error("cannot set up TLS");
        }
        for (;;) {
            ERR_clear_error();
            const int rc = SSL_connect(m_ssl);
            if (rc == 1) return Status::ok();
            if (!wait_ssl(rc)) {
                const long verify = SSL_get_verify_result(m_ssl);
                if (verify != X509_V_OK) {
                    return fetch_error(
                        fmt::format("TLS certificate of {} rejected: {}", host, X509_verify_cert_error_string(verify)));
                }
                return fetch_error(fmt::format("TLS handshake with {} failed", host));
            }
        }
    }

    bool write_all(std::string_view data) {
        while (!data.empty()) {
            long n = 0;
            if (m_ssl != nullptr) {
                ERR_clear_error();
                const int rc = SSL_write(m_ssl, data.data(), static_cast<int>(data.size()));
                if (rc <= 0) {
                    if (!wait_ssl(rc)) return false;
                    continue;
                }
                n = rc;
            } else {
                n = ::send(m_fd, data.data(), data.size(), MSG_NOSIGNAL);
                if (n < 0) {
                    if ((errno != EAGAIN && errno != EINTR) || !wait_fd(m_fd, POLLOUT, m_deadline)) return false;
                    continue;
                }
            }
            data.remove_prefix(static_cast<std::size_t>(n));
        }
        return true;
    }

    // Bytes read (0 at end of stream), or -1 on error or timeout.
    long read_some(char* buf, std::size_t size) {
        for (;;) {
            if (m_ssl != nullptr) {
                ERR_clear_error();
                const int rc = SSL_read(m_ssl, buf, static_cast<int>(size));
                if (rc > 0) return rc;
                if (SSL_get_error(m_ssl, rc) == SSL_ERROR_ZERO_RETURN) return 0;
                if (!wait_ssl(rc)) return -1;
            } else {
                const auto n = ::recv(m_fd, buf, size, 0);
                if (n >= 0) return n;
                if ((errno != EAGAIN && errno != EINTR) || !wait_fd(m_fd, POLLIN, m_deadline)) return -1;
            }
        }
    }

private:
    bool wait_ssl(int rc) {
        switch (SSL_get_error(m_ssl, rc)) {
            case SSL_ERROR_WANT_READ:
                return wait_fd(m_fd, POLLIN, m_deadline);
            case SSL_ERROR_WANT_WRITE:
                return wait_fd(m_fd, POLLOUT, m_deadline);
            default:
                return false;
        }
    }

    int m_fd;
    Clock::time_point m_deadline;
    SSL_CTX* m_ctx = nullptr;
    SSL* m_ssl = nullptr;
};

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
}

}  // namespace

protocol::Result<HttpUrl> parse_http_url(std::string_view url) {
    auto bad = [&](std::string_view why) {
        return Status{ErrorCode::kConfigInvalidValue, fmt::format("auth.jwks_uri: {}", why)};
    };
    HttpUrl out;
    if (url.starts_with("https://")) {
        out.tls = true;
        url.remove_prefix(8);
    } else if (url.starts_with("http://")) {
        url.remove_prefix(7);
    } else {
        return bad("must start with http:// or https://");
    }
    const auto slash = url.find_first_of("/?#");
    std::string_view authority = url.substr(0, slash);
    std::string_view rest = slash == std::string_view::npos ? std::string_view() : url.substr(slash);
    if (rest.find('#') != std::string_view::npos) {
        return bad("must not have a #fragment");
    }
    if (authority.find('@') != std::string_view::npos) {
        return bad("must not hold a user name or password");
    }
    out.port = out.tls ? "443" : "80";
    if (authority.starts_with('[')) {  // [IPv6]:port
        const auto close = authority.find(']');
        if (close == std::string_view::npos) return bad("unterminated [IPv6] address");
        out.host = std::string(authority.substr(1, close - 1));
        authority.remove_prefix(close + 1);
        if (!authority.empty() && !authority.starts_with(':')) return bad("unexpected text after the [IPv6] address");
        if (!authority.empty()) out.port = std::string(authority.substr(1));
    } else if (const auto colon = authority.rfind(':'); colon != std::string_view::npos) {
        out.host = std::string(authority.substr(0, colon));
        out.port = std::string(authority.substr(colon + 1));
    } else {
        out.host = std::string(authority);
    }
    int port = 0;
    const auto [end, ec] = std::from_chars(out.port.data(), out.port.data() + out.port.size(), port);
    if (ec != std::errc() || end != out.port.data() + out.port.size() || port < 1 || port > 65535) {
        return bad("port must be 1..65535");
    }
    if (out.host.empty()) {
        return bad("has no host");
    }
    out.target = rest.empty() ? "/" : (rest.starts_with('?') ? "/" + std::string(rest) : std::string(rest));
    return out;
}

protocol::Result<std::string> http_get(const HttpUrl& url, std::chrono::milliseconds timeout,
                                       std::size_t max_body_bytes) {
    const auto deadline = Clock::now() + timeout;
    auto sock = connect_to(url, deadline);
    if (!sock) {
        return sock.status();
    }
    Stream stream((*sock)->fd(), deadline);
    if (url.tls) {
        if (auto st = stream.start_tls(url.host); !st) {
            return st;
        }
    }
    const bool default_port = url.port == (url.tls ? "443" : "80");
    const std::string host_header = (url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host) +
                                    (default_port ? "" : ":" + url.port);
    const std::string request = fmt::format(
        "GET {} HTTP/1.0\r\nHost: {}\r\nAccept: application/json\r\nUser-Agent: sluice\r\nConnection: close\r\n\r\n",
        url.target, host_header);
    if (!stream.write_all(request)) {
        return fetch_error(fmt::format("sending the request to {} failed or timed out", url.host));
    }
    const std::size_t max_total = max_body_bytes + 64 * 1024;  // body plus headers
    std::string reply;
    char buf[16 * 1024];
    for (;;) {
        const long n = stream.read_some(buf, sizeof(buf));
        if (n < 0) {
            return fetch_error(fmt::format("reading the reply from {} failed or timed out", url.host));
        }
        if (n == 0) break;
        reply.append(buf, static_cast<std::size_t>(n));
        if (reply.size() > max_total) {
            return fetch_error(fmt::format("reply from {} is larger than {} bytes", url.host, max_body_bytes));
        }
    }
    const auto header_end = reply.find("\r\n\r\n");
    if (header_end == std::string::npos || !reply.starts_with("HTTP/1.")) {
        return fetch_error(fmt::format("reply from {} is not HTTP", url.host));
    }
    const std::string_view head(reply.data(), header_end);
    const auto line_end = head.find("\r\n");
    const std::string_view status_line = head.substr(0, line_end);
    const auto space = status_line.find(' ');
    const std::string_view code =
        space == std::string_view::npos ? std::string_view() : status_line.substr(space + 1, 3);
    if (code != "200") {
        return fetch_error(fmt::format("{} answered '{}', not 200", url.host,
                                       status_line.substr(0, std::min<std::size_t>(status_line.size(), 80))));
    }
    std::string body = reply.substr(header_end + 4);
    // Content-Length, when given, must match what arrived (a cut connection is not a JWKS).
    const std::string lowered = lower(head);
    if (const auto pos = lowered.find("\r\ncontent-length:"); pos != std::string::npos) {
        std::size_t p = pos + 17;
        while (p < lowered.size() && lowered[p] == ' ') ++p;
        std::size_t length = 0;
        const auto [end, ec] = std::from_chars(lowered.data() + p, lowered.data() + lowered.size(), length);
        if (ec != std::errc() || length != body.size()) {
            return fetch_error(fmt::format("reply from {} is shorter or longer than its Content-Length", url.host));
        }
    }
    if (lowered.find("\r\ntransfer-encoding:") != std::string::npos) {
        return fetch_error(fmt::format("reply from {} uses a transfer encoding, not allowed in HTTP/1.0", url.host));
    }
    if (body.size() > max_body_bytes) {
        return fetch_error(fmt::format("reply from {} is larger than {} bytes", url.host, max_body_bytes));
    }
    return body;
}

}  // namespace sluice::auth
