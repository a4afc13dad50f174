// Test HTTP/WebSocket clients (see test_client.h).
#include "tests/server/http/test_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

namespace sluice::test {
namespace {

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

// Parses "HTTP/1.1 200 OK\r\nName: value\r\n...\r\n\r\n" at the front of raw; removes it.
bool parse_head(std::string& raw, int& status, std::map<std::string, std::string>& headers) {
    const auto end = raw.find("\r\n\r\n");
    if (end == std::string::npos) {
        return false;
    }
    const auto head = raw.substr(0, end);
    raw.erase(0, end + 4);
    status = std::stoi(head.substr(9, 3));
    std::size_t pos = head.find("\r\n");
    while (pos != std::string::npos && pos < head.size()) {
        const auto next = head.find("\r\n", pos + 2);
        const auto line = head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
        if (auto colon = line.find(':'); colon != std::string::npos) {
            auto value = line.substr(colon + 1);
            value.erase(0, value.find_first_not_of(' '));
            headers[lower(line.substr(0, colon))] = value;
        }
        pos = next;
    }
    return true;
}

// Removes complete chunks from raw into body; true once the last chunk was seen.
bool dechunk(std::string& raw, std::string& body) {
    for (;;) {
        const auto eol = raw.find("\r\n");
        if (eol == std::string::npos) {
            return false;
        }
        const auto size = std::stoul(raw.substr(0, eol), nullptr, 16);
        if (raw.size() < eol + 2 + size + 2) {
            return false;
        }
        body.append(raw, eol + 2, size);
        raw.erase(0, eol + 2 + size + 2);
        if (size == 0) {
            return true;
        }
    }
}

std::string head_of(const std::string& method, const std::string& path, const Headers& headers, std::size_t length,
                    bool close) {
    std::string out = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    for (const auto& [k, v] : headers) {
        out += k + ": " + v + "\r\n";
    }
    if (length > 0 || method == "POST") {
        out += "Content-Length: " + std::to_string(length) + "\r\n";
    }
    if (close) {
        out += "Connection: close\r\n";
    }
    return out + "\r\n";
}

}  // namespace

Socket::Socket(std::uint16_t port, const TlsClientOptions* tls) {
    m_fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(m_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        throw std::runtime_error(std::string("connect: ") + std::strerror(errno));
    }
    int one = 1;
    ::setsockopt(m_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (tls == nullptr) {
        return;
    }
    auto* ctx = SSL_CTX_new(TLS_client_method());
    m_ssl_ctx = ctx;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    if (SSL_CTX_load_verify_locations(ctx, tls->ca_file.c_str(), nullptr) != 1) {
        throw std::runtime_error("cannot load CA file " + tls->ca_file);
    }
    auto* ssl = SSL_new(ctx);
    m_ssl = ssl;
    SSL_set_fd(ssl, m_fd);
    if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), tls->host.c_str()) != 1) {
        SSL_set1_host(ssl, tls->host.c_str());
        SSL_set_tlsext_host_name(ssl, tls->host.c_str());
    }
    if (SSL_connect(ssl) != 1) {
        char text[256];
        ERR_error_string_n(ERR_get_error(), text, sizeof text);
        m_tls_error = text;
        close();
    }
}

Socket::~Socket() { close(); }

void Socket::close() {
    if (m_ssl != nullptr) {
        SSL_free(static_cast<SSL*>(m_ssl));
        m_ssl = nullptr;
    }
    if (m_ssl_ctx != nullptr) {
        SSL_CTX_free(static_cast<SSL_CTX*>(m_ssl_ctx));
        m_ssl_ctx = nullptr;
    }
    if (m_fd >= 0) {
        ::close(m_fd);
        m_fd = -1;
    }
}

void Socket::send_all(const std::string& data) {
    if (m_fd < 0) {
        return;
    }
    std::size_t sent = 0;
    while (sent < data.size()) {
        auto n = m_ssl != nullptr
                     ? static_cast<ssize_t>(SSL_write(static_cast<SSL*>(m_ssl), data.data() + sent,
                                                      static_cast<int>(data.size() - sent)))
                     : ::send(m_fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) {
            return;  // the server closed: the test sees it in the response
        }
        sent += static_cast<std::size_t>(n);
    }
}

bool Socket::read_some(std::string& buffer, std::chrono::steady_clock::time_point deadline) {
    if (m_fd < 0) {
        return false;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
        return false;
    }
    auto* ssl = static_cast<SSL*>(m_ssl);
    pollfd p{m_fd, POLLIN, 0};
    if ((ssl == nullptr || SSL_pending(ssl) == 0) && ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
        return false;
    }
    char chunk[65536];
    auto n = ssl != nullptr ? static_cast<ssize_t>(SSL_read(ssl, chunk, sizeof chunk)) : ::recv(m_fd, chunk, sizeof chunk, 0);
    if (n <= 0) {
        m_peer_closed = true;
        return false;
    }
    buffer.append(chunk, static_cast<std::size_t>(n));
    return true;
}

HttpResponse http_request(std::uint16_t port, const std::string& method, const std::string& path,
                          const Headers& headers, const std::string& body, const TlsClientOptions* tls) {
    Socket socket(port, tls);
    socket.send_all(head_of(method, path, headers, body.size(), true) + body);
    std::string raw;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (socket.read_some(raw, deadline)) {
    }
    HttpResponse res;
    if (!parse_head(raw, res.status, res.headers)) {
        return res;
    }
    if (lower(res.headers["transfer-encoding"]) == "chunked") {
        (void)dechunk(raw, res.body);
    } else {
        res.body = raw;
    }
    return res;
}

