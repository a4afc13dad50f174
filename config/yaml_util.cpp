// Positions, ${ENV_VAR} substitution and suggestions for the YAML loaders.
#include "config/yaml_util.h"

#include <algorithm>
#include <vector>

#include <yaml-cpp/mark.h>

namespace sluice::config {

protocol::SourcePos to_pos(const std::string& file, const YAML::Mark& mark) {
    if (mark.is_null()) {
        return {file, 0, 0};
    }
    return {file, mark.line + 1, mark.column + 1};
}

EnvSubstitution substitute_env(std::string_view text, const EnvLookup& env) {
    EnvSubstitution out;
    std::size_t i = 0;
    while (i < text.size()) {
        const char c = text[i];
        if (c != '$' || i + 1 >= text.size()) {
            out.value += c;
            ++i;
            continue;
        }
        if (text[i + 1] == '$') {
            out.value += '$';
            i += 2;
            continue;
        }
        if (text[i + 1] != '{') {
            out.value += c;
            ++i;
            continue;
        }
        const auto close = text.find('}', i + 2);
        if (close == std::string_view::npos) {
            out.error = "unterminated '${' (write '$$' for a literal '$')";
            return out;
        }
        std::string_view body = text.substr(i + 2, close - i - 2);
        std::optional<std::string_view> fallback;
        if (auto sep = body.find(":-"); sep != std::string_view::npos) {
            fallback = body.substr(sep + 2);
            body = body.substr(0, sep);
        }
        const bool valid_name = !body.empty() && std::all_of(body.begin(), body.end(), [](char ch) {
            return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_';
        });
        if (!valid_name) {
            out.error = "'${" + std::string(body) + "}' is not a valid environment variable reference";
            return out;
        }
        if (auto value = env(body); value.has_value()) {
            out.value += *value;
        } else if (fallback) {
            out.value += *fallback;
        } else {
            out.error = "environment variable '" + std::string(body) + "' is not set (write ${" + std::string(body) +
                        ":-default} to give a fallback)";
            return out;
        }
        i = close + 1;
    }
    return out;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) {
        row[j] = j;
    }
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t above = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diagonal = above;
        }
    }
    return row[b.size()];
}

}  // namespace sluice::config
