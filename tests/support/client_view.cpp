// The reduced client state of a user from bucket storage (see client_view.h).
#include "tests/support/client_view.h"

#include <stdexcept>

namespace sluice::test {
namespace {

class StorageLookups : public config::rules::LookupSource {
public:
    StorageLookups(storage::BucketReader& reader, std::int64_t rules_version)
        : m_reader(reader), m_rules_version(rules_version) {}
    std::vector<std::vector<std::string>> lookup(std::span<const std::string> keys) override {
        auto r = m_reader.lookup(keys, m_rules_version);
        if (!r) {
            throw std::runtime_error(r.status().to_string());
        }
        return r.value();
    }

private:
    storage::BucketReader& m_reader;
    std::int64_t m_rules_version;
};

}  // namespace

ClientRows client_view(const config::rules::RuleSet& rules, storage::BucketReader& reader, const std::string& user_id) {
    auto checkpoint = reader.latest_checkpoint();
    if (!checkpoint || !checkpoint.value()) {
        throw std::runtime_error("no checkpoint in storage");
    }
    const auto up_to = checkpoint.value()->op_id;
    auto request = config::rules::Request::from_json(R"({"sub":")" + user_id + R"("})", "");
    StorageLookups lookups(reader, checkpoint.value()->rules_version);
    auto resolution = rules.resolve_buckets(request.value(), lookups);
    if (!resolution) {
        throw std::runtime_error(resolution.status().to_string());
    }
    ClientRows rows;
    for (const auto& bucket : resolution->buckets) {
        // Reduce the bucket: the last op of each (type, id, subkey) decides.
        std::map<std::tuple<std::string, std::string, std::string>, std::optional<std::string>> state;
        std::int64_t after = 0;
        for (;;) {
            auto ops = reader.read_ops(bucket.id, after, up_to, 5000);
            if (!ops) {
                throw std::runtime_error(ops.status().to_string());
            }
            for (auto& op : ops.value()) {
                if (op.op == 4) {  // CLEAR: everything before it is gone
                    state.clear();
                    continue;
                }
                state[{op.object_type, op.object_id, op.subkey}] = op.op == 1 ? op.data : std::nullopt;
                after = op.op_id;
            }
            if (ops.value().size() < 5000) {
                break;
            }
        }
        for (auto& [key, data] : state) {
            if (!data) {
                continue;
            }
            auto [it, inserted] = rows.emplace(std::pair(std::get<0>(key), std::get<1>(key)), *data);
            if (!inserted && it->second != *data) {
                throw std::runtime_error("buckets disagree on " + std::get<0>(key) + "/" + std::get<1>(key) + ": " +
                                         it->second + " vs " + *data);
            }
        }
    }
    return rows;
}

}  // namespace sluice::test
