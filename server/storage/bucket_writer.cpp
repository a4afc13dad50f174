// The op-log writer (see bucket_writer.h). Rows touched in the current flush window live in an
// overlay; flush() replaces the changed current_rows and lookup entries and adds the per-bucket
// checksum and count deltas inside the open storage transaction, on a thread of its own while the
// writer evaluates the next changes (the next use of the transaction waits for it). The window's ops
// go into sluice.op_chunks (op_chunks.h) at the same time, by COPY on a second connection: the op
// log is most of what a flush writes, and one storage backend doing all of it was the bottleneck of
// replication. That second transaction commits just before the main one; migrations/0006 says how
// ops whose main commit never happened are found and removed.
#include "server/storage/bucket_writer.h"

#include <chrono>
#include <deque>
#include <future>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include <pqxx/pqxx>

#include "protocol/wire/checksum.h"
#include "server/core/log.h"
#include "server/core/pg_errors.h"
#include "server/core/field_codec.h"
#include "server/storage/copy_rows.h"
#include "server/storage/op_chunks.h"
#include "server/storage/pg_array.h"
#include "server/storage/rules_versions.h"

namespace sluice::storage {
namespace {

using core::ChangeKind;
using core::RowKey;
using protocol::ErrorCode;
using protocol::Status;

const core::Logger kLog("storage", "writer");

// How long closed parameter lookup entries are kept (see drop_old_lookup_history).
constexpr std::chrono::seconds kLookupHistory{60};

enum class OpKind : std::int16_t { kPut = 1, kRemove = 2 };

// Where a row sits in one bucket: enough to write its REMOVE.
struct Slot {
    std::string bucket;
    std::string object_type;
    std::string object_id;
    friend bool operator==(const Slot&, const Slot&) = default;
};

struct RowState {
    bool exists = false;
    bool in_table = false;  // current_rows holds a row for this key (in the open transaction)
    bool dirty = false;     // differs from what current_rows holds
    std::string data;
    std::vector<Slot> slots;
    std::vector<core::LookupValue> lookups;
    std::vector<core::LookupValue> flushed_lookups;  // what parameter_lookups holds for this row
};

struct BucketDelta {
    std::uint32_t checksum = 0;  // wrapping sum
    std::int64_t count = 0;
    std::int64_t last_op_id = 0;
    OpChunkBuilder chunk;  // the bucket's ops since its last full chunk
};

std::string encode_slots(const std::vector<Slot>& slots) {
    std::string out;
    for (const auto& s : slots) {
        core::append_field(out, s.bucket);
        core::append_field(out, s.object_type);
        core::append_field(out, s.object_id);
    }
    return out;
}

std::string encode_lookups(const std::vector<core::LookupValue>& lookups) {
    std::string out;
    for (const auto& l : lookups) {
        core::append_field(out, l.key);
        core::append_field(out, l.values);
    }
    return out;
}

Status corrupt(const RowKey& row) {
    return {ErrorCode::kStorageQueryFailed,
            fmt::format("sluice.current_rows holds an undecodable row for {} {}", row.table, row.key)};
}

}  // namespace

struct BucketWriter::Impl {
    WriterOptions options;
    pqxx::connection connection;
    std::unique_ptr<pqxx::work> tx;  // open between the first write of a batch and commit()
    // sluice.op_chunks, written in parallel (see the top of this file): its transaction, and the buckets
    // and op_id range written in it since the last commit.
    pqxx::connection ops_connection;
    std::unique_ptr<pqxx::work> ops_tx;
    std::set<std::string> ops_buckets;
    std::int64_t ops_first = 0;
    std::int64_t ops_last = 0;
    std::int64_t next_op_id = 1;
    std::int64_t last_checkpoint_op_id = 0;
    protocol::Lsn durable_lsn;
    protocol::Lsn visible_from;
    std::unordered_map<RowKey, RowState, core::RowKeyHash> rows;  // overlay of the flush window
    CopyRows ops;  // the flush window's full chunks, in COPY form for sluice.op_chunks
    std::size_t ops_in_window = 0;
    std::unordered_map<std::string, BucketDelta> deltas;
    std::size_t ops_in_batch = 0;
    bool lookups_changed = false;  // the batch changed the lookup index (bucket sets may differ now)
    bool any_checkpoint = false;  // a checkpoint row exists (the first one is written even without ops)
    std::vector<WriteCheckpoint> write_checkpoints;  // issued in the batch's source transactions
    bool pending_write_checkpoints = false;          // sluice.write_checkpoints may hold undelivered ones
    // Checkpoints of about the last kLookupHistory, oldest first, and how far closed lookup entries
    // have been dropped (see drop_old_lookup_history).
    std::deque<std::pair<std::chrono::steady_clock::time_point, std::int64_t>> recent_checkpoints;
    std::int64_t lookups_dropped_to = 0;
    // The flush running in the background (see flush()), and its COPY of op chunks. Declared
    // last: destroyed (waited for) before the transactions and connections they use.
    std::future<void> pending;
    std::future<void> ops_pending;

