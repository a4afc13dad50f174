// JWK Set reading (RFC 7517 §4-5; key parameters RFC 7518 §6, RFC 8037 §2): RSA n/e, EC crv/x/y,
// oct k and OKP Ed25519 x become VerifyKeys. Keys that cannot be used are skipped with a reason.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/status.h"
#include "server/auth/keys.h"

namespace sluice::auth {

using KeyList = std::vector<std::shared_ptr<const VerifyKey>>;

struct JwkSet {
    KeyList keys;
    std::vector<std::string> skipped;  // "key 2 (kid 'x'): unsupported kty 'foo'", for a warning log line
};

// Fails (SL1008) only when the text is not a JSON object with a "keys" array; a bad key is skipped.
[[nodiscard]] protocol::Result<JwkSet> parse_jwks(std::string_view json);

}  // namespace sluice::auth
