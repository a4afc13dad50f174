// RulesSource: which compiled sync rules a session resolves its buckets with, at a given checkpoint.
// The serving side's half of a rules-version switch (server/app/rules_versions.h builds and switches
// versions): when a new version becomes active at checkpoint S, its rules are added here (by the
// checkpoint listener, before S is published to the hub); a session starting a checkpoint >= S then
// resolves with the new rules, so its next checkpoint_diff removes the old version's buckets and adds
// the new ones. Thread-safe: written by the listener thread, read by the session worker threads.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "config/rules/rule_set.h"

namespace sluice::sync {

struct RulesVersion {
    std::int64_t id = 1;          // the version; its buckets and lookup entries are stored under it
    std::int64_t from_op_id = 0;  // the checkpoint at which it became active
    std::shared_ptr<const config::rules::RuleSet> rules;
};

class RulesSource {
public:
    RulesSource() = default;
    // A single fixed version (1, from the start): tests and callers without version switches.
    explicit RulesSource(std::shared_ptr<const config::rules::RuleSet> rules);

    // Adds (or replaces) a version that is active from checkpoint `version.from_op_id`; versions
    // older than the one it replaces are forgotten (at most two are kept: the previous one serves
    // sessions still at older checkpoints).
    void activate(RulesVersion version);
    // The version for checkpoint `op_id`: the newest active at or before it (the oldest known when
    // none is); null before any version is known.
    [[nodiscard]] std::shared_ptr<const RulesVersion> for_checkpoint(std::int64_t op_id) const;
    [[nodiscard]] bool empty() const;

private:
    mutable std::mutex m_mutex;  // guards m_versions
    std::vector<std::shared_ptr<const RulesVersion>> m_versions;  // by from_op_id, at most two
};

}  // namespace sluice::sync
