// JWK Set reading: JSON Web Keys to OpenSSL public keys via EVP_PKEY_fromdata (RFC 7517, RFC 7518 §6).
#include "server/auth/jwks.h"

#include <optional>

#include <fmt/format.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "server/auth/detail/json.h"

namespace sluice::auth {
namespace {

using protocol::ErrorCode;
using protocol::Status;
using simdjson::dom::element;
using simdjson::dom::object;

// A JWK that cannot become a key: the reason goes to JwkSet::skipped.
struct Skip {
    std::string reason;
};

std::optional<std::string> member_string(object o, std::string_view name) {
    std::string_view value;
    if (o.at_key(name).get_string().get(value) != simdjson::SUCCESS) {
        return std::nullopt;
    }
    return std::string(value);
}

// A base64url member decoded to bytes, or a Skip saying what is wrong with it.
std::variant<std::string, Skip> member_bytes(object o, std::string_view name) {
    auto text = member_string(o, name);
    if (!text) {
        return Skip{fmt::format("no '{}'", name)};
    }
    auto decoded = base64url_decode(*text);
    if (!decoded || decoded->empty()) {
        return Skip{fmt::format("'{}' is not base64url", name)};
    }
    return std::move(*decoded);
}

struct ParamBuild {
    OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
    std::vector<BIGNUM*> bns;
    ~ParamBuild() {
        for (BIGNUM* bn : bns) {
            BN_free(bn);
        }
        OSSL_PARAM_BLD_free(bld);
    }
    ParamBuild() = default;
    ParamBuild(const ParamBuild&) = delete;
    ParamBuild& operator=(const ParamBuild&) = delete;

