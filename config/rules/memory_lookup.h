// An in-memory parameter lookup index: LookupEntry values by key. Used offline by `sluice explain`,
// by tests and by the benchmark; the server's live index lives in storage. set_row() keeps entries
// per source row as storage does (a changed row replaces its entries, a deleted one drops them).
#pragma once

#include <algorithm>
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
    // The entries of one source row (e.g. "public.members/m1"), replacing what that row had; none
    // removes it.
    void set_row(const std::string& row_key, std::span<const LookupEntry> entries) {
        if (auto it = m_rows.find(row_key); it != m_rows.end()) {
            for (const auto& e : it->second) {
                auto& values = m_entries[e.key];
                if (auto v = std::find(values.begin(), values.end(), e.values); v != values.end()) {
                    values.erase(v);
                }
                if (values.empty()) {
                    m_entries.erase(e.key);
                }
            }
            m_rows.erase(it);
        }
        if (!entries.empty()) {
            add(entries);
            m_rows[row_key].assign(entries.begin(), entries.end());
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
    std::map<std::string, std::vector<LookupEntry>, std::less<>> m_rows;
};

}  // namespace sluice::config::rules
