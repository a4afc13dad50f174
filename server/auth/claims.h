// Registered-claim checks on a verified token's payload (RFC 7519 §4.1): sub, aud, exp, nbf, iat with a
// leeway, and a cap on exp - iat. Pure: the caller passes the time.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/status.h"
#include "server/auth/token_verifier.h"

namespace sluice::auth {

struct ClaimRules {
    std::vector<std::string> audience;  // empty: aud is not checked
    std::int64_t leeway_seconds = 0;
    std::int64_t max_lifetime_seconds = 0;  // 0: no cap
};

// SL5103 when expired; SL5102 naming the failed check otherwise. Messages never quote claim values
// other than short, sanitised aud values.
[[nodiscard]] protocol::Result<VerifiedToken> check_claims(std::string_view payload_json, const ClaimRules& rules,
                                                           std::int64_t now);

}  // namespace sluice::auth
