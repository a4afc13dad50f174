// Request values: parses the claims and client parameters once (see request.h).
#include "config/rules/request.h"

#include "config/rules/json.h"

namespace sluice::config::rules {
namespace {

const Value kNull;

const Value& find(const std::vector<std::pair<std::string, Value>>& members, std::string_view name) {
    for (const auto& [n, v] : members) {
        if (n == name) {
            return v;
        }
    }
    return kNull;
}

}  // namespace

protocol::Result<Request> Request::from_json(std::string_view claims_json, std::string_view parameters_json) {
    Request out;
    std::string error;
    auto claims = json_object_members(claims_json, &error);
    if (!claims) {
        return protocol::Status(protocol::ErrorCode::kRulesRequestError, "token claims: " + error);
    }
    out.m_jwt = std::string(claims_json);
    out.m_claims = *claims;
    for (const auto& [name, value] : *claims) {
        if (name == "sub") {
            out.m_user_id = value;
        } else if (name == "parameters" && value.type() == ValueType::kText) {
            std::string ignored;
            if (auto params = json_object_members(value.bytes(), &ignored)) {
                out.m_token_parameters = std::move(*params);
            }
        }
    }
    if (!parameters_json.empty() && parameters_json != "null") {
        auto params = json_object_members(parameters_json, &error);
        if (!params) {
            return protocol::Status(protocol::ErrorCode::kRulesRequestError, "client parameters: " + error);
        }
        out.m_parameters = std::string(parameters_json);
        out.m_client_parameters = std::move(*params);
    }
    return out;
}

const Value& Request::token_parameter(std::string_view name) const {
    if (name == "user_id") {
        return m_user_id;
    }
    return find(m_token_parameters, name);
}

const Value& Request::client_parameter(std::string_view name) const { return find(m_client_parameters, name); }

const Value& Request::claim(std::string_view name) const { return find(m_claims, name); }

void Request::set_streams(bool include_defaults, std::vector<StreamSubscription> subscriptions) {
    m_include_defaults = include_defaults;
    m_subscriptions = std::move(subscriptions);
    m_subscription_parameters.clear();
    m_subscription_errors.clear();
    for (const auto& s : m_subscriptions) {
        auto parsed = SubscriptionParameters::from_json(s.parameters);
        if (parsed) {
            m_subscription_parameters.emplace_back(std::move(parsed).value());
            m_subscription_errors.emplace_back();
        } else {
            m_subscription_parameters.emplace_back();
            m_subscription_errors.push_back(parsed.status().message());
        }
    }
}

protocol::Result<SubscriptionParameters> SubscriptionParameters::from_json(std::string_view json) {
    SubscriptionParameters out;
    if (json.empty() || json == "null") {
        return out;
    }
    std::string error;
    auto members = json_object_members(json, &error);
    if (!members) {
        return protocol::Status(protocol::ErrorCode::kRulesRequestError, "subscription parameters: " + error);
    }
    out.m_json = std::string(json);
    out.m_members = std::move(*members);
    return out;
}

const Value& SubscriptionParameters::parameter(std::string_view name) const { return find(m_members, name); }

}  // namespace sluice::config::rules
