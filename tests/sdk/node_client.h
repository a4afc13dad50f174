// Drives tests/sdk/client.mjs (the official PowerSync Node SDK) from a C++ test: a node child process
// with one JSON command per stdin line and one JSON reply per stdout line (see client.mjs).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>

namespace sluice::test {

class NodeSdkClient {
public:
    // Starts `node client.mjs <database_path>` from the test's npm folder (SLUICE_SDK_NODE_DIR).
    // `name` labels its log file and failure messages.
    NodeSdkClient(std::string name, const std::string& database_path);
    ~NodeSdkClient();
    NodeSdkClient(const NodeSdkClient&) = delete;
    NodeSdkClient& operator=(const NodeSdkClient&) = delete;

    // Sends one command (a JSON object) and returns the reply line. Throws when the reply is not
    // {"ok":true,...}, when the child exits, or after `timeout` (a guard against a hung child).
    std::string call(const std::string& command_json, std::chrono::seconds timeout = std::chrono::seconds(120));

    // The local rows of `sql`, each row's values joined by '|' (NULL as "NULL"), rows joined by '\n'.
    std::string rows(const std::string& sql);

    // Polls rows(sql) until it equals expected() (evaluated again each time) or `seconds` pass; returns
    // whether it did. `last` receives the last client view seen.
    bool wait_for_rows(const std::string& sql, const std::function<std::string()>& expected, std::string& last,
                       int seconds = 120);

    // Everything the child wrote to stderr so far (SDK logs and errors).
    [[nodiscard]] std::string log() const;

    void close();  // asks the client to disconnect and exit, waits for it

private:
    std::string read_line(std::chrono::steady_clock::time_point deadline);

    std::string m_name;
    std::string m_log_path;
    pid_t m_pid = -1;
    int m_stdin = -1;
    int m_stdout = -1;
    std::string m_buffer;
};

}  // namespace sluice::test
