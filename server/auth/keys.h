// Verification keys and the JWS signature check for each algorithm (RFC 7518 §3.2-3.5, RFC 8037 §3.1):
// HMAC secrets, RSA, EC (P-256/384/521) and Ed25519 public keys, from config or PEM text. OpenSSL 3 EVP.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <openssl/types.h>

#include "config/sluice_config.h"
#include "protocol/status.h"
#include "server/auth/jwt.h"

namespace sluice::auth {

// Immutable once built; verify() may run on many threads at once.
class VerifyKey {
public:
    // `alg` pins the key to one algorithm; without it any algorithm of the key's family (and, for EC,
    // its curve) is accepted.
    static protocol::Result<VerifyKey> hmac(std::string kid, std::optional<Algorithm> alg, std::string secret);
    // Takes ownership of `pkey` (RSA of 2048 bits or more, EC P-256/384/521, or Ed25519).
    static protocol::Result<VerifyKey> public_key(std::string kid, std::optional<Algorithm> alg, EVP_PKEY* pkey);

    [[nodiscard]] const std::string& kid() const { return m_kid; }
    [[nodiscard]] KeyFamily family() const { return m_family; }
    [[nodiscard]] bool accepts(Algorithm alg) const;
    // True when `signature` is a valid `alg` signature of `signing_input` under this key; false for an
    // algorithm the key does not accept.
    [[nodiscard]] bool verify(Algorithm alg, std::string_view signing_input, std::string_view signature) const;
    // "kid 'main' (RSA)" or "key without kid (EC)", for messages; never the key material.
    [[nodiscard]] std::string describe() const;

private:
    VerifyKey() = default;

    std::string m_kid;
    std::optional<Algorithm> m_alg;
    KeyFamily m_family = KeyFamily::kHmac;
    std::optional<Algorithm> m_curve_alg;  // EC keys: the one ES algorithm their curve allows
    std::string m_secret;                  // HMAC keys
    std::shared_ptr<EVP_PKEY> m_pkey;      // public keys
};

// PEM text holding a SubjectPublicKeyInfo ("PUBLIC KEY") or an X.509 certificate.
[[nodiscard]] protocol::Result<VerifyKey> key_from_pem(std::string kid, std::optional<Algorithm> alg,
                                                       std::string_view pem);

// One auth.keys entry: its secret, or the PEM file it names. `path` ("auth.keys[0]") is used in errors.
[[nodiscard]] protocol::Result<VerifyKey> load_config_key(const config::AuthKey& key, std::string_view path);

}  // namespace sluice::auth
