// The request side of the rules: a verified token's claims and the client's parameters, parsed once
// per connection and read by parameter queries (request.user_id(), request.jwt(),
// request.parameters(), token_parameters.x, user_parameters.x); for Sync Streams also the stream
// subscriptions (auth.*, connection.*, subscription.* in stream queries).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/rules/value.h"
#include "protocol/status.h"

namespace sluice::config::rules {

// One Sync Streams subscription as the client sends it in `streams.subscriptions`; its id is its
// index in the request's list.
struct StreamSubscription {
    std::string stream;
    std::string parameters = "{}";        // a JSON object (text); "" or "null" means {}
    std::optional<int> override_priority;  // 0..3: the priority of the buckets it brings
};

// A subscription's parameters, parsed once: subscription.parameter('k') and subscription.parameters().
class SubscriptionParameters {
public:
    // Fails (SL2021) when json is not a JSON object; "" and "null" mean {}.
    [[nodiscard]] static protocol::Result<SubscriptionParameters> from_json(std::string_view json);
    [[nodiscard]] const Value& parameter(std::string_view name) const;
    [[nodiscard]] const std::string& json() const { return m_json; }

private:
    std::string m_json = "{}";
    std::vector<std::pair<std::string, Value>> m_members;
};

class Request {
public:
    // claims_json: the JWT payload (an object); parameters_json: the client's "parameters" object
    // ("" or "null" means none). Fails with SL2021 when either is not a JSON object.
    [[nodiscard]] static protocol::Result<Request> from_json(std::string_view claims_json,
                                                             std::string_view parameters_json);

    // request.user_id(): the "sub" claim (NULL when absent).
    [[nodiscard]] const Value& user_id() const { return m_user_id; }
    // request.jwt(): the payload as JSON text.
    [[nodiscard]] const std::string& jwt() const { return m_jwt; }
    // request.parameters(): the client parameters as JSON text ("{}" when none).
    [[nodiscard]] const std::string& parameters() const { return m_parameters; }
    // token_parameters.<name>: user_id is the "sub" claim; other names come from the "parameters"
    // claim object (the legacy form). NULL when absent.
    [[nodiscard]] const Value& token_parameter(std::string_view name) const;
    // user_parameters.<name>: one client parameter (legacy form). NULL when absent. Also
    // connection.parameter('<name>') in Sync Streams.
    [[nodiscard]] const Value& client_parameter(std::string_view name) const;
    // auth.parameter('<name>') in Sync Streams: a top-level claim of the token. NULL when absent.
    [[nodiscard]] const Value& claim(std::string_view name) const;

    // Sync Streams: which streams the connection reads. include_defaults: also every stream with
    // auto_subscribe: true. Replaces the previous set (the client sends its whole list each time).
    // A subscription whose parameters are not a JSON object is kept: resolve_buckets reports it as
    // that subscription's error and gives it no buckets.
    void set_streams(bool include_defaults, std::vector<StreamSubscription> subscriptions);
    [[nodiscard]] bool include_defaults() const { return m_include_defaults; }
    [[nodiscard]] const std::vector<StreamSubscription>& subscriptions() const { return m_subscriptions; }
    // The parsed parameters of subscriptions()[i], or null (with the reason in subscription_error(i)).
    [[nodiscard]] const SubscriptionParameters* subscription_parameters(std::size_t i) const {
        return m_subscription_parameters[i] ? &*m_subscription_parameters[i] : nullptr;
    }
    [[nodiscard]] const std::string& subscription_error(std::size_t i) const { return m_subscription_errors[i]; }

private:
    Value m_user_id;
    std::string m_jwt;
    std::string m_parameters = "{}";
    std::vector<std::pair<std::string, Value>> m_token_parameters;
    std::vector<std::pair<std::string, Value>> m_client_parameters;
    std::vector<std::pair<std::string, Value>> m_claims;
    bool m_include_defaults = true;
    std::vector<StreamSubscription> m_subscriptions;
    std::vector<std::optional<SubscriptionParameters>> m_subscription_parameters;
    std::vector<std::string> m_subscription_errors;
};

}  // namespace sluice::config::rules
