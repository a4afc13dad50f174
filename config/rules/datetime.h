// unixepoch() and datetime() as SQLite computes them, for the deterministic inputs rules can use:
// ISO-8601 text (date, optional time with fractions, optional Z / +HH:MM offset), Julian day numbers,
// and unix seconds with the 'unixepoch' modifier. 'subsec' keeps milliseconds. Anything else is NULL.
#pragma once

#include <span>

#include "config/rules/value.h"

namespace sluice::config::rules {

[[nodiscard]] Value sql_unixepoch(std::span<const Value> args);
[[nodiscard]] Value sql_datetime(std::span<const Value> args);

}  // namespace sluice::config::rules
