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

}  // namespace sluice::config::rules