    Impl(WriterOptions o, const std::string& conninfo)
        : options(std::move(o)), connection(conninfo), ops_connection(conninfo) {
        // Every join the writer runs matches a batch of keys (unnest of arrays) against a primary
        // key. Given thousands of keys, the planner prefers hashing the whole table (and with stale
        // statistics in an insert burst, it always does): a full scan of current_rows per batch,
        // which grows with storage. Index lookups per key cost the same at any storage size.
        pqxx::nontransaction(connection).exec0("SET enable_hashjoin = off; SET enable_mergejoin = off");
    }

    // The transaction open on `c` (begun if none is), once the work running on it in the background
    // (if any) is done; that work's failure is thrown here.
    static pqxx::work& ready(std::future<void>& background, std::unique_ptr<pqxx::work>& open, pqxx::connection& c) {
        if (background.valid()) {
            background.get();
        }
        if (!open) {
            open = std::make_unique<pqxx::work>(c);
        }
        return *open;
    }
    pqxx::work& work() { return ready(pending, tx, connection); }
    pqxx::work& ops_work() { return ready(ops_pending, ops_tx, ops_connection); }

    // Commits the ops written since the last commit, with a record of them that `w` (the main
    // transaction, committed next) deletes: a record that outlives a failed main commit names the
    // ops to remove (remove_ops_in_flight).
    void commit_ops(pqxx::work& w) {
        if (!ops_tx && !ops_pending.valid()) {
            return;
        }
        auto& o = ops_work();
        if (ops_first != 0) {
            o.exec_params0(
                "INSERT INTO sluice.ops_in_flight (rules_version, first_op_id, last_op_id, buckets) "
                "VALUES ($1, $2, $3, $4::text[])",
                options.rules_version, ops_first, ops_last,
                to_pg_array(std::vector<std::string>(ops_buckets.begin(), ops_buckets.end())));
        }
        o.commit();
        ops_tx.reset();
        if (ops_first != 0) {
            w.exec_params0("DELETE FROM sluice.ops_in_flight WHERE rules_version = $1 AND first_op_id = $2",
                           options.rules_version, ops_first);
        }
        forget_ops_in_flight();
    }

    void forget_ops_in_flight() {
        ops_buckets.clear();
        ops_first = 0;
        ops_last = 0;
    }

    void load_counters() {
        if (const auto removed = remove_ops_in_flight(connection, options.rules_version); removed > 0) {
            kLog.warn("removed {} op(s) of a storage write that did not commit (rules version {})", removed,
                      options.rules_version);
        }
        pqxx::nontransaction read(connection);
        auto row = read.exec_params1(
            "SELECT GREATEST((SELECT max(last_op_id) FROM sluice.op_chunks), (SELECT max(op_id) FROM sluice.checkpoints), 0), "
            "       COALESCE((SELECT max(op_id) FROM sluice.checkpoints WHERE rules_version = $2), 0), "
            "       COALESCE((SELECT durable_lsn::text FROM sluice.replication_state WHERE slot_name = $1), '0/0'), "
            "       COALESCE((SELECT visible_from::text FROM sluice.replication_state WHERE slot_name = $1), '0/0'), "
            "       EXISTS (SELECT FROM sluice.checkpoints WHERE rules_version = $2), "
            "       EXISTS (SELECT FROM sluice.write_checkpoints WHERE op_id IS NULL)",
            options.slot_name, options.rules_version);
        next_op_id = row[0].as<std::int64_t>() + 1;
        last_checkpoint_op_id = row[1].as<std::int64_t>();
        any_checkpoint = row[4].as<bool>();
        pending_write_checkpoints = row[5].as<bool>();
        durable_lsn = protocol::Lsn::parse(row[2].as<std::string>()).value_or(protocol::Lsn{});
        visible_from = protocol::Lsn::parse(row[3].as<std::string>()).value_or(protocol::Lsn{});
    }

    // Loads rows absent from the overlay; rows not stored become known-absent entries.
    Status load(std::span<const RowKey> keys) {
        std::vector<std::string> tables;
        std::vector<std::string> row_keys;
        for (const auto& k : keys) {
            if (!rows.contains(k)) {
                tables.push_back(k.table);
                row_keys.push_back(k.key);
                rows.emplace(k, RowState{});
            }
        }
        if (tables.empty()) {
            return Status::ok();
        }
        // One primary-key probe per key, whatever the table's statistics say: a plain join let the
        // planner, misled by a table filled in this very transaction (no statistics yet), rescan
        // every stored row once per key (3 s per 1,000 keys after 20,000 rows were written).
        auto result = work().exec_params(
            "SELECT c.source_table, c.row_key, c.data, c.placements, c.lookups "
            "FROM unnest($1::text[], $2::text[]) AS k(t, r) "
            "CROSS JOIN LATERAL (SELECT * FROM sluice.current_rows c "
            "                    WHERE c.rules_version = $3 AND c.source_table = k.t AND c.row_key = k.r "
            "                    OFFSET 0) AS c",  // (kept a subquery: not flattened into a join)
            to_pg_array(tables), to_pg_array(row_keys), options.rules_version);
        for (const auto& r : result) {
            RowKey key{r[0].as<std::string>(), r[1].as<std::string>()};
            auto& state = rows[key];
            state.exists = true;
            state.in_table = true;
            state.data = r[2].as<std::string>();
            auto slots = core::decode_fields(r[3].as<std::string>());
            auto lookups = core::decode_fields(r[4].as<std::string>());
            if (!slots || slots->size() % 3 != 0 || !lookups || lookups->size() % 2 != 0) {
                return corrupt(key);
            }
            for (std::size_t i = 0; i < slots->size(); i += 3) {
                state.slots.push_back({(*slots)[i], (*slots)[i + 1], (*slots)[i + 2]});
            }
            for (std::size_t i = 0; i < lookups->size(); i += 2) {
                state.lookups.push_back({(*lookups)[i], (*lookups)[i + 1]});
            }
            state.flushed_lookups = state.lookups;
        }
        return Status::ok();
    }

