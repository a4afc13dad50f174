// ScratchCluster: drives deploy/dev-postgres.sh for a throwaway cluster (see cluster.h).
#include "tests/support/cluster.h"

#include <cstdio>
#include <stdexcept>

#include <fmt/format.h>

namespace sluice::test {

ScratchCluster::ScratchCluster(ClusterSettings settings) : m_settings(std::move(settings)) {
    std::system(script("wipe").c_str());  // leftovers of an earlier crashed run
    const std::string command = script("start");
    FILE* out = popen(command.c_str(), "r");
    if (out == nullptr) {
        throw std::runtime_error("cannot run " + command);
    }
    char buffer[512];
    while (std::fgets(buffer, sizeof buffer, out) != nullptr) {
        m_uri += buffer;
    }
    const int status = pclose(out);
    while (!m_uri.empty() && m_uri.back() == '\n') {
        m_uri.pop_back();
    }
    if (status != 0 || m_uri.empty()) {
        throw std::runtime_error("scratch cluster failed to start: " + command);
    }
}

void ScratchCluster::restart() const {
    if (std::system((script("stop") + " && " + script("start") + " >/dev/null").c_str()) != 0) {
        throw std::runtime_error("scratch cluster failed to restart");
    }
}

ScratchCluster::~ScratchCluster() { std::system(script("wipe").c_str()); }

std::string ScratchCluster::script(const std::string& command) const {
    return fmt::format(
        "SLUICE_PG_PORT={0} SLUICE_PG_DIR=/tmp/sluice-scratch-pg-{0} SLUICE_PG_WAL_LEVEL={1} SLUICE_PG_SLOTS={2} "
        "SLUICE_PG_EXTRA_CONF='{5}' {3}/deploy/dev-postgres.sh {4}",
        m_settings.port, m_settings.wal_level, m_settings.slots, SLUICE_SOURCE_DIR, command, m_settings.extra_conf);
}

}  // namespace sluice::test
