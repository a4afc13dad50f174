// JWS compact serialization: token splitting, base64url and the JOSE header (RFC 7515, RFC 7518 §3.1).
#include "server/auth/jwt.h"

#include <array>
#include <cstdint>

#include <fmt/format.h>

#include "server/auth/detail/json.h"

namespace sluice::auth {
namespace {

using protocol::ErrorCode;
using protocol::Status;

struct AlgorithmName {
    Algorithm alg;
    std::string_view name;
    KeyFamily family;
};

constexpr std::array kAlgorithms{
    AlgorithmName{Algorithm::kHS256, "HS256", KeyFamily::kHmac},
    AlgorithmName{Algorithm::kHS384, "HS384", KeyFamily::kHmac},
    AlgorithmName{Algorithm::kHS512, "HS512", KeyFamily::kHmac},
    AlgorithmName{Algorithm::kRS256, "RS256", KeyFamily::kRsa},
    AlgorithmName{Algorithm::kRS384, "RS384", KeyFamily::kRsa},
    AlgorithmName{Algorithm::kRS512, "RS512", KeyFamily::kRsa},
    AlgorithmName{Algorithm::kPS256, "PS256", KeyFamily::kRsa},
    AlgorithmName{Algorithm::kPS384, "PS384", KeyFamily::kRsa},
    AlgorithmName{Algorithm::kPS512, "PS512", KeyFamily::kRsa},
    AlgorithmName{Algorithm::kES256, "ES256", KeyFamily::kEc},
    AlgorithmName{Algorithm::kES384, "ES384", KeyFamily::kEc},
    AlgorithmName{Algorithm::kES512, "ES512", KeyFamily::kEc},
    AlgorithmName{Algorithm::kEdDSA, "EdDSA", KeyFamily::kEd25519},
};

constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int sextet(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

Status invalid(std::string message) { return {ErrorCode::kAuthInvalid, std::move(message)}; }

}  // namespace

std::optional<Algorithm> algorithm_from_name(std::string_view name) {
    for (const auto& a : kAlgorithms) {
        if (a.name == name) {
            return a.alg;
        }
    }
    return std::nullopt;
}

std::string_view algorithm_name(Algorithm alg) {
    for (const auto& a : kAlgorithms) {
        if (a.alg == alg) {
            return a.name;
        }
    }
    return "?";
}

KeyFamily key_family(Algorithm alg) {
    for (const auto& a : kAlgorithms) {
        if (a.alg == alg) {
            return a.family;
        }
    }
    return KeyFamily::kHmac;
}

std::optional<std::string> base64url_decode(std::string_view text) {
    if (text.size() % 4 == 1) {
        return std::nullopt;
    }
    std::string out;
    out.reserve(text.size() * 3 / 4);
    std::uint32_t acc = 0;
    int bits = 0;
    for (char c : text) {
        const int v = sextet(c);
        if (v < 0) {
            return std::nullopt;
        }
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xFF));
        }
    }
    // The leftover bits (2 or 4) must be zero, so each byte string has exactly one encoding.
    if (bits > 0 && (acc & ((1U << bits) - 1)) != 0) {
        return std::nullopt;
    }
    return out;
}

std::string base64url_encode(std::string_view bytes) {
    std::string out;
    out.reserve((bytes.size() * 4 + 2) / 3);
    std::uint32_t acc = 0;
    int bits = 0;
    for (char c : bytes) {
        acc = (acc << 8) | static_cast<unsigned char>(c);
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out.push_back(kAlphabet[(acc >> bits) & 0x3F]);
        }
    }
    if (bits > 0) {
        out.push_back(kAlphabet[(acc << (6 - bits)) & 0x3F]);
    }
    return out;
}

std::string printable(std::string_view untrusted) {
    std::string out;
    for (char c : untrusted.substr(0, 64)) {
        out.push_back(c >= 0x20 && c < 0x7F ? c : '?');
    }
    if (untrusted.size() > 64) {
        out += "...";
    }
    return out;
}

protocol::Result<JwtParts> parse_jwt(std::string_view token) {
    if (token.size() > kMaxTokenBytes) {
        return invalid(fmt::format("token is longer than {} bytes", kMaxTokenBytes));
    }
    const auto first = token.find('.');
    const auto second = first == std::string_view::npos ? first : token.find('.', first + 1);
    if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos) {
        return invalid("token is not a JWT: expected three base64url parts separated by '.'");
    }
    JwtParts parts;
    auto header = base64url_decode(token.substr(0, first));
    auto payload = base64url_decode(token.substr(first + 1, second - first - 1));
    auto signature = base64url_decode(token.substr(second + 1));
    if (!header || header->empty()) {
        return invalid("token header is not valid base64url");
    }
    if (!payload || payload->empty()) {
        return invalid("token payload is not valid base64url");
    }
    if (!signature) {
        return invalid("token signature is not valid base64url");
    }
    parts.signing_input = std::string(token.substr(0, second));
    parts.header_json = std::move(*header);
    parts.payload_json = std::move(*payload);
    parts.signature = std::move(*signature);

    simdjson::dom::element root;
    simdjson::dom::object object;
    if (detail::thread_parser().parse(parts.header_json).get(root) != simdjson::SUCCESS ||
        root.get_object().get(object) != simdjson::SUCCESS) {
        return invalid("token header is not a JSON object");
    }
    if (detail::has_duplicate_members(object)) {
        return invalid("token header has a duplicate member");
    }
    std::string_view alg_name;
    simdjson::dom::element alg_value;
    if (object.at_key("alg").get(alg_value) != simdjson::SUCCESS) {
        return invalid("token header has no alg");
    }
    if (alg_value.get_string().get(alg_name) != simdjson::SUCCESS) {
        return invalid("token header alg is not a string");
    }
    if (alg_name == "none" || alg_name == "None" || alg_name == "NONE") {
        return invalid("unsigned tokens (alg none) are not accepted");
    }
    const auto alg = algorithm_from_name(alg_name);
    if (!alg) {
        return invalid(fmt::format("token algorithm '{}' is not supported", printable(alg_name)));
    }
    parts.alg = *alg;
    // RFC 7515 §4.1.11: extensions listed in crit must be understood; Sluice understands none (e.g. b64).
    simdjson::dom::element ignored;
    if (object.at_key("crit").get(ignored) == simdjson::SUCCESS) {
        return invalid("token header has a crit member, and no JWS extension is supported");
    }
    simdjson::dom::element kid_value;
    if (object.at_key("kid").get(kid_value) == simdjson::SUCCESS) {
        std::string_view kid;
        if (kid_value.get_string().get(kid) != simdjson::SUCCESS) {
            return invalid("token header kid is not a string");
        }
        parts.kid = std::string(kid);
    }
    if (parts.signature.empty()) {
        return invalid("token has an empty signature");
    }
    return parts;
}

}  // namespace sluice::auth
