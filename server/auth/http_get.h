// A small blocking HTTP GET for the JWKS URL: http:// over a plain socket, https:// through OpenSSL with
// certificate and host-name checks. HTTP/1.0 request (so no chunked replies), bounded time and size.
// Runs on the JWKS background thread only, never on an I/O thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "protocol/status.h"

namespace sluice::auth {

struct HttpUrl {
    bool tls = false;
    std::string host;
    std::string port;    // "80", "443" or as given
    std::string target;  // path and query, at least "/"
};

// SL1008 for anything but http(s)://host[:port][/path] (no user info, no fragment).
[[nodiscard]] protocol::Result<HttpUrl> parse_http_url(std::string_view url);

// The body of a 200 reply; SL5104 naming the step that failed otherwise.
[[nodiscard]] protocol::Result<std::string> http_get(const HttpUrl& url, std::chrono::milliseconds timeout,
                                                     std::size_t max_body_bytes);

}  // namespace sluice::auth
