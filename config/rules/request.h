// The request side of the rules: a verified token's claims and the client's parameters, parsed once
// per connection and read by parameter queries (request.user_id(), request.jwt(),
// request.parameters(), token_parameters.x, user_parameters.x).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/rules/value.h"
#include "protocol/status.h"

namespace sluice::config::rules {

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
    // user_parameters.<name>: one client parameter (legacy form). NULL when absent.
    [[nodiscard]] const Value& client_parameter(std::string_view name) const;

private:
    Value m_user_id;
    std::string m_jwt;
    std::string m_parameters = "{}";
    std::vector<std::pair<std::string, Value>> m_token_parameters;
    std::vector<std::pair<std::string, Value>> m_client_parameters;
};

}  // namespace sluice::config::rules
