// JWS compact serialization (RFC 7515 §3.1, §7.1): splits a token into header, payload and signature,
// decodes base64url (RFC 4648 §5, unpadded) and reads the JOSE header's alg and kid (RFC 7518 §3.1).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "protocol/status.h"

namespace sluice::auth {

// The JWS algorithms Sluice verifies; "none" is never one of them.
enum class Algorithm {
    kHS256,
    kHS384,
    kHS512,
    kRS256,
    kRS384,
    kRS512,
    kPS256,
    kPS384,
    kPS512,
    kES256,
    kES384,
    kES512,
    kEdDSA
};

// Which kind of key an algorithm needs; a key of one family never verifies another family's algorithm.
enum class KeyFamily { kHmac, kRsa, kEc, kEd25519 };

[[nodiscard]] std::optional<Algorithm> algorithm_from_name(std::string_view name);
[[nodiscard]] std::string_view algorithm_name(Algorithm alg);
[[nodiscard]] KeyFamily key_family(Algorithm alg);

// Strict unpadded base64url: rejects '=', characters outside the alphabet and non-zero trailing bits.
[[nodiscard]] std::optional<std::string> base64url_decode(std::string_view text);
[[nodiscard]] std::string base64url_encode(std::string_view bytes);

// Longer tokens are rejected before any decoding.
inline constexpr std::size_t kMaxTokenBytes = 16 * 1024;

struct JwtParts {
    std::string signing_input;  // "<header b64>.<payload b64>" exactly as sent: the signed bytes
    std::string header_json;
    std::string payload_json;  // decoded, but not parsed: claims are read only after the signature checks
    std::string signature;     // raw signature bytes
    Algorithm alg = Algorithm::kHS256;
    std::optional<std::string> kid;
};

// Splits and decodes a token and checks its header (a JSON object with a supported alg, no "crit", no
// duplicate members). Errors are SL5102 with a message naming the check; they never quote the token.
[[nodiscard]] protocol::Result<JwtParts> parse_jwt(std::string_view token);

// A header or claim value made safe to show in a message: printable ASCII, at most 64 characters.
[[nodiscard]] std::string printable(std::string_view untrusted);

}  // namespace sluice::auth