    bool push_bn(const char* key, const std::string& big_endian) {
        BIGNUM* bn = BN_bin2bn(reinterpret_cast<const unsigned char*>(big_endian.data()),
                               static_cast<int>(big_endian.size()), nullptr);
        if (bn == nullptr) {
            return false;
        }
        bns.push_back(bn);
        return OSSL_PARAM_BLD_push_BN(bld, key, bn) == 1;
    }
};

// Builds a public EVP_PKEY of `type` ("RSA", "EC") from parameters; nullptr when OpenSSL refuses them.
EVP_PKEY* pkey_from_params(const char* type, ParamBuild& build) {
    OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(build.bld);
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
    EVP_PKEY* pkey = nullptr;
    if (params == nullptr || ctx == nullptr || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        pkey = nullptr;
    }
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    if (pkey != nullptr) {
        // Rejects EC points that are not on the curve (invalid-curve attacks).
        EVP_PKEY_CTX* check = EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr);
        const bool ok = check != nullptr && EVP_PKEY_public_check(check) == 1;
        EVP_PKEY_CTX_free(check);
        if (!ok) {
            EVP_PKEY_free(pkey);
            pkey = nullptr;
        }
    }
    return pkey;
}

using KeyOrSkip = std::variant<VerifyKey, Skip>;

KeyOrSkip from_result(protocol::Result<VerifyKey> r) {
    if (r) {
        return std::move(r).value();
    }
    return Skip{r.status().message()};
}

KeyOrSkip rsa_key(object jwk, const std::string& kid, std::optional<Algorithm> alg) {
    auto n = member_bytes(jwk, "n");
    auto e = member_bytes(jwk, "e");
    if (auto* skip = std::get_if<Skip>(&n)) return std::move(*skip);
    if (auto* skip = std::get_if<Skip>(&e)) return std::move(*skip);
    ParamBuild build;
    if (build.bld == nullptr || !build.push_bn(OSSL_PKEY_PARAM_RSA_N, std::get<std::string>(n)) ||
        !build.push_bn(OSSL_PKEY_PARAM_RSA_E, std::get<std::string>(e))) {
        return Skip{"cannot build the RSA key"};
    }
    EVP_PKEY* pkey = pkey_from_params("RSA", build);
    if (pkey == nullptr) {
        return Skip{"OpenSSL rejected the RSA key"};
    }
    return from_result(VerifyKey::public_key(kid, alg, pkey));
}

KeyOrSkip ec_key(object jwk, const std::string& kid, std::optional<Algorithm> alg) {
    const auto crv = member_string(jwk, "crv");
    std::size_t size = 0;
    const char* group = nullptr;
    if (crv == "P-256") {
        size = 32, group = "P-256";
    } else if (crv == "P-384") {
        size = 48, group = "P-384";
    } else if (crv == "P-521") {
        size = 66, group = "P-521";
    } else {
        return Skip{fmt::format("unsupported EC crv '{}'", printable(crv.value_or("")))};
    }
    auto x = member_bytes(jwk, "x");
    auto y = member_bytes(jwk, "y");
    if (auto* skip = std::get_if<Skip>(&x)) return std::move(*skip);
    if (auto* skip = std::get_if<Skip>(&y)) return std::move(*skip);
    // RFC 7518 §6.2.1.2-3: x and y are the full coordinate size.
    if (std::get<std::string>(x).size() != size || std::get<std::string>(y).size() != size) {
        return Skip{fmt::format("x and y must be {} bytes for {}", size, *crv)};
    }
    const std::string point = '\x04' + std::get<std::string>(x) + std::get<std::string>(y);  // uncompressed
    ParamBuild build;
    if (build.bld == nullptr || OSSL_PARAM_BLD_push_utf8_string(build.bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(build.bld, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) != 1) {
        return Skip{"cannot build the EC key"};
    }
    EVP_PKEY* pkey = pkey_from_params("EC", build);
    if (pkey == nullptr) {
        return Skip{"OpenSSL rejected the EC key (point not on the curve?)"};
    }
    return from_result(VerifyKey::public_key(kid, alg, pkey));
}

KeyOrSkip okp_key(object jwk, const std::string& kid, std::optional<Algorithm> alg) {
    const auto crv = member_string(jwk, "crv");
    if (crv != "Ed25519") {
        return Skip{fmt::format("unsupported OKP crv '{}'", printable(crv.value_or("")))};
    }
    auto x = member_bytes(jwk, "x");
    if (auto* skip = std::get_if<Skip>(&x)) return std::move(*skip);
    const auto& raw = std::get<std::string>(x);
    if (raw.size() != 32) {
        return Skip{"Ed25519 x must be 32 bytes"};
    }
    EVP_PKEY* pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                                 reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
    if (pkey == nullptr) {
        return Skip{"OpenSSL rejected the Ed25519 key"};
    }
    return from_result(VerifyKey::public_key(kid, alg, pkey));
}

KeyOrSkip oct_key(object jwk, const std::string& kid, std::optional<Algorithm> alg) {
    auto k = member_bytes(jwk, "k");
    if (auto* skip = std::get_if<Skip>(&k)) return std::move(*skip);
    return from_result(VerifyKey::hmac(kid, alg, std::move(std::get<std::string>(k))));
}

KeyOrSkip read_jwk(object jwk, std::string& kid) {
    kid = member_string(jwk, "kid").value_or("");
    if (detail::has_duplicate_members(jwk)) {
        return Skip{"duplicate member"};
    }
    if (const auto use = member_string(jwk, "use"); use && *use != "sig") {
        return Skip{fmt::format("use is '{}', not 'sig'", printable(*use))};
    }
    std::optional<Algorithm> alg;
    if (const auto alg_name = member_string(jwk, "alg")) {
        alg = algorithm_from_name(*alg_name);
        if (!alg) {
            return Skip{fmt::format("unsupported alg '{}'", printable(*alg_name))};
        }
    }
    const auto kty = member_string(jwk, "kty").value_or("");
    if (alg) {
        const auto family = key_family(*alg);
        const bool fits = (kty == "RSA" && family == KeyFamily::kRsa) || (kty == "EC" && family == KeyFamily::kEc) ||
                          (kty == "OKP" && family == KeyFamily::kEd25519) ||
                          (kty == "oct" && family == KeyFamily::kHmac);
        if (!fits) {
            return Skip{fmt::format("alg {} does not fit kty '{}'", algorithm_name(*alg), printable(kty))};
        }
    }
    if (kty == "RSA") return rsa_key(jwk, kid, alg);
    if (kty == "EC") return ec_key(jwk, kid, alg);
    if (kty == "OKP") return okp_key(jwk, kid, alg);
    if (kty == "oct") return oct_key(jwk, kid, alg);
    return Skip{fmt::format("unsupported kty '{}'", printable(kty))};
}

}  // namespace

protocol::Result<JwkSet> parse_jwks(std::string_view json) {
    simdjson::dom::parser parser;  // JWKS are read rarely and may be large: no shared thread parser
    element root;
    simdjson::dom::array keys;
    if (parser.parse(json.data(), json.size()).get(root) != simdjson::SUCCESS) {
        return Status{ErrorCode::kConfigInvalidValue, "JWKS is not valid JSON"};
    }
    if (root.at_key("keys").get_array().get(keys) != simdjson::SUCCESS) {
        return Status{ErrorCode::kConfigInvalidValue, "JWKS has no \"keys\" array"};
    }
    JwkSet set;
    std::size_t index = 0;
    for (element entry : keys) {
        std::string kid;
        object jwk;
        KeyOrSkip result = entry.get_object().get(jwk) == simdjson::SUCCESS ? read_jwk(jwk, kid)
                                                                            : KeyOrSkip{Skip{"not a JSON object"}};
        if (auto* key = std::get_if<VerifyKey>(&result)) {
            set.keys.push_back(std::make_shared<const VerifyKey>(std::move(*key)));
        } else {
            set.skipped.push_back(fmt::format("key {}{}: {}", index,
                                              kid.empty() ? std::string() : fmt::format(" (kid '{}')", printable(kid)),
                                              std::get<Skip>(result).reason));
        }
        ++index;
    }
    return set;
}

}  // namespace sluice::auth
