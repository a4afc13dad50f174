// Verification keys and signature checks with OpenSSL 3 EVP (RFC 7518 §3.2-3.5, RFC 8037 §3.1).
#include "server/auth/keys.h"

#include <fstream>
#include <sstream>
#include <vector>

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

namespace sluice::auth {
namespace {

using protocol::ErrorCode;
using protocol::Status;

Status key_error(std::string message) { return {ErrorCode::kConfigInvalidValue, std::move(message)}; }

const EVP_MD* digest_of(Algorithm alg) {
    switch (alg) {
        case Algorithm::kHS256:
        case Algorithm::kRS256:
        case Algorithm::kPS256:
        case Algorithm::kES256:
            return EVP_sha256();
        case Algorithm::kHS384:
        case Algorithm::kRS384:
        case Algorithm::kPS384:
        case Algorithm::kES384:
            return EVP_sha384();
        case Algorithm::kHS512:
        case Algorithm::kRS512:
        case Algorithm::kPS512:
        case Algorithm::kES512:
            return EVP_sha512();
        case Algorithm::kEdDSA:
            return nullptr;  // Ed25519 hashes internally
    }
    return nullptr;
}

bool is_pss(Algorithm alg) { return alg == Algorithm::kPS256 || alg == Algorithm::kPS384 || alg == Algorithm::kPS512; }

// Size in bytes of r and of s in a JWS ECDSA signature (RFC 7518 §3.4).
std::size_t ec_coordinate_bytes(Algorithm alg) {
    switch (alg) {
        case Algorithm::kES256:
            return 32;
        case Algorithm::kES384:
            return 48;
        case Algorithm::kES512:
            return 66;
        default:
            return 0;
    }
}

const unsigned char* bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

bool verify_hmac(Algorithm alg, const std::string& secret, std::string_view input, std::string_view signature) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (HMAC(digest_of(alg), secret.data(), static_cast<int>(secret.size()), bytes(input), input.size(), mac,
             &mac_len) == nullptr) {
        return false;
    }
    return signature.size() == mac_len && CRYPTO_memcmp(mac, signature.data(), mac_len) == 0;
}

// JWS ECDSA signatures are r || s, big-endian and fixed-width; OpenSSL verifies DER ECDSA-Sig-Value.
std::optional<std::vector<unsigned char>> ecdsa_raw_to_der(Algorithm alg, std::string_view raw) {
    const std::size_t n = ec_coordinate_bytes(alg);
    if (n == 0 || raw.size() != 2 * n) {
        return std::nullopt;
    }
    ECDSA_SIG* sig = ECDSA_SIG_new();
    BIGNUM* r = BN_bin2bn(bytes(raw), static_cast<int>(n), nullptr);
    BIGNUM* s = BN_bin2bn(bytes(raw) + n, static_cast<int>(n), nullptr);
    if (sig == nullptr || r == nullptr || s == nullptr || ECDSA_SIG_set0(sig, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(sig);
        return std::nullopt;
    }
    std::optional<std::vector<unsigned char>> out;
    const int len = i2d_ECDSA_SIG(sig, nullptr);
    if (len > 0) {
        out.emplace(static_cast<std::size_t>(len));
        unsigned char* p = out->data();
        if (i2d_ECDSA_SIG(sig, &p) != len) {
            out.reset();
        }
    }
    ECDSA_SIG_free(sig);
    return out;
}

bool verify_public(Algorithm alg, EVP_PKEY* pkey, std::string_view input, std::string_view signature) {
    std::vector<unsigned char> der;
    const unsigned char* sig_bytes = bytes(signature);
    std::size_t sig_len = signature.size();
    if (key_family(alg) == KeyFamily::kEc) {
        auto converted = ecdsa_raw_to_der(alg, signature);
        if (!converted) {
            return false;
        }
        der = std::move(*converted);
        sig_bytes = der.data();
        sig_len = der.size();
    }
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
    if (!ctx || EVP_DigestVerifyInit(ctx.get(), &pctx, digest_of(alg), nullptr, pkey) != 1) {
        return false;
    }
    if (is_pss(alg) && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
                        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1)) {
        return false;
    }
    return EVP_DigestVerify(ctx.get(), sig_bytes, sig_len, bytes(input), input.size()) == 1;
}

std::string family_name(KeyFamily family) {
    switch (family) {
        case KeyFamily::kHmac:
            return "HMAC";
        case KeyFamily::kRsa:
            return "RSA";
        case KeyFamily::kEc:
            return "EC";
        case KeyFamily::kEd25519:
            return "Ed25519";
    }
    return "?";
}

std::optional<Algorithm> ec_curve_algorithm(EVP_PKEY* pkey) {
    char name[64] = {};
    std::size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof(name), &len) != 1) {
        return std::nullopt;
    }
    const std::string_view group(name, len);
    if (group == "prime256v1" || group == "P-256") return Algorithm::kES256;
    if (group == "secp384r1" || group == "P-384") return Algorithm::kES384;
    if (group == "secp521r1" || group == "P-521") return Algorithm::kES512;
    return std::nullopt;
}

}  // namespace

