// The node child behind NodeSdkClient (see node_client.h): spawned with pipes for stdin and stdout,
// stderr to a log file that failure messages include.
#include "tests/sdk/node_client.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

#include <simdjson.h>

#include "tests/support/process.h"

extern char** environ;

namespace sluice::test {

NodeSdkClient::NodeSdkClient(std::string name, const std::string& database_path)
    : m_name(std::move(name)), m_log_path(database_path + ".log") {
    // A child that died must fail the test with its log, not kill the test with SIGPIPE on the next write.
    signal(SIGPIPE, SIG_IGN);
    int in_pipe[2];
    int out_pipe[2];
    if (pipe2(in_pipe, O_CLOEXEC) != 0 || pipe2(out_pipe, O_CLOEXEC) != 0) {
        throw std::runtime_error("pipe: " + std::string(std::strerror(errno)));
    }
    const std::string dir = SLUICE_SDK_NODE_DIR;
    const std::string script = dir + "/client.mjs";
    std::vector<std::string> argv = {SLUICE_NODE_EXECUTABLE, script, database_path};
    std::vector<char*> args;
    for (auto& a : argv) {
        args.push_back(a.data());
    }
    args.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in_pipe[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
    posix_spawn_file_actions_addopen(&actions, 2, m_log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addchdir_np(&actions, dir.c_str());
    const int rc = posix_spawn(&m_pid, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(in_pipe[0]);
    ::close(out_pipe[1]);
    m_stdin = in_pipe[1];
    m_stdout = out_pipe[0];
    if (rc != 0) {
        throw std::runtime_error("cannot start node (" + argv[0] + "): " + std::strerror(rc));
    }
}

NodeSdkClient::~NodeSdkClient() {
    if (m_pid > 0) {
        kill(m_pid, SIGKILL);
        waitpid(m_pid, nullptr, 0);
    }
    if (m_stdin >= 0) {
        ::close(m_stdin);
    }
    if (m_stdout >= 0) {
        ::close(m_stdout);
    }
    unlink(m_log_path.c_str());
}

std::string NodeSdkClient::read_line(std::chrono::steady_clock::time_point deadline) {
    for (;;) {
        if (const auto nl = m_buffer.find('\n'); nl != std::string::npos) {
            std::string line = m_buffer.substr(0, nl);
            m_buffer.erase(0, nl + 1);
            return line;
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            throw std::runtime_error(m_name + ": no reply in time; its log:\n" + log());
        }
        pollfd p{m_stdout, POLLIN, 0};
        if (poll(&p, 1, static_cast<int>(left.count())) <= 0) {
            continue;
        }
        char chunk[65536];
        const auto n = ::read(m_stdout, chunk, sizeof chunk);
        if (n <= 0) {
            throw std::runtime_error(m_name + ": the node client exited; its log:\n" + log());
        }
        m_buffer.append(chunk, static_cast<std::size_t>(n));
    }
}

std::string NodeSdkClient::call(const std::string& command_json, std::chrono::seconds timeout) {
    std::string line = command_json;
    line.push_back('\n');
    std::size_t written = 0;
    while (written < line.size()) {
        const auto n = ::write(m_stdin, line.data() + written, line.size() - written);
        if (n <= 0) {
            throw std::runtime_error(m_name + ": cannot write to the node client; its log:\n" + log());
        }
        written += static_cast<std::size_t>(n);
    }
    auto reply = read_line(std::chrono::steady_clock::now() + timeout);
    if (!reply.starts_with("{\"ok\":true")) {
        throw std::runtime_error(m_name + ": " + command_json + " failed: " + reply + "\nits log:\n" + log());
    }
    return reply;
}

std::string NodeSdkClient::rows(const std::string& sql) {
    // Quoting for a JSON string: the test's SQL has no control characters.
    std::string quoted;
    for (const char c : sql) {
        if (c == '"' || c == '\\') {
            quoted.push_back('\\');
        }
        quoted.push_back(c);
    }
    const auto reply = call(R"({"cmd":"rows","sql":")" + quoted + "\"}");
    simdjson::dom::parser parser;
    std::string_view text;
    if (parser.parse(reply)["text"].get(text) != simdjson::SUCCESS) {
        throw std::runtime_error(m_name + ": unexpected reply " + reply);
    }
    return std::string(text);
}

bool NodeSdkClient::wait_for_rows(const std::string& sql, const std::function<std::string()>& expected,
                                  std::string& last, int seconds) {
    return eventually(
        [&] {
            last = rows(sql);
            return last == expected();
        },
        seconds);
}

std::string NodeSdkClient::log() const {
    std::ifstream in(m_log_path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

void NodeSdkClient::close() {
    if (m_pid <= 0) {
        return;
    }
    call(R"({"cmd":"close"})");
    int status = 0;
    waitpid(m_pid, &status, 0);
    m_pid = -1;
}

}  // namespace sluice::test
