// A second private Postgres cluster with its own settings, for tests that need a misconfigured
// server (wal_level=replica, few slots). Started with deploy/dev-postgres.sh; wiped when destroyed.
#pragma once

#include <string>

namespace sluice::test {

struct ClusterSettings {
    // Unique per test case (ctest runs cases in parallel) and below the kernel's ephemeral range
    // (ip_local_port_range starts at 32768), so no outgoing socket or free_port() can hold it.
    int port;
    std::string wal_level = "logical";
    int slots = 20;                    // max_replication_slots and max_wal_senders
    std::string extra_conf{};          // more postgresql.conf lines
};

class ScratchCluster {
public:
    explicit ScratchCluster(ClusterSettings settings);
    ~ScratchCluster();
    ScratchCluster(const ScratchCluster&) = delete;
    ScratchCluster& operator=(const ScratchCluster&) = delete;

    [[nodiscard]] const std::string& uri() const { return m_uri; }
    // Stops Postgres (fast shutdown: clients are disconnected) and starts it again on the same data.
    void restart() const;

private:
    std::string script(const std::string& command) const;
    ClusterSettings m_settings;
    std::string m_uri;
};

}  // namespace sluice::test
