// Registered-claim checks (RFC 7519 §4.1.1-4.1.6) on the payload of a token whose signature verified.
#include "server/auth/claims.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include <fmt/format.h>

#include "server/auth/detail/json.h"
#include "server/auth/jwt.h"

namespace sluice::auth {
namespace {

using protocol::ErrorCode;
using protocol::Status;
using simdjson::dom::element;

Status invalid(std::string message) { return {ErrorCode::kAuthInvalid, std::move(message)}; }

// Far beyond any real date; keeps exp + leeway and exp - iat free of overflow.
constexpr std::int64_t kMaxSeconds = 1'000'000'000'000'000;

// A NumericDate (RFC 7519 §2): integer or fractional seconds; fractions are truncated. A missing
// member is nullopt; a member of another type sets `wrong_type`.
std::optional<std::int64_t> numeric_date(simdjson::dom::object payload, std::string_view name, bool& wrong_type) {
    element value;
    if (payload.at_key(name).get(value) != simdjson::SUCCESS) {
        return std::nullopt;
    }
    std::int64_t i = 0;
    if (value.get_int64().get(i) == simdjson::SUCCESS && i > -kMaxSeconds && i < kMaxSeconds) {
        return i;
    }
    double d = 0;
    if (value.get_double().get(d) == simdjson::SUCCESS && std::isfinite(d) &&
        std::fabs(d) < static_cast<double>(kMaxSeconds)) {
        return static_cast<std::int64_t>(d);
    }
    wrong_type = true;
    return std::nullopt;
}

}  // namespace

protocol::Result<VerifiedToken> check_claims(std::string_view payload_json, const ClaimRules& rules, std::int64_t now) {
    std::string json(payload_json);
    element root;
    simdjson::dom::object payload;
    if (detail::thread_parser().parse(json).get(root) != simdjson::SUCCESS ||
        root.get_object().get(payload) != simdjson::SUCCESS) {
        return invalid("token payload is not a JSON object");
    }
    if (detail::has_duplicate_members(payload)) {
        return invalid("token payload has a duplicate claim");
    }

    VerifiedToken token;
    std::string_view sub;
    if (payload.at_key("sub").get_string().get(sub) != simdjson::SUCCESS) {
        return invalid("token has no sub claim (a string user id)");
    }
    if (sub.empty()) {
        return invalid("token sub claim is empty");
    }
    token.user_id = std::string(sub);

    bool wrong_type = false;
    const auto exp = numeric_date(payload, "exp", wrong_type);
    const auto iat = numeric_date(payload, "iat", wrong_type);
    const auto nbf = numeric_date(payload, "nbf", wrong_type);
    if (wrong_type) {
        return invalid("token exp, iat or nbf is not a valid number of seconds");
    }
    if (!exp) {
        return invalid("token has no exp claim");
    }
    if (!iat) {
        return invalid("token has no iat claim");
    }
    const std::int64_t leeway = rules.leeway_seconds;
    if (now >= *exp + leeway) {
        return Status{ErrorCode::kAuthExpired, fmt::format("token expired {} s ago (leeway {} s)", now - *exp, leeway)};
    }
    if (nbf && now + leeway < *nbf) {
        return invalid(fmt::format("token is not valid yet (nbf is {} s ahead, leeway {} s)", *nbf - now, leeway));
    }
    if (now + leeway < *iat) {
        return invalid(fmt::format("token iat is {} s in the future (leeway {} s)", *iat - now, leeway));
    }
    if (*exp < *iat) {
        return invalid("token exp is before its iat");
    }
    if (rules.max_lifetime_seconds > 0 && *exp - *iat > rules.max_lifetime_seconds) {
        return invalid(fmt::format("token lifetime (exp - iat) is {} s, more than auth.max_lifetime_seconds {}",
                                   *exp - *iat, rules.max_lifetime_seconds));
    }

    if (!rules.audience.empty()) {
        element aud;
        if (payload.at_key("aud").get(aud) != simdjson::SUCCESS) {
            return invalid("token has no aud claim, and auth.audience is configured");
        }
        std::vector<std::string_view> values;
        std::string_view one;
        simdjson::dom::array many;
        if (aud.get_string().get(one) == simdjson::SUCCESS) {
            values.push_back(one);
        } else if (aud.get_array().get(many) == simdjson::SUCCESS) {
            for (element e : many) {
                if (e.get_string().get(one) != simdjson::SUCCESS) {
                    return invalid("token aud array holds a value that is not a string");
                }
                values.push_back(one);
            }
        } else {
            return invalid("token aud is neither a string nor an array of strings");
        }
        const bool matches = std::any_of(values.begin(), values.end(), [&](std::string_view v) {
            return std::find(rules.audience.begin(), rules.audience.end(), v) != rules.audience.end();
        });
        if (!matches) {
            return invalid(fmt::format("token aud '{}' matches none of auth.audience",
                                       values.empty() ? std::string() : printable(values.front())));
        }
    }

    token.expires_at = *exp;
    token.claims_json = std::move(json);
    return token;
}

}  // namespace sluice::auth
