// TokenVerifier over JWS (RFC 7515) with keys from sluice.yaml, a JWKS file and a JWKS URL, and the
// registered-claim checks of claims.h.
#include "server/auth/token_verifier.h"

#include <fstream>
#include <sstream>
#include <vector>

#include <fmt/format.h>

#include "server/auth/claims.h"
#include "server/auth/jwks.h"
#include "server/auth/jwks_fetcher.h"
#include "server/auth/jwt.h"
#include "server/auth/keys.h"
#include "server/core/log.h"

namespace sluice::auth {
namespace {

using protocol::ErrorCode;
using protocol::Result;
using protocol::Status;

bool starts_with_word(std::string_view text, std::string_view word) {
    if (text.size() <= word.size() || (text[word.size()] != ' ' && text[word.size()] != '\t')) {
        return false;
    }
    for (std::size_t i = 0; i < word.size(); ++i) {
        const char c = text[i];
        const char lower = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
        if (lower != word[i]) {
            return false;
        }
    }
    return true;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
        s.remove_suffix(1);
    }
    return s;
}

// "Bearer <jwt>", "Token <jwt>" (any case) or a bare token.
std::string_view token_of(std::string_view authorization) {
    std::string_view s = trim(authorization);
    if (starts_with_word(s, "bearer")) {
        s = trim(s.substr(6));
    } else if (starts_with_word(s, "token")) {
        s = trim(s.substr(5));
    } else if (s == "Bearer" || s == "bearer" || s == "Token" || s == "token") {
        s = {};
    }
    return s;
}

class JwtVerifier final : public TokenVerifier {
public:
    JwtVerifier(KeyList static_keys, std::unique_ptr<JwksFetcher> fetcher, ClaimRules rules, Clock clock)
        : m_static_keys(std::move(static_keys)),
          m_fetcher(std::move(fetcher)),
          m_rules(std::move(rules)),
          m_clock(std::move(clock)) {}

    Result<VerifiedToken> verify(std::string_view authorization) const override {
        const std::string_view token = token_of(authorization);
        if (token.empty()) {
            return Status{ErrorCode::kAuthMissing, "no token: send Authorization: Bearer <jwt>"};
        }
        auto parts = parse_jwt(token);
        if (!parts) {
            return parts.status();
        }
        if (auto st = check_signature(*parts); !st) {
            return st;
        }
        return check_claims(parts->payload_json, m_rules, m_clock());
    }

private:
    Status check_signature(const JwtParts& parts) const {
        const auto fetched = m_fetcher ? m_fetcher->keys() : nullptr;
        std::vector<const VerifyKey*> candidates;
        bool kid_known = false;
        auto consider = [&](const KeyList& keys) {
            for (const auto& key : keys) {
                if (parts.kid && key->kid() != *parts.kid) {
                    continue;
                }
                kid_known = true;
                if (key->accepts(parts.alg)) {
                    candidates.push_back(key.get());
                }
            }
        };
        consider(m_static_keys);
        if (fetched) {
            consider(*fetched);
        }
        const auto alg = algorithm_name(parts.alg);
        if (parts.kid && !kid_known) {
            if (m_fetcher) {
                m_fetcher->on_unknown_kid();
            }
            return {ErrorCode::kAuthInvalid, fmt::format("no key has the token's kid '{}'{}", printable(*parts.kid),
                                                         m_fetcher ? " (auth.jwks_uri is fetched again)" : "")};
        }
        if (candidates.empty()) {
            return {ErrorCode::kAuthInvalid,
                    parts.kid ? fmt::format("the key with kid '{}' is not for algorithm {}", printable(*parts.kid), alg)
                              : fmt::format("no key is configured for algorithm {}", alg)};
        }
        for (const VerifyKey* key : candidates) {
            if (key->verify(parts.alg, parts.signing_input, parts.signature)) {
                return Status::ok();
            }
        }
        return {ErrorCode::kAuthInvalid,
                candidates.size() == 1
                    ? fmt::format("token signature ({}) does not verify with {}", alg, candidates.front()->describe())
                    : fmt::format("token signature ({}) does not verify with any of {} keys", alg, candidates.size())};
    }

    const KeyList m_static_keys;                   // immutable after create()
    const std::unique_ptr<JwksFetcher> m_fetcher;  // null without auth.jwks_uri; thread-safe
    const ClaimRules m_rules;
    const Clock m_clock;  // called from every verify() thread
};

Status config_error(std::string message) { return {ErrorCode::kConfigInvalidValue, std::move(message)}; }

}  // namespace

Result<std::unique_ptr<TokenVerifier>> TokenVerifier::create(const config::AuthConfig& auth, Clock clock) {
    const core::Logger log("auth");
    KeyList keys;
    for (std::size_t i = 0; i < auth.keys.size(); ++i) {
        auto key = load_config_key(auth.keys[i], fmt::format("auth.keys[{}]", i));
        if (!key) {
            return key.status();
        }
        keys.push_back(std::make_shared<const VerifyKey>(std::move(key).value()));
    }
    if (!auth.jwks_file.empty()) {
        std::ifstream in(auth.jwks_file, std::ios::binary);
        if (!in) {
            return config_error(fmt::format("auth.jwks_file: cannot read '{}'", auth.jwks_file));
        }
        std::ostringstream text;
        text << in.rdbuf();
        auto set = parse_jwks(text.str());
        if (!set) {
            return config_error(fmt::format("auth.jwks_file '{}': {}", auth.jwks_file, set.status().message()));
        }
        for (const auto& why : set->skipped) {
            log.warn("auth.jwks_file '{}': skipped {}", auth.jwks_file, why);
        }
        if (set->keys.empty()) {
            return config_error(fmt::format("auth.jwks_file '{}' holds no usable key", auth.jwks_file));
        }
        keys.insert(keys.end(), set->keys.begin(), set->keys.end());
    }
    std::unique_ptr<JwksFetcher> fetcher;
    if (!auth.jwks_uri.empty()) {
        auto url = parse_http_url(auth.jwks_uri);
        if (!url) {
            return url.status();
        }
        fetcher = std::make_unique<JwksFetcher>(std::move(url).value(), std::chrono::seconds(auth.jwks_refresh_seconds),
                                                clock);
        fetcher->start();
    }
    if (keys.empty() && !fetcher) {
        return Status{ErrorCode::kConfigMissingKey,
                      "auth: no keys to verify tokens with; set auth.keys, auth.jwks_file or auth.jwks_uri"};
    }
    ClaimRules rules{auth.audience, auth.leeway_seconds, auth.max_lifetime_seconds};
    return std::unique_ptr<TokenVerifier>(
        std::make_unique<JwtVerifier>(std::move(keys), std::move(fetcher), std::move(rules), std::move(clock)));
}

}  // namespace sluice::auth
