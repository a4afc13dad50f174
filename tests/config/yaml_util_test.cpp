// ${ENV} substitution and edit distance.
#include <catch2/catch.hpp>

#include "config/yaml_util.h"

using sluice::config::substitute_env;

namespace {
std::optional<std::string> env(std::string_view name) {
    if (name == "A") {
        return "alpha";
    }
    if (name == "EMPTY") {
        return "";
    }
    return std::nullopt;
}
}  // namespace

TEST_CASE("substitute_env replaces references and reports what it cannot") {
    CHECK(substitute_env("x${A}y", env).value == "xalphay");
    CHECK(substitute_env("${EMPTY:-d}", env).value == "");
    CHECK(substitute_env("${B:-dflt}", env).value == "dflt");
    CHECK(substitute_env("$$A $5", env).value == "$A $5");
    CHECK(substitute_env("${B}", env).error.find("'B' is not set") != std::string::npos);
    CHECK(substitute_env("${A", env).error.find("unterminated") != std::string::npos);
    CHECK(substitute_env("${A-B}", env).error.find("not a valid") != std::string::npos);
}

TEST_CASE("edit_distance") {
    CHECK(sluice::config::edit_distance("prot", "port") == 2);
    CHECK(sluice::config::edit_distance("formt", "format") == 1);
    CHECK(sluice::config::edit_distance("", "abc") == 3);
}
