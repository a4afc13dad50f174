// Test-only JWT minting with OpenSSL 3 (EVP_PKEY_Q_keygen, EVP_DigestSign, HMAC); see jwt_signer.h.
#include "tests/support/jwt_signer.h"

#include <fstream>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

namespace sluice::test {
namespace {

const unsigned char* bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

[[noreturn]] void fail(std::string_view what) { throw std::runtime_error(fmt::format("jwt_signer: {}", what)); }

const EVP_MD* digest_of(std::string_view alg) {
    if (alg.ends_with("256")) return EVP_sha256();
    if (alg.ends_with("384")) return EVP_sha384();
    if (alg.ends_with("512")) return EVP_sha512();
    return nullptr;  // EdDSA
}

std::size_t ec_size(std::string_view alg) { return alg == "ES256" ? 32 : alg == "ES384" ? 48 : 66; }

std::shared_ptr<EVP_PKEY> own(EVP_PKEY* pkey) {
    if (pkey == nullptr) fail("key generation failed");
    return {pkey, EVP_PKEY_free};
}

std::string bn_bytes(EVP_PKEY* pkey, const char* name, int pad_to = 0) {
    BIGNUM* bn = nullptr;
    if (EVP_PKEY_get_bn_param(pkey, name, &bn) != 1) fail(name);
    const int size = pad_to > 0 ? pad_to : BN_num_bytes(bn);
    std::string out(static_cast<std::size_t>(size), '\0');
    BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), size);
    BN_free(bn);
    return out;
}

}  // namespace

std::string base64url(std::string_view in) {
    static constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    std::uint32_t acc = 0;
    int bits = 0;
    for (char c : in) {
        acc = (acc << 8) | static_cast<unsigned char>(c);
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out.push_back(kAlphabet[(acc >> bits) & 0x3F]);
        }
    }
    if (bits > 0) out.push_back(kAlphabet[(acc << (6 - bits)) & 0x3F]);
    return out;
}

TestKey TestKey::hmac(std::string alg, std::string secret, std::string kid) {
    TestKey k;
    k.m_alg = std::move(alg);
    k.m_kid = std::move(kid);
    k.m_secret = std::move(secret);
    return k;
}

TestKey TestKey::rsa(std::string alg, std::string kid, int bits) {
    TestKey k;
    k.m_alg = std::move(alg);
    k.m_kid = std::move(kid);
    k.m_pkey = own(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<std::size_t>(bits)));
    return k;
}

TestKey TestKey::ec(std::string alg, std::string kid) {
    TestKey k;
    const char* curve = alg == "ES256" ? "P-256" : alg == "ES384" ? "P-384" : "P-521";
    k.m_alg = std::move(alg);
    k.m_kid = std::move(kid);
    k.m_pkey = own(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve));
    return k;
}

TestKey TestKey::ed25519(std::string kid) {
    TestKey k;
    k.m_alg = "EdDSA";
    k.m_kid = std::move(kid);
    k.m_pkey = own(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
    return k;
}

TestKey TestKey::with_kid(std::string kid) const {
    TestKey k = *this;
    k.m_kid = std::move(kid);
    return k;
}

TestKey TestKey::with_alg(std::string alg) const {
    TestKey k = *this;
    k.m_alg = std::move(alg);
    return k;
}

std::string TestKey::public_pem() const {
    if (!m_pkey) return {};
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    if (!bio || PEM_write_bio_PUBKEY(bio.get(), m_pkey.get()) != 1) fail("PEM_write_bio_PUBKEY");
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio.get(), &data);
    return {data, static_cast<std::size_t>(len)};
}

