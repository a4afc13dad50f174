// Shared state of one compile of a rules file: the text, its line index and the diagnostics, with
// helpers that place YAML-node and SQL-span problems at file:line:col. Internal.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "config/diagnostic.h"
#include "config/rules/ast.h"
#include "config/rules/detail/source_map.h"

namespace sluice::config::rules::detail {

struct CompileContext {
    std::string_view text;
    const std::string& file;
    LineIndex lines;
    std::vector<Diagnostic>& diagnostics;

    CompileContext(std::string_view t, const std::string& f, std::vector<Diagnostic>& d)
        : text(t), file(f), lines(t), diagnostics(d) {}

    [[nodiscard]] std::size_t offset(const YAML::Mark& mark) const;
    void report(const YAML::Mark& mark, std::string path, protocol::ErrorCode code, std::string message,
                Severity severity = Severity::kError);
    // Reports SQL errors of the scalar `node`, placing each span inside the file.
    void report_sql(const YAML::Node& node, const std::string& sql, const std::string& path,
                    const std::vector<SqlError>& errors, Severity severity = Severity::kError);
    // "; did you mean 'x'?" when a candidate is close to key, else "".
    [[nodiscard]] static std::string suggestion(const std::string& key, std::initializer_list<std::string_view> candidates);
};

}  // namespace sluice::config::rules::detail

namespace sluice::config::rules {
class WriteRules;
// Compiles the write_rules section into out (write_rules.cpp).
void compile_write_rules(detail::CompileContext& ctx, const YAML::Node& node, WriteRules& out);
}  // namespace sluice::config::rules