    void add_op(const std::string& bucket, OpKind op, const Slot& slot, const std::string& subkey,
                const std::optional<std::string>& data) {
        const std::uint32_t checksum = op == OpKind::kPut
                                           ? protocol::wire::put_checksum(slot.object_type, slot.object_id, *data)
                                           : protocol::wire::remove_checksum(subkey);
        const std::int64_t op_id = next_op_id++;
        if (ops_first == 0) {
            ops_first = op_id;
        }
        ops_last = op_id;
        auto& delta = deltas[bucket];
        delta.checksum += checksum;
        delta.count += 1;
        delta.last_op_id = op_id;
        delta.chunk.add(ops, bucket, op_id, static_cast<int>(op), slot.object_type, slot.object_id, subkey, data,
                        checksum);
        ++ops_in_window;
        ++ops_in_batch;
    }

    void apply_change(const core::EvaluatedChange& change, RowState& state) {
        const std::string subkey = subkey_of(change.row);
        std::vector<Slot> new_slots;
        if (change.kind == ChangeKind::kUpsert) {
            new_slots.reserve(change.placements.size());
            for (const auto& p : change.placements) {
                Slot slot{p.bucket, p.object_type, p.object_id};
                add_op(p.bucket, OpKind::kPut, slot, subkey, p.data);
                new_slots.push_back(std::move(slot));
            }
        }
        for (const auto& old : state.slots) {
            if (std::find(new_slots.begin(), new_slots.end(), old) == new_slots.end()) {
                add_op(old.bucket, OpKind::kRemove, old, subkey, std::nullopt);
            }
        }
        state.slots = std::move(new_slots);
        state.exists = change.kind == ChangeKind::kUpsert;
        state.data = state.exists ? change.stored : std::string();
        auto lookups = state.exists ? change.lookups : std::vector<core::LookupValue>{};
        lookups_changed = lookups_changed || lookups != state.lookups;
        state.lookups = std::move(lookups);
        state.dirty = true;
    }

    // Everything one flush writes, taken out of the overlay: it runs while the writer goes on.
    struct FlushJob {
        std::int64_t rules_version = 0;
        CopyRows ops;                                    // for sluice.op_chunks
        std::vector<std::string> stored_tables, stored_keys;  // stored rows that changed or went
        std::vector<std::string> closed_keys, closed_tables, closed_rows;  // their lookup entries
        std::int64_t changed_at = 0;
        std::int64_t last_checkpoint_op_id = 0;
        CopyRows rows;     // for sluice.current_rows
        CopyRows lookups;  // for sluice.parameter_lookups
        std::vector<std::string> buckets, checksums, counts, last_ids;  // bucket totals to add

        [[nodiscard]] bool empty() const {
            return ops.empty() && stored_tables.empty() && closed_keys.empty() && rows.empty() && buckets.empty();
        }

