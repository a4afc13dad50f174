// Child processes for end-to-end tests (see process.h).
#include "tests/support/process.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace sluice::test {
namespace {

std::string unique_path(const std::string& stem) {
    static std::atomic<int> counter{0};
    return "/tmp/sluice-test-" + stem + "-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
}

// Spawns argv with stdout and stderr to output_path; returns the pid.
pid_t spawn(const std::vector<std::string>& argv, std::vector<std::string> env, const std::string& output_path) {
    for (char** e = environ; *e != nullptr; ++e) {
        env.emplace_back(*e);
    }
    std::vector<char*> args;
    for (const auto& a : argv) {
        args.push_back(const_cast<char*>(a.c_str()));
    }
    args.push_back(nullptr);
    std::vector<char*> envp;
    for (const auto& e : env) {
        envp.push_back(const_cast<char*>(e.c_str()));
    }
    envp.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, output_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    pid_t pid = -1;
    const int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
        throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));
    }
    return pid;
}

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

int decode_status(int status) {
    if (WIFEXITED(status)) {
        return WEXITSTATUS(status);
    }
    if (WIFSIGNALED(status)) {
        return 128 + WTERMSIG(status);
    }
    return -1;
}

}  // namespace

std::string sluice_binary() { return std::string(SLUICE_BINARY_DIR) + "/server/app/sluice"; }

CommandResult run_command(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env) {
    const auto output_path = unique_path("out");
    const pid_t pid = spawn(argv, extra_env, output_path);
    int status = 0;
    waitpid(pid, &status, 0);
    CommandResult result{decode_status(status), slurp(output_path)};
    unlink(output_path.c_str());
    return result;
}

ServiceProcess::ServiceProcess(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env)
    : m_notify_path(unique_path("notify")), m_output_path(unique_path("out")) {
    m_notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, m_notify_path.c_str(), sizeof(address.sun_path) - 1);
    if (bind(m_notify_fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
        throw std::runtime_error("cannot bind " + m_notify_path);
    }
    auto env = extra_env;
    env.push_back("NOTIFY_SOCKET=" + m_notify_path);
    m_pid = spawn(argv, env, m_output_path);
}

ServiceProcess::~ServiceProcess() {
    if (m_pid > 0) {
        kill(m_pid, SIGKILL);
        waitpid(m_pid, nullptr, 0);
    }
    close(m_notify_fd);
    unlink(m_notify_path.c_str());
    unlink(m_output_path.c_str());
}

bool ServiceProcess::wait_for_notification(const std::string& state, int timeout_seconds) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
    while (std::chrono::steady_clock::now() < deadline) {
        pollfd p{m_notify_fd, POLLIN, 0};
        // Wake every 100 ms to notice a child that exited without notifying.
        if (poll(&p, 1, 100) > 0) {
            char buffer[4096];
            const auto n = recv(m_notify_fd, buffer, sizeof buffer, 0);
            if (n > 0 && std::string(buffer, static_cast<std::size_t>(n)).find(state) != std::string::npos) {
                return true;
            }
            continue;
        }
        int status = 0;
        if (waitpid(m_pid, &status, WNOHANG) == m_pid) {
            m_pid = -1;
            return false;
        }
    }
    return false;
}

void ServiceProcess::send_signal(int signal) {
    if (m_pid > 0) {
        kill(m_pid, signal);
    }
}

int ServiceProcess::wait_exit() {
    if (m_pid <= 0) {
        return -1;
    }
    int status = 0;
    waitpid(m_pid, &status, 0);
    m_pid = -1;
    return decode_status(status);
}

std::string ServiceProcess::output() { return slurp(m_output_path); }

std::uint16_t free_port() {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
        throw std::runtime_error("free_port: cannot bind a loopback socket");
    }
    close(fd);
    return ntohs(address.sin_port);
}

bool eventually(const std::function<bool()>& condition, int seconds) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (std::chrono::steady_clock::now() < deadline) {
        if (condition()) {
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return condition();
}

}  // namespace sluice::test