StreamClient::StreamClient(std::uint16_t port, const std::string& token, const std::string& body,
                           const TlsClientOptions* tls)
    : m_socket(port, tls) {
    Headers headers{{"Content-Type", "application/json"}, {"Accept", "application/x-ndjson"}};
    if (!token.empty()) {
        headers.emplace_back("Authorization", "Bearer " + token);
    }
    m_socket.send_all(head_of("POST", "/sync/stream", headers, body.size(), false) + body);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    std::map<std::string, std::string> response_headers;
    while (!parse_head(m_raw, m_status, response_headers)) {
        if (!m_socket.read_some(m_raw, deadline)) {
            return;
        }
    }
    if (m_status != 200) {
        while (m_socket.read_some(m_raw, deadline)) {
        }
        m_error_body = m_raw;
        m_ended = true;
    }
}

std::optional<std::string> StreamClient::next_line(std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (auto nl = m_lines.find('\n'); nl != std::string::npos) {
            auto line = m_lines.substr(0, nl);
            m_lines.erase(0, nl + 1);
            return line;
        }
        if (m_ended) {
            return std::nullopt;
        }
        if (dechunk(m_raw, m_lines)) {
            m_ended = true;
            continue;
        }
        if (m_lines.find('\n') == std::string::npos && !m_socket.read_some(m_raw, deadline)) {
            m_ended = !dechunk(m_raw, m_lines) ? m_ended : true;
            if (m_lines.find('\n') == std::string::npos) {
                return std::nullopt;
            }
        }
    }
}

WsClient::WsClient(std::uint16_t port, const std::string& token, const std::string& path, const TlsClientOptions* tls)
    : m_socket(port, tls) {
    Headers headers{{"Upgrade", "websocket"},
                    {"Connection", "Upgrade"},
                    {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
                    {"Sec-WebSocket-Version", "13"}};
    if (!token.empty()) {
        headers.emplace_back("Authorization", "Bearer " + token);
    }
    m_socket.send_all(head_of("GET", path, headers, 0, false));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    std::map<std::string, std::string> response_headers;
    while (!parse_head(m_raw, m_status, response_headers)) {
        if (!m_socket.read_some(m_raw, deadline)) {
            return;
        }
    }
    if (m_status != 101) {
        while (m_socket.read_some(m_raw, deadline)) {
        }
        m_body = m_raw;
    }
}

void WsClient::send_text(const std::string& text) {
    std::string frame;
    frame.push_back(static_cast<char>(0x81));
    const unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
    if (text.size() < 126) {
        frame.push_back(static_cast<char>(0x80 | text.size()));
    } else if (text.size() < 65536) {
        frame.push_back(static_cast<char>(0x80 | 126));
        frame.push_back(static_cast<char>(text.size() >> 8));
        frame.push_back(static_cast<char>(text.size() & 0xff));
    } else {
        frame.push_back(static_cast<char>(0x80 | 127));
        for (int i = 7; i >= 0; --i) {
            frame.push_back(static_cast<char>((static_cast<std::uint64_t>(text.size()) >> (8 * i)) & 0xff));
        }
    }
    frame.append(reinterpret_cast<const char*>(mask), 4);
    for (std::size_t i = 0; i < text.size(); ++i) {
        frame.push_back(static_cast<char>(text[i] ^ static_cast<char>(mask[i % 4])));
    }
    m_socket.send_all(frame);
}

std::optional<std::string> WsClient::next_message(std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string message;
    for (;;) {
        // A complete frame at the front of m_raw?
        if (m_raw.size() >= 2) {
            const auto b0 = static_cast<unsigned char>(m_raw[0]);
            const auto b1 = static_cast<unsigned char>(m_raw[1]);
            std::size_t header = 2;
            std::uint64_t length = b1 & 0x7f;
            if (length == 126 && m_raw.size() >= 4) {
                length = (static_cast<unsigned char>(m_raw[2]) << 8) | static_cast<unsigned char>(m_raw[3]);
                header = 4;
            } else if (length == 127 && m_raw.size() >= 10) {
                length = 0;
                for (int i = 0; i < 8; ++i) {
                    length = (length << 8) | static_cast<unsigned char>(m_raw[2 + static_cast<std::size_t>(i)]);
                }
                header = 10;
            } else if (length >= 126) {
                header = 0;  // incomplete
            }
            if (header != 0 && m_raw.size() >= header + length) {
                auto payload = m_raw.substr(header, length);
                m_raw.erase(0, header + length);
                const int opcode = b0 & 0x0f;
                if (opcode == 8) {
                    m_close_code = payload.size() >= 2 ? (static_cast<unsigned char>(payload[0]) << 8) |
                                                             static_cast<unsigned char>(payload[1])
                                                       : 1005;
                    return std::nullopt;
                }
                if (opcode == 9) {  // ping: answer with a pong carrying the same payload
                    std::string pong{static_cast<char>(0x8a), static_cast<char>(0x80 | payload.size())};
                    pong.append("\0\0\0\0", 4);
                    pong += payload;
                    m_socket.send_all(pong);
                    continue;
                }
                message += payload;
                if ((b0 & 0x80) != 0) {
                    return message;
                }
                continue;
            }
        }
        if (!m_socket.read_some(m_raw, deadline)) {
            return std::nullopt;
        }
    }
}

}  // namespace sluice::test