        // Everything but the ops (which the writer copies on its other connection).
        void run(pqxx::work& w) const {
            if (!stored_tables.empty()) {
                w.exec_params0(
                    "DELETE FROM sluice.current_rows c USING unnest($1::text[], $2::text[]) AS k(t, r) "
                    "WHERE c.rules_version = $3 AND c.source_table = k.t AND c.row_key = k.r",
                    to_pg_array(stored_tables), to_pg_array(stored_keys), rules_version);
            }
            // Lookup entries change as of the next checkpoint, whatever op_id it gets: no checkpoint
            // up to the last one sees the change, every later one does (migrations/0005). An entry
            // no checkpoint ever saw is deleted; one that some checkpoint saw is closed, for sessions
            // still resolving there.
            if (!closed_keys.empty()) {
                w.exec_params0(
                    "WITH k AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) AS k(l, t, r)), "
                    "unseen AS (DELETE FROM sluice.parameter_lookups p USING k "
                    "  WHERE p.rules_version = $4 AND p.lookup_key = k.l AND p.source_table = k.t "
                    "  AND p.row_key = k.r AND p.to_op IS NULL AND p.from_op > $6) "
                    "UPDATE sluice.parameter_lookups p SET to_op = $5 FROM k "
                    "WHERE p.rules_version = $4 AND p.lookup_key = k.l AND p.source_table = k.t AND p.row_key = k.r "
                    "AND p.to_op IS NULL AND p.from_op <= $6",
                    to_pg_array(closed_keys), to_pg_array(closed_tables), to_pg_array(closed_rows), rules_version,
                    changed_at, last_checkpoint_op_id);
            }
            copy_into(w, "sluice.current_rows", rows);
            if (lookups.rows() > 0) {
                copy_into(w, "sluice.parameter_lookups", lookups);
            }
            if (!buckets.empty()) {
                w.exec_params0(
                    "INSERT INTO sluice.buckets AS b (bucket, checksum, op_count, last_op_id) "
                    "SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[]) "
                    "ON CONFLICT (bucket) DO UPDATE SET "
                    "  checksum = (b.checksum + excluded.checksum) % 4294967296, "
                    "  op_count = b.op_count + excluded.op_count, "
                    "  last_op_id = GREATEST(b.last_op_id, excluded.last_op_id)",
                    to_pg_array(buckets), to_pg_array(checksums), to_pg_array(counts), to_pg_array(last_ids));
            }
        }
    };

    // Writes the flush window into the open transaction. The statements run on a thread of their
    // own while the writer evaluates the next changes; whatever uses the transaction next waits for
    // them in work(), which also rethrows their failure. Dirty rows leave the overlay now: a later
    // lookup of them reads what this flush wrote.
    void flush() {
        auto job = std::make_shared<FlushJob>(take_flush_job());
        if (job->empty()) {
            return;  // (a commit with nothing left to write)
        }
        auto& w = work();  // (after the previous flush)
        if (!job->ops.empty()) {
            auto& o = ops_work();  // (after the previous COPY)
            ops_pending = std::async(std::launch::async, [job, &o] { copy_into(o, "sluice.op_chunks", job->ops); });
        }
        pending = std::async(std::launch::async, [job, &w] { job->run(w); });
    }

    FlushJob take_flush_job() {
        FlushJob job;
        job.rules_version = options.rules_version;
        for (auto& [bucket, d] : deltas) {
            d.chunk.take(ops, bucket);  // chunks never span two storage writes
        }
        job.ops = std::move(ops);
        ops = CopyRows();
        ops_in_window = 0;
        job.changed_at = last_checkpoint_op_id + 1;
        job.last_checkpoint_op_id = last_checkpoint_op_id;
        for (const auto& [key, state] : rows) {
            if (!state.dirty) {
                continue;
            }
            if (state.in_table) {  // new rows (most of a snapshot or an insert burst) need no delete
                job.stored_tables.push_back(key.table);
                job.stored_keys.push_back(key.key);
            }
            for (const auto& old : state.flushed_lookups) {
                job.closed_keys.push_back(old.key);
                job.closed_tables.push_back(key.table);
                job.closed_rows.push_back(key.key);
            }
            if (!state.exists) {
                continue;
            }
            job.rows.text(key.table).text(key.key).text(state.data).text(encode_slots(state.slots));
            job.rows.text(encode_lookups(state.lookups)).integer(options.rules_version).end_row();
            std::unordered_set<std::string> seen;  // a row contributes each lookup key once
            for (const auto& l : state.lookups) {
                if (seen.insert(l.key + '\x1f' + l.values).second) {
                    job.lookups.text(l.key).text(key.table).text(key.key).text(l.values);
                    job.lookups.integer(options.rules_version).integer(job.changed_at).text_or_null(std::nullopt);
                    job.lookups.end_row();
                }
            }
        }
        // Written rows leave the overlay; loaded rows not yet changed stay (the replicator prefetches
        // a whole group of transactions, and a flush can come in the middle of applying it).
        std::erase_if(rows, [](const auto& entry) { return entry.second.dirty; });
        if (rows.size() > 4 * options.flush_ops) {
            rows.clear();  // bounded whatever the callers prefetch
        }
        for (const auto& [bucket, d] : deltas) {
            ops_buckets.insert(bucket);
            job.buckets.push_back(bucket);
            job.checksums.push_back(std::to_string(d.checksum));
            job.counts.push_back(std::to_string(d.count));
            job.last_ids.push_back(std::to_string(d.last_op_id));
        }
        deltas.clear();
        return job;
    }

