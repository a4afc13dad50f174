// `sluice`: command-line entry point. Parses arguments and dispatches to a subcommand; no logic here.
#include <cstdio>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "server/app/commands.h"
#include "server/app/explain_command.h"

namespace {

constexpr std::string_view kUsage = R"(sluice: a partial-replication sync server for Postgres

Usage:
  sluice run     -c <sluice.yaml>   start the server
  sluice check   -c <sluice.yaml>   validate the config and the sync rules (exit 0 or 1)
  sluice migrate -c <sluice.yaml> [--create-database]
                                    apply storage migrations; safe to repeat and to run concurrently
  sluice explain --rules <rules.yaml> ...
                                    show a row's buckets or a user's bucket ids (offline)
  sluice compact -c <sluice.yaml>   supersede old ops in bucket storage (also runs on a schedule)
  sluice version                    print the version
  sluice <command> --help           help for one command

Options:
  -c, --config <file>   config file (default: sluice.yaml)
)";

constexpr std::string_view kRunHelp = R"(sluice run -c <sluice.yaml>

Checks the source Postgres (reachable, wal_level=logical, REPLICATION, free slot), opens the storage
database, applies pending migrations, then runs until SIGTERM or SIGINT.
)";

constexpr std::string_view kCheckHelp = R"(sluice check -c <sluice.yaml>

Validates sluice.yaml and the sync-rules file it names. Prints every problem as
file:line:col: error: key.path: message [code]. Exit 0 when valid, 1 otherwise. Does not connect
to Postgres.
)";

constexpr std::string_view kCompactHelp = R"(sluice compact -c <sluice.yaml>

Compacts bucket storage online: every op superseded by a later op for the same row in the same
bucket becomes a MOVE (no data), which keeps every bucket checksum and every client's state. Safe
while `sluice run` is running. `sluice run` also does it every storage.compact_interval_seconds.
)";

constexpr std::string_view kMigrateHelp = R"(sluice migrate -c <sluice.yaml> [--create-database]

Applies the storage migrations built into this binary to the storage database, recording each in
sluice.schema_migrations. Safe to run twice and from two processes at once.
  --create-database   create the storage database first if it does not exist
)";

int usage_error(std::string_view message) {
    fmt::print(stderr, "sluice: {}\n\n{}", message, kUsage);
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    const std::vector<std::string_view> args(argv + 1, argv + argc);
    if (args.empty()) {
        return usage_error("no command given");
    }
    const std::string_view command = args[0];
    if (command == "--help" || command == "-h" || command == "help") {
        fmt::print("{}", kUsage);
        return 0;
    }
    if (command == "version" || command == "--version") {
        return sluice::app::version_command();
    }
    if (command == "explain") {
        return sluice::app::explain_command({args.begin() + 1, args.end()});
    }
    std::string_view help;
    if (command == "run") {
        help = kRunHelp;
    } else if (command == "check") {
        help = kCheckHelp;
    } else if (command == "migrate") {
        help = kMigrateHelp;
    } else if (command == "compact") {
        help = kCompactHelp;
    } else {
        return usage_error(fmt::format("unknown command '{}'", command));
    }

    sluice::app::CommandOptions options;
    for (std::size_t i = 1; i < args.size(); ++i) {
        const auto arg = args[i];
        if (arg == "--help" || arg == "-h") {
            fmt::print("{}", help);
            return 0;
        }
        if (arg == "-c" || arg == "--config") {
            if (i + 1 >= args.size()) {
                return usage_error(fmt::format("{} needs a file name", arg));
            }
            options.config_path = args[++i];
        } else if (arg.starts_with("--config=")) {
            options.config_path = arg.substr(9);
        } else if (arg == "--create-database" && command == "migrate") {
            options.create_database = true;
        } else {
            return usage_error(fmt::format("unknown option '{}' for '{}'", arg, command));
        }
    }
    if (command == "run") {
        return sluice::app::run_command(options);
    }
    if (command == "check") {
        return sluice::app::check_command(options);
    }
    if (command == "compact") {
        return sluice::app::compact_command(options);
    }
    return sluice::app::migrate_command(options);
}
