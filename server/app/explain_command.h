// `sluice explain`: shows what the sync rules do with one row (its buckets and output rows, its
// lookup entries) or one user (the bucket ids a token and client parameters get, and why), with
// lookups resolved offline from given rows or, with -c <sluice.yaml>, from the live index in storage.
#pragma once

#include <string_view>
#include <vector>

namespace sluice::app {

// args: everything after "explain". Returns the exit code (0 ok, 1 rules or input errors, 2 usage).
int explain_command(const std::vector<std::string_view>& args);

}  // namespace sluice::app