    // Records the write checkpoints of the batch's source transactions (add_write_checkpoint), as
    // delivered at checkpoint `op_id`; or pending (op_id NULL, delivered later by the UPDATE in
    // deliver_pending_write_checkpoints) when the batch is not visible or this writer's rules version
    // is not the active one (a version being built counts its own op ids, which sessions do not
    // follow; the first version delivers while it builds). The active version's writer delivers
    // what another version's writer left pending, so a checkpoint that the active writer has not
    // reached when a new version takes over is delivered by the new one. Per client, the newest
    // delivered one is all a session needs: older delivered ones go. True when one was delivered.
    bool record_write_checkpoints(pqxx::work& w, protocol::Lsn lsn, std::optional<std::int64_t> op_id) {
        if (write_checkpoints.empty()) {
            return false;
        }
        std::vector<std::string> users, clients, numbers;
        for (auto& c : write_checkpoints) {
            users.push_back(std::move(c.user_id));
            clients.push_back(std::move(c.client_id));
            numbers.push_back(std::to_string(c.number));
        }
        write_checkpoints.clear();
        const auto stored = w.exec_params1(
            "WITH mine AS (SELECT CASE WHEN NOT EXISTS (SELECT FROM sluice.rules_versions "
            "                                           WHERE state = 'active' AND id <> $6) "
            "                          THEN NULLIF($5::bigint, 0) END AS op_id), "
            "stored AS (INSERT INTO sluice.write_checkpoints AS w (user_id, client_id, checkpoint, lsn, op_id) "
            "           SELECT DISTINCT r.u, r.c, r.n, $4::pg_lsn, mine.op_id "
            "           FROM unnest($1::text[], $2::text[], $3::bigint[]) AS r(u, c, n), mine "
            "           ON CONFLICT (user_id, client_id, checkpoint) DO UPDATE SET op_id = excluded.op_id, lsn = excluded.lsn "
            "           WHERE w.op_id IS NULL AND excluded.op_id IS NOT NULL "
            "           RETURNING user_id, client_id, checkpoint, op_id), "
            "superseded AS (DELETE FROM sluice.write_checkpoints w USING stored s "
            "               WHERE s.op_id IS NOT NULL AND w.user_id = s.user_id AND w.client_id = s.client_id "
            "               AND w.checkpoint < s.checkpoint AND w.op_id IS NOT NULL) "
            "SELECT count(*) FILTER (WHERE op_id IS NOT NULL), count(*) FILTER (WHERE op_id IS NULL) FROM stored",
            to_pg_array(users), to_pg_array(clients), to_pg_array(numbers), lsn.to_string(),
            op_id.value_or(0),  // 0: NULL (op ids start at 1)
            options.rules_version);
        if (stored[1].as<std::int64_t>() > 0) {
            pending_write_checkpoints = true;
        }
        return stored[0].as<std::int64_t>() > 0;
    }

    // Delivers pending write checkpoints (recorded while storage was not visible, or by an older
    // Sluice, which recorded the source's WAL position after each upload) that `lsn` passes. A
    // client's checkpoint waits while a lower number of that client is not passed yet: a session
    // reports a client's highest delivered number, which says that every lower number is visible.
    bool deliver_pending_write_checkpoints(pqxx::work& w, protocol::Lsn lsn, std::int64_t op_id) {
        if (!pending_write_checkpoints) {
            return false;
        }
        const auto passed = w.exec_params0(
            "UPDATE sluice.write_checkpoints w SET op_id = $1 WHERE w.op_id IS NULL AND w.lsn <= $2::pg_lsn "
            "AND NOT EXISTS (SELECT FROM sluice.rules_versions WHERE state = 'active' AND id <> $3) "
            "AND NOT EXISTS (SELECT FROM sluice.write_checkpoints o WHERE o.user_id = w.user_id "
            "  AND o.client_id = w.client_id AND o.checkpoint < w.checkpoint AND o.op_id IS NULL "
            "  AND o.lsn > $2::pg_lsn)",
            op_id, lsn.to_string(), options.rules_version);
        if (passed.affected_rows() > 0) {
            w.exec_params0(
                "DELETE FROM sluice.write_checkpoints w USING sluice.write_checkpoints n "
                "WHERE n.op_id = $1 AND w.user_id = n.user_id AND w.client_id = n.client_id "
                "AND w.op_id < $1 AND w.checkpoint < n.checkpoint",
                op_id);
        }
        pending_write_checkpoints =
            w.exec1("SELECT EXISTS (SELECT FROM sluice.write_checkpoints WHERE op_id IS NULL)")[0].as<bool>();
        return passed.affected_rows() > 0;
    }

    // Closed lookup entries serve sessions that resolve at a checkpoint before the entry's end. A
    // session resolves at the newest checkpoint it was told of, moments ago; entries that ended by
    // a checkpoint older than kLookupHistory are past any use and are dropped.
    void drop_old_lookup_history(pqxx::work& w) {
        const auto now = std::chrono::steady_clock::now();
        std::int64_t horizon = lookups_dropped_to;
        while (!recent_checkpoints.empty() && now - recent_checkpoints.front().first > kLookupHistory) {
            horizon = recent_checkpoints.front().second;
            recent_checkpoints.pop_front();
        }
        if (horizon > lookups_dropped_to) {
            w.exec_params0(
                "DELETE FROM sluice.parameter_lookups WHERE rules_version = $1 AND to_op IS NOT NULL AND to_op <= $2",
                options.rules_version, horizon);
            lookups_dropped_to = horizon;
        }
    }