protocol::Result<VerifyKey> VerifyKey::hmac(std::string kid, std::optional<Algorithm> alg, std::string secret) {
    if (alg && key_family(*alg) != KeyFamily::kHmac) {
        return key_error(fmt::format("algorithm {} needs a public key, not a secret", algorithm_name(*alg)));
    }
    if (secret.empty()) {
        return key_error("an HMAC key needs a non-empty secret");
    }
    VerifyKey key;
    key.m_kid = std::move(kid);
    key.m_alg = alg;
    key.m_family = KeyFamily::kHmac;
    key.m_secret = std::move(secret);
    return key;
}

protocol::Result<VerifyKey> VerifyKey::public_key(std::string kid, std::optional<Algorithm> alg, EVP_PKEY* pkey) {
    std::shared_ptr<EVP_PKEY> owned(pkey, EVP_PKEY_free);
    if (!owned) {
        return key_error("no public key");
    }
    VerifyKey key;
    if (EVP_PKEY_is_a(pkey, "RSA") == 1) {
        key.m_family = KeyFamily::kRsa;
        if (EVP_PKEY_get_bits(pkey) < 2048) {
            return key_error(fmt::format("RSA key has {} bits; at least 2048 are required (RFC 7518 §3.3)",
                                         EVP_PKEY_get_bits(pkey)));
        }
    } else if (EVP_PKEY_is_a(pkey, "EC") == 1) {
        key.m_family = KeyFamily::kEc;
        key.m_curve_alg = ec_curve_algorithm(pkey);
        if (!key.m_curve_alg) {
            return key_error("EC key is not on P-256, P-384 or P-521");
        }
    } else if (EVP_PKEY_is_a(pkey, "ED25519") == 1) {
        key.m_family = KeyFamily::kEd25519;
    } else {
        return key_error("public key type is not RSA, EC or Ed25519");
    }
    if (alg && key_family(*alg) != key.m_family) {
        return key_error(
            fmt::format("algorithm {} does not match the {} key", algorithm_name(*alg), family_name(key.m_family)));
    }
    if (alg && key.m_curve_alg && *alg != *key.m_curve_alg) {
        return key_error(fmt::format("algorithm {} does not match the key's curve (which needs {})",
                                     algorithm_name(*alg), algorithm_name(*key.m_curve_alg)));
    }
    key.m_kid = std::move(kid);
    key.m_alg = alg;
    key.m_pkey = std::move(owned);
    return key;
}

bool VerifyKey::accepts(Algorithm alg) const {
    if (m_alg && *m_alg != alg) {
        return false;
    }
    if (key_family(alg) != m_family) {
        return false;
    }
    return !m_curve_alg || *m_curve_alg == alg;
}

bool VerifyKey::verify(Algorithm alg, std::string_view signing_input, std::string_view signature) const {
    if (!accepts(alg)) {
        return false;
    }
    if (m_family == KeyFamily::kHmac) {
        return verify_hmac(alg, m_secret, signing_input, signature);
    }
    return verify_public(alg, m_pkey.get(), signing_input, signature);
}

std::string VerifyKey::describe() const {
    const auto family = family_name(m_family);
    return m_kid.empty() ? fmt::format("key without kid ({})", family)
                         : fmt::format("kid '{}' ({})", printable(m_kid), family);
}

protocol::Result<VerifyKey> key_from_pem(std::string kid, std::optional<Algorithm> alg, std::string_view pem) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
    if (!bio) {
        return key_error("out of memory reading a PEM key");
    }
    EVP_PKEY* pkey = PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr);
    if (pkey == nullptr) {
        std::unique_ptr<BIO, decltype(&BIO_free)> again(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())),
                                                        BIO_free);
        X509* cert = again ? PEM_read_bio_X509(again.get(), nullptr, nullptr, nullptr) : nullptr;
        if (cert != nullptr) {
            pkey = X509_get_pubkey(cert);
            X509_free(cert);
        }
    }
    if (pkey == nullptr) {
        return key_error("not a PEM public key (-----BEGIN PUBLIC KEY-----) or certificate");
    }
    return VerifyKey::public_key(std::move(kid), alg, pkey);
}

protocol::Result<VerifyKey> load_config_key(const config::AuthKey& key, std::string_view path) {
    const auto alg = algorithm_from_name(key.alg);
    if (!alg) {
        return key_error(fmt::format("{}.alg: '{}' is not a supported algorithm", path, printable(key.alg)));
    }
    auto with_path = [&](protocol::Result<VerifyKey> r) -> protocol::Result<VerifyKey> {
        if (r) {
            return r;
        }
        return key_error(fmt::format("{}: {}", path, r.status().message()));
    };
    if (key_family(*alg) == KeyFamily::kHmac) {
        if (!key.public_key_file.empty()) {
            return key_error(fmt::format("{}: {} keys take 'secret', not 'public_key_file'", path, key.alg));
        }
        return with_path(VerifyKey::hmac(key.kid, alg, key.secret));
    }
    if (!key.secret.empty()) {
        return key_error(fmt::format("{}: {} keys take 'public_key_file', not 'secret'", path, key.alg));
    }
    std::ifstream in(key.public_key_file, std::ios::binary);
    if (!in) {
        return key_error(fmt::format("{}.public_key_file: cannot read '{}'", path, key.public_key_file));
    }
    std::ostringstream text;
    text << in.rdbuf();
    auto loaded = key_from_pem(key.kid, alg, text.str());
    if (!loaded) {
        return key_error(
            fmt::format("{}.public_key_file '{}': {}", path, key.public_key_file, loaded.status().message()));
    }
    return loaded;
}

}  // namespace sluice::auth
