// An in-memory parameter lookup index: LookupEntry values by key. Used offline by `sluice explain`,
// by tests and by the benchmark; the server's live index lives in storage.
#pragma once

#include <map>
#include <span>
#include <string>
#include <vector>

#include "config/rules/rule_set.h"

namespace sluice::config::rules {

class MemoryLookup final : public LookupSource {
public:
    void add(const LookupEntry& entry) { m_entries[entry.key].push_back(entry.values); }
    void add(std::span<const LookupEntry> entries) {
        for (const auto& e : entries) {
            add(e);
        }
    }
    [[nodiscard]] std::vector<std::vector<std::string>> lookup(std::span<const std::string> keys) override {
        std::vector<std::vector<std::string>> out;
        out.reserve(keys.size());
        for (const auto& k : keys) {
            auto it = m_entries.find(k);
            out.push_back(it == m_entries.end() ? std::vector<std::string>{} : it->second);
        }
        return out;
    }
    [[nodiscard]] std::size_t size() const { return m_entries.size(); }

private:
    std::map<std::string, std::vector<std::string>, std::less<>> m_entries;
};

}  // namespace sluice::config::rules
