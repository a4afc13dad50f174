// The Sync Streams half of the rules compiler (`config: edition: 2|3`, `with:`, `streams:`). Internal.
#pragma once

#include <yaml-cpp/yaml.h>

#include "config/rules/detail/compiled.h"
#include "config/rules/detail/yaml_context.h"

namespace sluice::config::rules::detail {

// Compiles the `with:` (may be null) and `streams:` sections into out: each stream query's OR
// alternatives become bucket definitions with one data query, its subqueries, with: queries and
// joins become StreamSubquery lookups. edition 2 lacks with:, queries:, joins, nested subqueries,
// BETWEEN, CASE and ARRAY/ROW lists. Every problem goes to ctx.
void compile_streams(CompileContext& ctx, int edition, const YAML::Node* with, const YAML::Node& streams,
                     Compiled& out);

}  // namespace sluice::config::rules::detail
