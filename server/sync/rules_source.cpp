// RulesSource (see rules_source.h).
#include "server/sync/rules_source.h"

#include <algorithm>

namespace sluice::sync {

RulesSource::RulesSource(std::shared_ptr<const config::rules::RuleSet> rules) {
    m_versions.push_back(std::make_shared<const RulesVersion>(RulesVersion{1, 0, std::move(rules)}));
}

void RulesSource::activate(RulesVersion version) {
    auto entry = std::make_shared<const RulesVersion>(std::move(version));
    std::lock_guard lock(m_mutex);
    std::erase_if(m_versions, [&](const auto& v) { return v->id == entry->id || v->from_op_id >= entry->from_op_id; });
    m_versions.push_back(std::move(entry));
    if (m_versions.size() > 2) {
        m_versions.erase(m_versions.begin(), m_versions.end() - 2);
    }
}

std::shared_ptr<const RulesVersion> RulesSource::for_checkpoint(std::int64_t op_id) const {
    std::lock_guard lock(m_mutex);
    if (m_versions.empty()) {
        return nullptr;
    }
    for (auto it = m_versions.rbegin(); it != m_versions.rend(); ++it) {
        if ((*it)->from_op_id <= op_id) {
            return *it;
        }
    }
    return m_versions.front();
}

bool RulesSource::empty() const {
    std::lock_guard lock(m_mutex);
    return m_versions.empty();
}

}  // namespace sluice::sync
