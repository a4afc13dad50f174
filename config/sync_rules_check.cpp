// Structural checks of a sync-rules file: valid YAML, known top-level sections, each bucket definition
// a mapping with a data section. The SQL inside is compiled by the rules compiler.
#include "config/sync_rules_check.h"

#include <algorithm>
#include <array>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "config/yaml_util.h"

namespace sluice::config {
namespace {

using protocol::ErrorCode;

constexpr std::array<std::string_view, 5> kSections{"bucket_definitions", "write_rules", "config", "streams", "with"};
constexpr std::string_view kTopLevel = "bucket_definitions, write_rules, config, streams, with";

}  // namespace

std::vector<Diagnostic> check_sync_rules(std::string_view text, const std::string& file) {
    std::vector<Diagnostic> out;
    auto error = [&](const YAML::Mark& mark, std::string path, std::string message) {
        out.push_back({Severity::kError, ErrorCode::kRulesSyntax, to_pos(file, mark), std::move(path),
                       std::move(message)});
    };
    YAML::Node root;
    try {
        root = YAML::Load(std::string(text));
    } catch (const YAML::Exception& e) {
        error(e.mark, "", e.msg);
        return out;
    }
    if (!root.IsMap()) {
        error(root.Mark(), "", fmt::format("expected a mapping with sections ({})", kTopLevel));
        return out;
    }
    for (const auto& section : root) {
        const auto key = section.first.Scalar();
        if (std::find(kSections.begin(), kSections.end(), key) == kSections.end()) {
            error(section.first.Mark(), key, fmt::format("unknown section '{}'; expected one of: {}", key, kTopLevel));
        }
    }
    const auto definitions = root["bucket_definitions"];
    if (!definitions && !root["streams"]) {
        error(root.Mark(), "", "no bucket_definitions (or streams) section: clients would receive nothing");
    }
    if (definitions && !definitions.IsMap()) {
        error(definitions.Mark(), "bucket_definitions", "expected a mapping of bucket names to definitions");
    } else if (definitions) {
        for (const auto& def : definitions) {
            const auto name = def.first.Scalar();
            const auto path = "bucket_definitions." + name;
            if (!def.second.IsMap()) {
                error(def.second.Mark(), path, "expected a mapping with 'data' and optional 'parameters', 'priority'");
            } else if (!def.second["data"]) {
                error(def.first.Mark(), path, "missing 'data': a bucket needs at least one data query");
            }
        }
    }
    return out;
}

}  // namespace sluice::config
