// Diagnostic placement for the rules compiler (see detail/yaml_context.h).
#include "config/rules/detail/yaml_context.h"

#include "config/yaml_util.h"

namespace sluice::config::rules::detail {

std::size_t CompileContext::offset(const YAML::Mark& mark) const {
    if (mark.is_null()) {
        return 0;
    }
    return lines.offset_of(mark.line, mark.column);
}

void CompileContext::report(const YAML::Mark& mark, std::string path, protocol::ErrorCode code, std::string message,
                            Severity severity) {
    diagnostics.push_back({severity, code, to_pos(file, mark), std::move(path), std::move(message)});
}

void CompileContext::report_sql(const YAML::Node& node, const std::string& sql, const std::string& path,
                                const std::vector<SqlError>& errors, Severity severity) {
    if (errors.empty()) {
        return;
    }
    const ScalarMap map(text, offset(node.Mark()), sql);
    for (const auto& e : errors) {
        diagnostics.push_back({severity, e.code, lines.pos(file, map.file_offset(e.span.begin)), path, e.message});
    }
}

std::string CompileContext::suggestion(const std::string& key, std::initializer_list<std::string_view> candidates) {
    std::string_view best;
    std::size_t best_distance = 3;
    for (auto c : candidates) {
        const auto d = edit_distance(key, c);
        if (d < best_distance) {
            best_distance = d;
            best = c;
        }
    }
    return best.empty() ? std::string() : "; did you mean '" + std::string(best) + "'?";
}

}  // namespace sluice::config::rules::detail