    void discard() {
        if (pending.valid()) {
            pending.wait();  // its failure, if any, is what is being handled
            pending = {};
        }
        if (ops_pending.valid()) {
            ops_pending.wait();
            ops_pending = {};
        }
        ops_tx.reset();  // aborts (unless it committed and the main commit failed: remove_ops_in_flight)
        forget_ops_in_flight();
        tx.reset();  // aborts
        rows.clear();
        write_checkpoints.clear();  // the stream sends their transactions again
        ops.clear();
        ops_in_window = 0;
        deltas.clear();
        ops_in_batch = 0;
        lookups_changed = false;
    }
};

BucketWriter::BucketWriter(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
BucketWriter::~BucketWriter() = default;

namespace {

template <typename F>
auto guarded(BucketWriter::Impl& impl, const char* what, F&& body) -> decltype(body()) {
    try {
        return body();
    } catch (const pqxx::broken_connection& e) {
        impl.discard();
        return Status(ErrorCode::kStorageUnreachable,
                      fmt::format("lost the storage connection while {}: {}", what, core::one_line(e.what())));
    } catch (const std::exception& e) {
        impl.discard();
        return Status(ErrorCode::kStorageQueryFailed, fmt::format("{} failed: {}", what, core::one_line(e.what())));
    }
}

}  // namespace

protocol::Result<std::unique_ptr<BucketWriter>> BucketWriter::open(const std::string& conninfo,
                                                                   WriterOptions options) {
    try {
        auto impl = std::make_unique<Impl>(std::move(options), conninfo);
        impl->load_counters();
        return std::unique_ptr<BucketWriter>(new BucketWriter(std::move(impl)));
    } catch (const std::exception& e) {
        return Status(ErrorCode::kStorageUnreachable,
                      fmt::format("cannot open the bucket writer: {}", core::one_line(e.what())));
    }
}

protocol::Status BucketWriter::prefetch(std::span<const core::RowKey> rows, std::span<const core::RowKey> absent) {
    for (const auto& key : absent) {
        m_impl->rows.emplace(key, RowState{});  // a row already in the overlay keeps its state
    }
    return guarded(*m_impl, "loading stored rows", [&] { return m_impl->load(rows); });
}

protocol::Result<std::optional<std::string>> BucketWriter::stored_row(const core::RowKey& row) {
    using R = protocol::Result<std::optional<std::string>>;
    try {
        if (auto status = m_impl->load(std::span(&row, 1)); !status) {
            return status;
        }
        const auto& state = m_impl->rows.at(row);
        return R(state.exists ? std::optional(state.data) : std::nullopt);
    } catch (const std::exception& e) {
        m_impl->discard();
        return Status(ErrorCode::kStorageQueryFailed, fmt::format("reading a stored row failed: {}", core::one_line(e.what())));
    }
}

protocol::Status BucketWriter::apply(const core::EvaluatedChange& change) {
    return guarded(*m_impl, "applying a change", [&]() -> Status {
        if (auto status = m_impl->load(std::span(&change.row, 1)); !status) {
            return status;
        }
        m_impl->apply_change(change, m_impl->rows.at(change.row));
        if (m_impl->ops_in_window >= m_impl->options.flush_ops) {
            m_impl->flush();
        }
        return Status::ok();
    });
}

protocol::Status BucketWriter::truncate(const std::string& table) {
    return guarded(*m_impl, "truncating", [&]() -> Status {
        // Flush first so the stored rows are complete, then remove them in key order, chunk by chunk.
        m_impl->flush();
        std::string after;
        constexpr int kChunk = 5000;
        for (;;) {
            auto result = m_impl->work().exec_params(
                "SELECT row_key FROM sluice.current_rows WHERE rules_version = $4 AND source_table = $1 "
                "AND row_key > $2 ORDER BY row_key LIMIT $3",
                table, after, kChunk, m_impl->options.rules_version);
            if (result.empty()) {
                return Status::ok();
            }
            std::vector<RowKey> keys;
            for (const auto& r : result) {
                after = r[0].as<std::string>();
                keys.push_back({table, after});
            }
            if (auto status = m_impl->load(keys); !status) {
                return status;
            }
            for (const auto& key : keys) {
                core::EvaluatedChange gone{key, ChangeKind::kDelete, {}, {}, {}};
                m_impl->apply_change(gone, m_impl->rows.at(key));
            }
            m_impl->flush();
        }
    });
}

void BucketWriter::add_write_checkpoint(WriteCheckpoint checkpoint) {
    m_impl->write_checkpoints.push_back(std::move(checkpoint));
}

protocol::Result<CommittedCheckpoint> BucketWriter::commit(protocol::Lsn lsn, Visibility visibility) {
    using R = protocol::Result<CommittedCheckpoint>;
    return guarded(*m_impl, "committing a checkpoint", [&]() -> R {
        auto& impl = *m_impl;
        impl.flush();
        if (impl.ops_in_batch == 0 && impl.lookups_changed && visibility == Visibility::kVisible) {
            // A grant or revoke alone writes no op, yet changes who gets which buckets: it needs a
            // checkpoint of its own, and checkpoints are keyed by op_id, so it takes one.
            ++impl.next_op_id;
        }
        auto& w = impl.work();
        impl.commit_ops(w);
        impl.rows.clear();  // flushed: current_rows holds the overlay's state
        if (visibility == Visibility::kVisible && lsn >= impl.visible_from) {
            // The batch's write checkpoints are delivered with this checkpoint. When the batch wrote
            // no op, a checkpoint of their own (a fresh op_id) wakes the sessions.
            const bool new_anyway = impl.next_op_id - 1 > impl.last_checkpoint_op_id || !impl.any_checkpoint;
            const std::int64_t target = new_anyway ? impl.next_op_id - 1 : impl.next_op_id;
            bool delivered = impl.deliver_pending_write_checkpoints(w, lsn, target);
            delivered = impl.record_write_checkpoints(w, lsn, target) || delivered;
            if (delivered && !new_anyway) {
                ++impl.next_op_id;
            }
        } else {
            impl.record_write_checkpoints(w, lsn, std::nullopt);  // delivered by a visible commit
        }
        CommittedCheckpoint checkpoint{impl.next_op_id - 1, lsn, impl.ops_in_batch};
        if (visibility == Visibility::kHidden) {
            w.commit();
            impl.tx.reset();
            impl.ops_in_batch = 0;
            impl.lookups_changed = false;
            return checkpoint;
        }
        const bool new_checkpoint =
            lsn >= impl.visible_from && (checkpoint.op_id > impl.last_checkpoint_op_id || !impl.any_checkpoint);
        if (new_checkpoint) {
            w.exec_params0("INSERT INTO sluice.checkpoints (rules_version, op_id, lsn) VALUES ($3, $1, $2::pg_lsn) "
                           "ON CONFLICT (rules_version, op_id) DO UPDATE SET lsn = excluded.lsn",
                           checkpoint.op_id, lsn.to_string(), impl.options.rules_version);
        }
        w.exec_params0(
            "INSERT INTO sluice.replication_state (slot_name, rules_version, durable_lsn) VALUES ($1, $3, $2::pg_lsn) "
            "ON CONFLICT (slot_name) DO UPDATE SET durable_lsn = excluded.durable_lsn, updated_at = now()",
            impl.options.slot_name, lsn.to_string(), impl.options.rules_version);
        if (new_checkpoint) {
            impl.drop_old_lookup_history(w);
            w.exec0("NOTIFY sluice_checkpoint, '" + std::to_string(checkpoint.op_id) + "'");
        }
        w.commit();
        impl.tx.reset();
        if (new_checkpoint) {
            impl.last_checkpoint_op_id = checkpoint.op_id;
            impl.any_checkpoint = true;
            impl.recent_checkpoints.emplace_back(std::chrono::steady_clock::now(), checkpoint.op_id);
        }
        impl.durable_lsn = lsn;
        impl.ops_in_batch = 0;
        impl.lookups_changed = false;
        return checkpoint;
    });
}

protocol::Result<ReplicationProgress> BucketWriter::progress() {
    using R = protocol::Result<ReplicationProgress>;
    return guarded(*m_impl, "reading replication progress", [&]() -> R {
        auto result = m_impl->work().exec_params(
            "SELECT snapshot_done, durable_lsn::text, visible_from::text FROM sluice.replication_state "
            "WHERE slot_name = $1",
            m_impl->options.slot_name);
        if (result.empty()) {
            return ReplicationProgress{};
        }
        return ReplicationProgress{result[0][0].as<bool>(),
                                   protocol::Lsn::parse(result[0][1].as<std::string>()).value_or(protocol::Lsn{}),
                                   protocol::Lsn::parse(result[0][2].as<std::string>()).value_or(protocol::Lsn{})};
    });
}

protocol::Result<TableSnapshotProgress> BucketWriter::table_progress(const std::string& table) {
    using R = protocol::Result<TableSnapshotProgress>;
    return guarded(*m_impl, "reading snapshot progress", [&]() -> R {
        auto result = m_impl->work().exec_params(
            "SELECT COALESCE(last_key, ''), rows_done, done FROM sluice.snapshot_progress "
            "WHERE slot_name = $1 AND source_table = $2",
            m_impl->options.slot_name, table);
        if (result.empty()) {
            return TableSnapshotProgress{};
        }
        return TableSnapshotProgress{result[0][0].as<std::string>(), result[0][1].as<std::int64_t>(),
                                     result[0][2].as<bool>()};
    });
}

protocol::Status BucketWriter::record_table_progress(const std::string& table, const TableSnapshotProgress& p,
                                                     std::int64_t rows_estimated) {
    return guarded(*m_impl, "recording snapshot progress", [&]() -> Status {
        m_impl->work().exec_params0(
            "INSERT INTO sluice.snapshot_progress (slot_name, source_table, last_key, rows_done, rows_estimated, done) "
            "VALUES ($1, $2, NULLIF($3, ''), $4, $5, $6) ON CONFLICT (slot_name, source_table) DO UPDATE SET "
            "last_key = excluded.last_key, rows_done = excluded.rows_done, rows_estimated = excluded.rows_estimated, "
            "done = excluded.done",
            m_impl->options.slot_name, table, p.last_key, p.rows_done, rows_estimated, p.done);
        return Status::ok();
    });
}

protocol::Result<std::vector<std::string>> BucketWriter::stored_tables() {
    using R = protocol::Result<std::vector<std::string>>;
    return guarded(*m_impl, "listing stored tables", [&]() -> R {
        std::vector<std::string> tables;
        for (const auto& r : m_impl->work().exec_params(
                 "SELECT DISTINCT source_table FROM sluice.current_rows WHERE rules_version = $1",
                 m_impl->options.rules_version)) {
            tables.push_back(r[0].as<std::string>());
        }
        return tables;
    });
}

protocol::Status BucketWriter::reset_snapshot() {
    return guarded(*m_impl, "resetting the snapshot", [&]() -> Status {
        auto& w = m_impl->work();
        w.exec_params0("DELETE FROM sluice.snapshot_progress WHERE slot_name = $1", m_impl->options.slot_name);
        w.exec_params0("UPDATE sluice.replication_state SET snapshot_done = false WHERE slot_name = $1",
                       m_impl->options.slot_name);
        return Status::ok();
    });
}

protocol::Status BucketWriter::finish_snapshot(protocol::Lsn durable, protocol::Lsn visible_from) {
    return guarded(*m_impl, "finishing the snapshot", [&]() -> Status {
        m_impl->work().exec_params0(
            "INSERT INTO sluice.replication_state (slot_name, rules_version, snapshot_done, durable_lsn, visible_from) "
            "VALUES ($1, $4, true, $2::pg_lsn, $3::pg_lsn) ON CONFLICT (slot_name) DO UPDATE SET snapshot_done = true, "
            "durable_lsn = excluded.durable_lsn, visible_from = excluded.visible_from, updated_at = now()",
            m_impl->options.slot_name, durable.to_string(), visible_from.to_string(), m_impl->options.rules_version);
        m_impl->visible_from = visible_from;
        return Status::ok();
    });
}

void BucketWriter::rollback() {
    m_impl->discard();
    try {
        m_impl->load_counters();  // op ids handed out in the dropped batch are reused
    } catch (const std::exception& e) {
        kLog.warn("reloading counters after rollback failed: {}", core::one_line(e.what()));
    }
}

protocol::Result<CommittedCheckpoint> BucketWriter::activate(protocol::Lsn lsn) {
    using R = protocol::Result<CommittedCheckpoint>;
    return guarded(*m_impl, "activating the rules version", [&]() -> R {
        auto& impl = *m_impl;
        impl.flush();
        auto& w = impl.work();
        impl.commit_ops(w);
        // Every committed op of any version is at or below its bucket's last_op_id; a checkpoint that
        // wrote no op took an id of its own. The previous version's writer has stopped (the caller
        // made sure), so nothing below this id can appear later.
        const auto highest = w.exec1(
            "SELECT GREATEST((SELECT max(op_id) FROM sluice.checkpoints), (SELECT max(last_op_id) FROM sluice.buckets), 0)")[0]
                                 .as<std::int64_t>();
        impl.next_op_id = std::max(impl.next_op_id, highest + 1);
        CommittedCheckpoint checkpoint{impl.next_op_id++, lsn, impl.ops_in_batch};
        const auto version = impl.options.rules_version;
        w.exec_params0("UPDATE sluice.rules_versions SET state = 'retired' WHERE state = 'active' AND id <> $1", version);
        const auto marked = w.exec_params(
            "UPDATE sluice.rules_versions SET state = 'active', activated_at = now(), activated_op_id = $2 "
            "WHERE id = $1 AND state IN ('building', 'active')",
            version, checkpoint.op_id);
        if (marked.affected_rows() != 1) {
            impl.discard();
            return Status(ErrorCode::kStorageQueryFailed,
                          fmt::format("rules version {} is not being built any more (sluice.rules_versions); it "
                                      "cannot become active",
                                      version));
        }
        w.exec_params0("INSERT INTO sluice.checkpoints (rules_version, op_id, lsn) VALUES ($1, $2, $3::pg_lsn)", version,
                       checkpoint.op_id, lsn.to_string());
        w.exec0("NOTIFY sluice_checkpoint, '" + std::to_string(checkpoint.op_id) + "'");
        w.commit();
        impl.tx.reset();
        impl.last_checkpoint_op_id = checkpoint.op_id;
        impl.any_checkpoint = true;
        impl.ops_in_batch = 0;
        impl.lookups_changed = false;
        return checkpoint;
    });
}

std::int64_t BucketWriter::last_op_id() const { return m_impl->next_op_id - 1; }
protocol::Lsn BucketWriter::durable_lsn() const { return m_impl->durable_lsn; }
protocol::Lsn BucketWriter::visible_from() const { return m_impl->visible_from; }

std::string subkey_of(const core::RowKey& row) { return row.table + "/" + row.key; }

}  // namespace sluice::storage
