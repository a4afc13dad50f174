// An in-memory bucket storage for pure session tests: applies source rows through the compiled
// rules the way the router and writer do (PUT into each bucket, REMOVE from buckets a row leaves,
// lookup entries per parameter row), with op_ids and checksums as storage would have them.
#pragma once

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "config/rules/json.h"
#include "config/rules/rule_set.h"
#include "protocol/wire/checksum.h"
#include "server/sync/sync_storage.h"

namespace sluice::test {

class MemoryStorage final : public sync::SyncStorage {
public:
    explicit MemoryStorage(std::shared_ptr<const config::rules::RuleSet> rules) : m_rules(std::move(rules)) {}

    // Inserts or updates a row of `table` (a JSON object with an "id"). Returns the new last op_id.
    std::int64_t put(const std::string& table, const std::string& row_json) {
        std::string error;
        auto row = config::rules::json_object_to_row(row_json, &error);
        if (!row) {
            throw std::runtime_error(error);
        }
        const std::string id = row->find("id")->to_text().value();
        config::rules::TableName name{"public", table};
        config::rules::RowEvaluation evaluation;
        m_rules->evaluate_row(name, *row, evaluation);
        const auto before = m_last;
        std::set<std::string> now;
        for (const auto& r : evaluation.rows) {
            add_op(r.bucket, 1, r.table, r.id, table + "/" + id, r.data);
            now.insert(r.bucket);
        }
        remove_from_others(table, id, now);
        config::rules::ParameterEvaluation params;
        m_rules->evaluate_parameter_row(name, *row, params);
        m_lookups[table + "/" + id] = params.entries;
        if (m_last == before) {
            ++m_last;  // a checkpoint without ops (e.g. only the lookup index changed) has its own op_id
        }
        return m_last;
    }

    std::int64_t remove(const std::string& table, const std::string& id) {
        const auto before = m_last;
        remove_from_others(table, id, {});
        m_lookups.erase(table + "/" + id);
        if (m_last == before) {
            ++m_last;
        }
        return m_last;
    }

    [[nodiscard]] std::int64_t last_op_id() const { return m_last; }

    // A write checkpoint of (user, client) that replication has passed: delivered with a new
    // checkpoint of its own (as BucketWriter does when the batch wrote no op). Returns that op_id.
    std::int64_t pass_write_checkpoint(const std::string& user, const std::string& client, std::int64_t number) {
        m_write_checkpoints.push_back({user, client, number, ++m_last});
        return m_last;
    }
    protocol::Result<std::int64_t> write_checkpoints_delivered(std::int64_t checkpoint) override {
        std::int64_t delivered = 0;
        for (const auto& w : m_write_checkpoints) {
            if (w.op_id <= checkpoint) {
                delivered = std::max(delivered, w.op_id);
            }
        }
        return delivered;
    }
    protocol::Result<std::optional<std::int64_t>> write_checkpoint(const std::string& user_id,
                                                                  const std::string& client_id,
                                                                  std::int64_t checkpoint) override {
        ++write_checkpoint_reads;
        std::optional<std::int64_t> best;
        for (const auto& w : m_write_checkpoints) {
            if (w.user == user_id && w.client == client_id && w.op_id <= checkpoint) {
                best = std::max(best.value_or(w.number), w.number);
            }
        }
        return best;
    }
    int reads = 0;                   // read_ops calls
    int write_checkpoint_reads = 0;  // write_checkpoint calls

    protocol::Result<std::map<std::string, storage::BucketChecksum>> checksums(std::span<const std::string> buckets,
                                                                             std::int64_t checkpoint) override {
        std::map<std::string, storage::BucketChecksum> out;
        for (const auto& b : buckets) {
            auto it = m_ops.find(b);
            if (it == m_ops.end()) {
                continue;
            }
            storage::BucketChecksum c;
            for (const auto& op : it->second) {
                if (op.op_id <= checkpoint) {
                    c.checksum = protocol::wire::add_checksum(c.checksum, op.checksum);
                    ++c.count;
                }
            }
            if (c.count > 0) {
                out.emplace(b, c);
            }
        }
        return out;
    }
    protocol::Result<std::vector<storage::StoredOp>> read_ops(const std::string& bucket, std::int64_t after,
                                                             std::int64_t up_to, std::size_t limit) override {
        ++reads;
        std::vector<storage::StoredOp> out;
        if (auto it = m_ops.find(bucket); it != m_ops.end()) {
            for (const auto& op : it->second) {
                if (op.op_id > after && op.op_id <= up_to && out.size() < limit) {
                    out.push_back(op);
                }
            }
        }
        return out;
    }
    // The index as it stands now (these tests do not resolve at an older checkpoint).
    protocol::Result<std::vector<std::vector<std::string>>> lookup(std::span<const std::string> keys,
                                                                  std::int64_t /*rules_version*/,
                                                                  std::int64_t /*checkpoint_op_id*/) override {
        std::vector<std::vector<std::string>> out(keys.size());
        for (std::size_t i = 0; i < keys.size(); ++i) {
            for (const auto& [row, entries] : m_lookups) {
                for (const auto& e : entries) {
                    if (e.key == keys[i]) {
                        out[i].push_back(e.values);
                    }
                }
            }
        }
        return out;
    }

private:
    void add_op(const std::string& bucket, int op, const std::string& type, const std::string& id,
                const std::string& subkey, const std::optional<std::string>& data) {
        storage::StoredOp s;
        s.op_id = ++m_last;
        s.op = op;
        s.object_type = type;
        s.object_id = id;
        s.subkey = subkey;
        s.data = data;
        s.checksum = op == 1 ? protocol::wire::put_checksum(type, id, *data) : protocol::wire::remove_checksum(subkey);
        m_ops[bucket].push_back(s);
        if (op == 1) {
            m_placed[subkey].insert(bucket);
        }
    }
    void remove_from_others(const std::string& table, const std::string& id, const std::set<std::string>& keep) {
        const auto subkey = table + "/" + id;
        auto& placed = m_placed[subkey];
        for (auto it = placed.begin(); it != placed.end();) {
            if (!keep.contains(*it)) {
                add_op(*it, 2, table, id, subkey, std::nullopt);
                it = placed.erase(it);
            } else {
                ++it;
            }
        }
    }

    std::shared_ptr<const config::rules::RuleSet> m_rules;
    std::int64_t m_last = 0;
    std::map<std::string, std::vector<storage::StoredOp>> m_ops;
    std::map<std::string, std::set<std::string>> m_placed;  // subkey -> buckets holding it
    std::map<std::string, std::vector<config::rules::LookupEntry>> m_lookups;
    struct WriteCheckpoint {
        std::string user;
        std::string client;
        std::int64_t number;
        std::int64_t op_id;
    };
    std::vector<WriteCheckpoint> m_write_checkpoints;
};

}  // namespace sluice::test
