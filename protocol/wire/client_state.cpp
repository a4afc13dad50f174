// ClientState: applying server lines as a PowerSync client does (see client_state.h).
#include "protocol/wire/client_state.h"

#include <algorithm>

#include <fmt/format.h>

#include "protocol/wire/checksum.h"
#include "protocol/wire/line_decoder.h"

namespace sluice::protocol::wire {
namespace {

Status unexpected(std::string message) { return {ErrorCode::kSyncLineUnexpected, std::move(message)}; }

}  // namespace

Status ClientState::apply_line(std::string_view text) {
    auto line = decode_line(text);
    if (!line) {
        return line.status();
    }
    return apply(line.value());
}

Status ClientState::apply(const ServerLine& line) {
    if (const auto* c = std::get_if<Checkpoint>(&line)) {
        return on_checkpoint(*c);
    }
    if (const auto* d = std::get_if<CheckpointDiff>(&line)) {
        return on_diff(*d);
    }
    if (const auto* d = std::get_if<DataLine>(&line)) {
        return on_data(*d);
    }
    if (const auto* c = std::get_if<CheckpointComplete>(&line)) {
        return on_complete(c->last_op_id, std::nullopt);
    }
    if (const auto* c = std::get_if<PartialCheckpointComplete>(&line)) {
        return on_complete(c->last_op_id, c->priority);
    }
    if (const auto* t = std::get_if<TokenExpiresIn>(&line)) {
        m_token_expires_in = t->seconds;
    } else if (const auto* e = std::get_if<ErrorLine>(&line)) {
        m_error = *e;
    }
    return {};  // unknown lines are ignored
}

void ClientState::set_target_buckets(const std::vector<BucketChecksum>& buckets) {
    for (const auto& b : buckets) {
        m_target->buckets[b.bucket] = b;
        if (auto it = m_buckets.find(b.bucket); it != m_buckets.end()) {
            it->second.priority = b.priority.value_or(3);
        }
    }
}

Status ClientState::on_checkpoint(const Checkpoint& c) {
    // A full checkpoint resets the client's view: buckets it does not list are gone.
    std::vector<std::string> gone;
    for (const auto& [name, state] : m_buckets) {
        const bool listed = std::any_of(c.buckets.begin(), c.buckets.end(),
                                        [&name = name](const BucketChecksum& b) { return b.bucket == name; });
        if (!listed) {
            gone.push_back(name);
        }
    }
    for (const auto& name : gone) {
        drop_bucket(name);
    }
    m_target = Target{};  // (clang rejects emplace() for a nested type with member initializers)
    m_target->last_op_id = c.last_op_id;
    m_target->write_checkpoint = c.write_checkpoint;
    m_target_complete = false;
    set_target_buckets(c.buckets);
    return {};
}

Status ClientState::on_diff(const CheckpointDiff& d) {
    if (!m_target) {
        return unexpected("checkpoint_diff before any checkpoint");
    }
    m_target->last_op_id = d.last_op_id;
    m_target->write_checkpoint = d.write_checkpoint;
    m_target_complete = false;
    for (const auto& name : d.removed_buckets) {
        m_target->buckets.erase(name);
        drop_bucket(name);
    }
    set_target_buckets(d.updated_buckets);
    return {};
}

Status ClientState::on_data(const DataLine& d) {
    if (!m_target) {
        return unexpected(fmt::format("data for bucket '{}' before any checkpoint", d.bucket));
    }
    const auto target = m_target->buckets.find(d.bucket);
    if (target == m_target->buckets.end()) {
        return unexpected(fmt::format("data for bucket '{}', which the checkpoint does not list", d.bucket));
    }
    for (const auto& op : d.data) {
        const bool needs_row = op.op == OpType::kPut || op.op == OpType::kRemove;
        if (needs_row && (!op.object_type || !op.object_id)) {
            return {ErrorCode::kSyncLineMalformed,
                    fmt::format("op {} in bucket '{}' has no object_type or object_id", op.op_id, d.bucket)};
        }
        if (op.op == OpType::kPut && !op.data) {
            return {ErrorCode::kSyncLineMalformed,
                    fmt::format("PUT op {} in bucket '{}' has no data", op.op_id, d.bucket)};
        }
    }
    auto [it, inserted] = m_buckets.try_emplace(d.bucket);
    BucketState& b = it->second;
    if (inserted) {
        b.priority = target->second.priority.value_or(3);
    }
    for (const auto& op : d.data) {
        b.checksum = add_checksum(b.checksum, op.checksum);
        ++b.op_count;
        b.last_op_id = std::max(b.last_op_id, op.op_id);
        switch (op.op) {
            case OpType::kPut: {
                RowId id{*op.object_type, *op.object_id};
                b.rows[id][op.subkey.value_or("")] = BucketRow{op.op_id, *op.data};
                b.dirty.insert(std::move(id));
                break;
            }
            case OpType::kRemove: {
                RowId id{*op.object_type, *op.object_id};
                if (auto row = b.rows.find(id); row != b.rows.end()) {
                    row->second.erase(op.subkey.value_or(""));
                    if (row->second.empty()) {
                        b.rows.erase(row);
                    }
                }
                b.dirty.insert(std::move(id));
                break;
            }
            case OpType::kMove:
                break;  // a superseded op: only its checksum counts
            case OpType::kClear:
                // Everything before it is dropped; its checksum stands for what it replaced.
                for (const auto& [id, subkeys] : b.rows) {
                    b.dirty.insert(id);
                }
                b.rows.clear();
                b.checksum = op.checksum;
                b.op_count = 1;
                break;
        }
    }
    if (d.next_after) {
        b.last_op_id = std::max(b.last_op_id, *d.next_after);
    }
    return {};
}

Status ClientState::on_complete(std::uint64_t last_op_id, std::optional<std::int32_t> priority) {
    if (!m_target) {
        return unexpected("checkpoint completion before any checkpoint");
    }
    if (last_op_id != m_target->last_op_id) {
        return unexpected(fmt::format("completion of checkpoint {}, but the current checkpoint is {}", last_op_id,
                                      m_target->last_op_id));
    }
    const auto in_scope = [&](const BucketChecksum& b) { return !priority || b.priority.value_or(3) <= *priority; };
    m_failed_buckets.clear();
    for (const auto& [name, expected] : m_target->buckets) {
        if (!in_scope(expected)) {
            continue;
        }
        const auto held = m_buckets.find(name);
        const std::uint32_t actual = held == m_buckets.end() ? 0 : held->second.checksum;
        if (actual != expected.checksum) {
            m_failed_buckets.push_back(name);
        }
    }
    if (!m_failed_buckets.empty()) {
        for (const auto& name : m_failed_buckets) {
            drop_bucket(name);
        }
        ++m_checksum_failures;
        m_last_outcome = Outcome::kChecksumMismatch;
        return {};
    }
    std::set<RowId> rows;
    for (auto& [name, state] : m_buckets) {
        if (!priority || state.priority <= *priority) {
            rows.merge(state.dirty);
            state.dirty.clear();
        }
    }
    if (!priority) {
        rows.merge(m_orphan_dirty);
        m_orphan_dirty.clear();
        m_applied_checkpoint = m_target->last_op_id;
        m_write_checkpoint = m_target->write_checkpoint;
        m_target_complete = true;
    }
    apply_rows(rows);
    m_last_outcome = Outcome::kApplied;
    return {};
}

void ClientState::drop_bucket(const std::string& name) {
    const auto it = m_buckets.find(name);
    if (it == m_buckets.end()) {
        return;
    }
    for (const auto& [id, subkeys] : it->second.rows) {
        m_orphan_dirty.insert(id);
    }
    m_orphan_dirty.merge(it->second.dirty);
    m_buckets.erase(it);
}

void ClientState::apply_rows(const std::set<RowId>& rows) {
    for (const auto& id : rows) {
        // The row's value is the newest PUT (highest op_id) in any bucket that holds it.
        const BucketRow* best = nullptr;
        for (const auto& [name, state] : m_buckets) {
            const auto row = state.rows.find(id);
            if (row == state.rows.end()) {
                continue;
            }
            for (const auto& [subkey, r] : row->second) {
                if (best == nullptr || r.op_id > best->op_id) {
                    best = &r;
                }
            }
        }
        if (best != nullptr) {
            m_tables[id.first][id.second] = best->data;
        } else if (auto table = m_tables.find(id.first); table != m_tables.end()) {
            table->second.erase(id.second);
            if (table->second.empty()) {
                m_tables.erase(table);
            }
        }
    }
}

void ClientState::restore_bucket(const std::string& name, std::uint64_t last_op_id, std::uint32_t checksum,
                                 std::int64_t op_count) {
    BucketState& b = m_buckets[name];
    b.last_op_id = last_op_id;
    b.checksum = checksum;
    b.op_count = op_count;
}

std::vector<BucketRequest> ClientState::bucket_requests() const {
    std::vector<BucketRequest> out;
    out.reserve(m_buckets.size());
    for (const auto& [name, state] : m_buckets) {
        out.push_back(BucketRequest{name, state.last_op_id});
    }
    return out;
}

std::optional<std::string> ClientState::row(std::string_view object_type, std::string_view object_id) const {
    const auto table = m_tables.find(std::string(object_type));
    if (table == m_tables.end()) {
        return std::nullopt;
    }
    const auto it = table->second.find(std::string(object_id));
    if (it == table->second.end()) {
        return std::nullopt;
    }
    return it->second;
}

std::size_t ClientState::row_count() const {
    std::size_t n = 0;
    for (const auto& [type, table] : m_tables) {
        n += table.size();
    }
    return n;
}

}  // namespace sluice::protocol::wire
