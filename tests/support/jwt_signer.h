// Test-only JWT minting: generates HMAC, RSA, EC and Ed25519 keys with OpenSSL, signs tokens with them
// (JWS compact form, RFC 7515) and writes their public halves as PEM or JWK for the verifier to load.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>

#include <openssl/types.h>

namespace sluice::test {

class TestKey {
public:
    // An HS256/384/512 key; `secret` is the raw shared secret.
    static TestKey hmac(std::string alg, std::string secret, std::string kid = {});
    // A fresh RSA key (RS256/384/512 or PS256/384/512).
    static TestKey rsa(std::string alg = "RS256", std::string kid = {}, int bits = 2048);
    // A fresh EC key on the curve `alg` needs (ES256: P-256, ES384: P-384, ES512: P-521).
    static TestKey ec(std::string alg = "ES256", std::string kid = {});
    // A fresh Ed25519 key (alg EdDSA).
    static TestKey ed25519(std::string kid = {});

    // The same key material under another kid or alg (e.g. to sign RS384 with an RS256 key).
    [[nodiscard]] TestKey with_kid(std::string kid) const;
    [[nodiscard]] TestKey with_alg(std::string alg) const;

    [[nodiscard]] const std::string& alg() const { return m_alg; }
    [[nodiscard]] const std::string& kid() const { return m_kid; }
    [[nodiscard]] const std::string& secret() const { return m_secret; }  // HMAC keys only

    // "-----BEGIN PUBLIC KEY-----..." (SubjectPublicKeyInfo); empty for HMAC keys.
    [[nodiscard]] std::string public_pem() const;
    // The public JWK as a JSON object (kty, kid, alg, use and the key parameters); HMAC keys give kty oct.
    // `with_alg` false leaves out "alg", so the verifier infers it from the key type.
    [[nodiscard]] std::string jwk(bool with_alg = true) const;
    // Writes public_pem() to `path`.
    void write_public_pem(const std::string& path) const;

    // Signs `input` with this key's alg; JWS form (ECDSA as raw r||s).
    [[nodiscard]] std::string sign(std::string_view input) const;

private:
    std::string m_alg;
    std::string m_kid;
    std::string m_secret;
    std::shared_ptr<EVP_PKEY> m_pkey;
};

// {"keys":[...]} of the keys' public JWKs.
[[nodiscard]] std::string jwks_json(std::initializer_list<const TestKey*> keys, bool with_alg = true);

[[nodiscard]] std::string base64url(std::string_view bytes);

// base64url(header).base64url(payload).base64url(signature), signed with `key` whatever the header says.
[[nodiscard]] std::string sign_jwt(std::string_view header_json, std::string_view payload_json, const TestKey& key);

// A token with header {"alg":key.alg(),"typ":"JWT"[,"kid":key.kid()]} and these claims: sub, iat = now,
// exp = now + lifetime, and aud when non-empty.
[[nodiscard]] std::string mint_token(const TestKey& key, std::string_view sub, std::int64_t now,
                                     std::int64_t lifetime_seconds = 3600, std::string_view aud = {});

}  // namespace sluice::test
