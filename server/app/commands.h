// The `sluice` subcommands. main.cpp parses the command line and calls one of these; each returns the
// process exit code (0 success, 1 failure, 2 usage error).
#pragma once

#include <string>

namespace sluice::app {

struct CommandOptions {
    std::string config_path = "sluice.yaml";
    bool create_database = false;  // migrate --create-database
};

int run_command(const CommandOptions& options);
int check_command(const CommandOptions& options);
int migrate_command(const CommandOptions& options);
int compact_command(const CommandOptions& options);
int version_command();

}  // namespace sluice::app
