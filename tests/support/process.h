// Running the real `sluice` binary from tests: one-shot commands with their output, and a long-running
// child that reports readiness through the systemd notify protocol (no log scraping, no sleeps).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace sluice::test {

struct CommandResult {
    int exit_code = -1;
    std::string output;  // stdout and stderr interleaved
};

// Runs argv[0] with the given arguments (and extra "NAME=value" environment entries) to completion.
[[nodiscard]] CommandResult run_command(const std::vector<std::string>& argv,
                                        const std::vector<std::string>& extra_env = {});

// Path of the built sluice binary.
[[nodiscard]] std::string sluice_binary();

// A loopback port that was free a moment ago (the kernel's pick for a bound-then-closed socket), for
// a child that must listen on a port known in advance.
[[nodiscard]] std::uint16_t free_port();

// Polls `condition` every 50 ms until it holds or `seconds` pass; returns its last value. For
// conditions on a live process (a metric reaching a value), never as a pause.
[[nodiscard]] bool eventually(const std::function<bool()>& condition, int seconds = 60);

class ServiceProcess {
public:
    // Starts argv with NOTIFY_SOCKET pointing at a socket this object owns.
    explicit ServiceProcess(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env = {});
    ~ServiceProcess();
    ServiceProcess(const ServiceProcess&) = delete;
    ServiceProcess& operator=(const ServiceProcess&) = delete;

    // Blocks until the child sends a notification containing `state` (e.g. "READY=1"); false if the
    // child exits first. A generous timeout guards against a hung child; it is not a synchronisation.
    bool wait_for_notification(const std::string& state, int timeout_seconds = 60);
    void send_signal(int signal);
    // Waits for exit; returns the exit code (128 + signal when killed).
    int wait_exit();
    [[nodiscard]] std::string output();  // everything the child wrote so far (after wait_exit: all)

private:
    pid_t m_pid = -1;
    int m_notify_fd = -1;
    std::string m_notify_path;
    std::string m_output_path;
};

}  // namespace sluice::test