std::string TestKey::jwk(bool with_alg) const {
    std::string params;
    if (!m_pkey) {
        params = fmt::format(R"("kty":"oct","k":"{}")", base64url(m_secret));
    } else if (EVP_PKEY_is_a(m_pkey.get(), "RSA") == 1) {
        params =
            fmt::format(R"("kty":"RSA","n":"{}","e":"{}")", base64url(bn_bytes(m_pkey.get(), OSSL_PKEY_PARAM_RSA_N)),
                        base64url(bn_bytes(m_pkey.get(), OSSL_PKEY_PARAM_RSA_E)));
    } else if (EVP_PKEY_is_a(m_pkey.get(), "EC") == 1) {
        const int size = static_cast<int>(ec_size(m_alg));
        const char* crv = size == 32 ? "P-256" : size == 48 ? "P-384" : "P-521";
        params = fmt::format(R"("kty":"EC","crv":"{}","x":"{}","y":"{}")", crv,
                             base64url(bn_bytes(m_pkey.get(), OSSL_PKEY_PARAM_EC_PUB_X, size)),
                             base64url(bn_bytes(m_pkey.get(), OSSL_PKEY_PARAM_EC_PUB_Y, size)));
    } else {
        unsigned char raw[32];
        std::size_t len = sizeof(raw);
        if (EVP_PKEY_get_raw_public_key(m_pkey.get(), raw, &len) != 1) fail("EVP_PKEY_get_raw_public_key");
        params = fmt::format(R"("kty":"OKP","crv":"Ed25519","x":"{}")",
                             base64url(std::string_view(reinterpret_cast<const char*>(raw), len)));
    }
    std::string out = "{" + params + R"(,"use":"sig")";
    if (!m_kid.empty()) out += fmt::format(R"(,"kid":"{}")", m_kid);
    if (with_alg) out += fmt::format(R"(,"alg":"{}")", m_alg);
    return out + "}";
}

void TestKey::write_public_pem(const std::string& path) const {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << public_pem();
    if (!out) fail("cannot write " + path);
}

std::string TestKey::sign(std::string_view input) const {
    if (!m_pkey) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        if (HMAC(digest_of(m_alg), m_secret.data(), static_cast<int>(m_secret.size()), bytes(input), input.size(), mac,
                 &len) == nullptr) {
            fail("HMAC");
        }
        return {reinterpret_cast<const char*>(mac), len};
    }
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    EVP_PKEY_CTX* pctx = nullptr;
    const EVP_MD* md = m_alg == "EdDSA" ? nullptr : digest_of(m_alg);
    if (!ctx || EVP_DigestSignInit(ctx.get(), &pctx, md, nullptr, m_pkey.get()) != 1) fail("EVP_DigestSignInit");
    if (m_alg.starts_with("PS") && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
                                    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1)) {
        fail("PSS padding");
    }
    std::size_t len = 0;
    if (EVP_DigestSign(ctx.get(), nullptr, &len, bytes(input), input.size()) != 1) fail("EVP_DigestSign");
    std::vector<unsigned char> sig(len);
    if (EVP_DigestSign(ctx.get(), sig.data(), &len, bytes(input), input.size()) != 1) fail("EVP_DigestSign");
    sig.resize(len);
    if (!m_alg.starts_with("ES")) {
        return {reinterpret_cast<const char*>(sig.data()), sig.size()};
    }
    // DER ECDSA-Sig-Value -> fixed-width r || s (RFC 7518 §3.4).
    const unsigned char* p = sig.data();
    ECDSA_SIG* ecdsa = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
    if (ecdsa == nullptr) fail("d2i_ECDSA_SIG");
    const int n = static_cast<int>(ec_size(m_alg));
    std::string raw(static_cast<std::size_t>(2 * n), '\0');
    auto* out = reinterpret_cast<unsigned char*>(raw.data());
    BN_bn2binpad(ECDSA_SIG_get0_r(ecdsa), out, n);
    BN_bn2binpad(ECDSA_SIG_get0_s(ecdsa), out + n, n);
    ECDSA_SIG_free(ecdsa);
    return raw;
}

std::string jwks_json(std::initializer_list<const TestKey*> keys, bool with_alg) {
    std::string out = R"({"keys":[)";
    bool first = true;
    for (const TestKey* k : keys) {
        if (!first) out += ',';
        first = false;
        out += k->jwk(with_alg);
    }
    return out + "]}";
}

std::string sign_jwt(std::string_view header_json, std::string_view payload_json, const TestKey& key) {
    std::string input = base64url(header_json) + "." + base64url(payload_json);
    const std::string signature = key.sign(input);
    return input + "." + base64url(signature);
}

std::string mint_token(const TestKey& key, std::string_view sub, std::int64_t now, std::int64_t lifetime_seconds,
                       std::string_view aud) {
    std::string header = fmt::format(R"({{"alg":"{}","typ":"JWT")", key.alg());
    if (!key.kid().empty()) header += fmt::format(R"(,"kid":"{}")", key.kid());
    header += "}";
    std::string payload = fmt::format(R"({{"sub":"{}","iat":{},"exp":{})", sub, now, now + lifetime_seconds);
    if (!aud.empty()) payload += fmt::format(R"(,"aud":"{}")", aud);
    payload += "}";
    return sign_jwt(header, payload, key);
}

}  // namespace sluice::test
