// Pins kProtocolVersion to the latest entry of the version log in protocol/README.md.
#include <fstream>
#include <regex>
#include <sstream>

#include <catch2/catch.hpp>

#include "protocol/wire/version.h"

TEST_CASE("kProtocolVersion is the latest entry of protocol/README.md's version log") {
    std::ifstream in(SLUICE_SOURCE_DIR "/protocol/README.md");
    REQUIRE(in);
    std::stringstream text;
    text << in.rdbuf();
    const std::string readme = text.str();
    const auto log = readme.find("## Protocol version log");
    REQUIRE(log != std::string::npos);
    // Entries are lines "N. ..." after the heading; the last one is the current version.
    const std::regex entry(R"(^(\d+)\. )", std::regex::multiline);
    int latest = 0;
    int count = 0;
    const std::string section = readme.substr(log);
    for (auto it = std::sregex_iterator(section.begin(), section.end(), entry); it != std::sregex_iterator(); ++it) {
        const int n = std::stoi((*it)[1]);
        CHECK(n == latest + 1);  // numbered 1, 2, 3, ... without gaps
        latest = n;
        ++count;
    }
    CHECK(count >= 1);
    CHECK(latest == sluice::protocol::wire::kProtocolVersion);
}
