// Minimal blocking HTTP/1.1 and WebSocket clients over loopback for the server tests (plain POSIX
// sockets, so tests do not compile Beast; OpenSSL for HTTPS/WSS). Every read takes a deadline;
// nothing sleeps.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sluice::test {

struct HttpResponse {
    int status = 0;
    std::map<std::string, std::string> headers;  // lower-case names
    std::string body;                            // de-chunked
};

using Headers = std::vector<std::pair<std::string, std::string>>;

// TLS for a client: the server's certificate must verify against `ca_file` and name `host` (an IP
// address or a DNS name).
struct TlsClientOptions {
    std::string ca_file;
    std::string host = "127.0.0.1";
};

// One request on a fresh connection (Connection: close); reads the whole response. status 0 when
// no HTTP response came (e.g. the TLS handshake failed).
[[nodiscard]] HttpResponse http_request(std::uint16_t port, const std::string& method, const std::string& path,
                                        const Headers& headers = {}, const std::string& body = {},
                                        const TlsClientOptions* tls = nullptr);

class Socket {
public:
    // With `tls`, the TLS handshake runs here; tls_error() says why it failed (then nothing is sent).
    explicit Socket(std::uint16_t port, const TlsClientOptions* tls = nullptr);
    ~Socket();
    Socket(const Socket&) = delete;
    Socket& operator=(const Socket&) = delete;
    void send_all(const std::string& data);
    // Reads more bytes into `buffer`; false on EOF or deadline.
    bool read_some(std::string& buffer, std::chrono::steady_clock::time_point deadline);
    void close();
    // True once a read found the connection closed by the peer (or failed), or after close().
    [[nodiscard]] bool closed() const { return m_fd < 0 || m_peer_closed; }
    [[nodiscard]] const std::string& tls_error() const { return m_tls_error; }

private:
    int m_fd = -1;
    bool m_peer_closed = false;
    void* m_ssl_ctx = nullptr;  // SSL_CTX*, SSL* (kept out of this header)
    void* m_ssl = nullptr;
    std::string m_tls_error;
};

// POST /sync/stream, then the NDJSON lines one by one.
class StreamClient {
public:
    StreamClient(std::uint16_t port, const std::string& token, const std::string& body,
                 const TlsClientOptions* tls = nullptr);
    [[nodiscard]] int status() const { return m_status; }
    [[nodiscard]] const std::string& error_body() const { return m_error_body; }
    // The next line (without '\n'); nullopt at the end of the stream or after `timeout`.
    std::optional<std::string> next_line(std::chrono::seconds timeout = std::chrono::seconds(60));
    void close() { m_socket.close(); }
    // The stream is over (its last chunk came, or the connection closed): no more lines will come.
    [[nodiscard]] bool ended() const { return m_ended || m_socket.closed(); }

private:
    bool fill_chunk(std::chrono::steady_clock::time_point deadline);
    Socket m_socket;
    std::string m_raw;    // undecoded bytes
    std::string m_lines;  // decoded body not yet returned
    int m_status = 0;
    std::string m_error_body;
    bool m_ended = false;
};

// GET /sync/ws, then text frames.
class WsClient {
public:
    // `token` goes in the Authorization header. status() is 101 when upgraded.
    WsClient(std::uint16_t port, const std::string& token, const std::string& path = "/sync/ws",
             const TlsClientOptions* tls = nullptr);
    [[nodiscard]] int status() const { return m_status; }
    [[nodiscard]] const std::string& response_body() const { return m_body; }
    void send_text(const std::string& text);
    // The next text message; nullopt on close, EOF or timeout. close_code() tells a close frame's code.
    std::optional<std::string> next_message(std::chrono::seconds timeout = std::chrono::seconds(60));
    [[nodiscard]] int close_code() const { return m_close_code; }
    // A close frame came, or the connection closed: no more messages will come.
    [[nodiscard]] bool ended() const { return m_close_code != 0 || m_socket.closed(); }

private:
    Socket m_socket;
    std::string m_raw;
    int m_status = 0;
    std::string m_body;
    int m_close_code = 0;
};

}  // namespace sluice::test
