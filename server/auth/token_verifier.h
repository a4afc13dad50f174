// TokenVerifier: checks a client's JWT (signature with the configured keys, aud, exp, iat, nbf with
// a leeway, lifetime cap) and returns who it is. Errors use the SL51xx codes, which clients treat as
// "fetch a new token". Thread-safe: verify() is called from the I/O threads concurrently and never
// blocks on the network (JWKS URLs are fetched on a background thread).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "config/sluice_config.h"
#include "protocol/status.h"

namespace sluice::auth {

struct VerifiedToken {
    std::string user_id;      // the "sub" claim
    std::string claims_json;  // the payload as JSON text (request.jwt() in the rules)
    std::int64_t expires_at;  // "exp", Unix seconds
};

// Unix seconds now; injected so tests control time.
using Clock = std::function<std::int64_t()>;

class TokenVerifier {
public:
    virtual ~TokenVerifier() = default;

    // `authorization` is the Authorization header value ("Bearer <jwt>" or "Token <jwt>") or a bare token.
    [[nodiscard]] virtual protocol::Result<VerifiedToken> verify(std::string_view authorization) const = 0;

    // Built from sluice.yaml's auth section; fails on unreadable or invalid keys.
    [[nodiscard]] static protocol::Result<std::unique_ptr<TokenVerifier>> create(const config::AuthConfig& auth,
                                                                               Clock clock);
};

}  // namespace sluice::auth
