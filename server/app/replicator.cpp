// The download path: snapshot, then stream → router → bucket storage (see replicator.h).
#include "server/app/replicator.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include "server/core/log.h"
#include "server/replication/pg_connection.h"
#include "server/replication/replication_setup.h"
#include "server/replication/replication_stream.h"
#include "server/replication/table_copy.h"
#include "server/replication/transaction_queue.h"
#include "server/replication/wal_stream.h"
#include "server/router/router.h"
#include "server/storage/bucket_writer.h"
#include "server/storage/write_checkpoints.h"

namespace sluice::app {
namespace {

namespace pg = protocol::pgoutput;
using protocol::Lsn;
using protocol::Status;
using replication::ConnectionKind;
using replication::PgConnection;

const core::Logger kLog("replication");

#define SLUICE_TRY(expr)                 \
    do {                                 \
        if (auto s_ = (expr); !s_) {     \
            return s_;                   \
        }                                \
    } while (false)

std::vector<std::string> table_names(const config::rules::RuleSet& rules) {
    std::vector<std::string> names;
    for (const auto& t : rules.source_tables()) {
        names.push_back(t.to_string());
    }
    return names;
}

// Copies every table into storage, chunk by chunk, each chunk committed (hidden) with its progress.
class SnapshotCopier {
public:
    SnapshotCopier(PgConnection& source, storage::BucketWriter& writer, router::Router& router,
                   ReplicatorStats& stats, std::size_t chunk_rows)
        : m_source(source), m_writer(writer), m_router(router), m_stats(stats), m_chunk_rows(chunk_rows) {}

    Status copy_table(const std::string& table, const std::atomic<bool>& stop) {
        auto description = replication::describe_table(m_source, table);
        if (!description) {
            return description.status();
        }
        auto progress = m_writer.table_progress(table);
        if (!progress) {
            return progress.status();
        }
        auto p = progress.value();
        if (p.done) {
            return Status::ok();
        }
        const auto log = kLog.with_scope("table=" + table);
        log.info("snapshot {} from {} of ~{} rows", p.rows_done == 0 ? "starting" : "resuming", p.rows_done,
                 description->rows_estimated);
        std::vector<core::EvaluatedChange> changes;
        std::vector<core::RowKey> keys;
        while (!stop.load()) {
            auto chunk = replication::copy_chunk(m_source, description.value(), p.last_key, m_chunk_rows);
            if (!chunk) {
                return chunk.status();
            }
            changes.clear();
            keys.clear();
            for (const auto& tuple : chunk->rows) {
                auto change = m_router.upsert(description->relation, tuple);
                if (!change) {
                    return change.status();
                }
                keys.push_back(change->row);
                changes.push_back(std::move(change).value());
            }
            SLUICE_TRY(m_writer.prefetch(keys));
            for (const auto& change : changes) {
                SLUICE_TRY(m_writer.apply(change));
            }
            p.rows_done += static_cast<std::int64_t>(chunk->rows.size());
            p.last_key = chunk->last_key;
            p.done = chunk->rows.size() < m_chunk_rows || description->order_columns.empty();
            SLUICE_TRY(m_writer.record_table_progress(table, p, description->rows_estimated));
            auto committed = m_writer.commit(Lsn{}, storage::Visibility::kHidden);
            if (!committed) {
                return committed.status();
            }
            m_stats.snapshot_rows += chunk->rows.size();
            m_stats.ops += committed->ops_written;
            if (p.done) {
                log.info("snapshot done: {} rows", p.rows_done);
                return Status::ok();
            }
            log.debug("snapshot at {} of ~{} rows", p.rows_done, description->rows_estimated);
        }
        return Status::ok();
    }

private:
    PgConnection& m_source;
    storage::BucketWriter& m_writer;
    router::Router& m_router;
    ReplicatorStats& m_stats;
    std::size_t m_chunk_rows;
};

// Applies streamed transactions to storage.
class TransactionApplier {
public:
    TransactionApplier(storage::BucketWriter& writer, router::Router& router, PgConnection& source)
        : m_writer(writer), m_router(router), m_source(source) {}

    // Applies transactions (or chunks of one) in order. One query first loads the stored state of
    // every row they touch: with many small source transactions per storage commit, a query per
    // transaction would cost more than all the writing.
    //
    // Rows the source inserts are not looked up when storage is known not to hold them: storage is
    // in step with the source as of the commit before these transactions (the stream drops those
    // ending at or before storage's durable LSN, and no resumed snapshot is converging), the key is unique in the source
    // (not a FULL identity without a primary key), and nothing else in the group touches that key
    // or truncates (a delete then an insert of one key, say). Such an insert succeeded in the
    // source, so no row with its key existed there, and none is stored. In an insert burst this
    // saves the one index probe per row that the writing does not need.
    Status apply(std::span<const replication::SourceTransaction> txns) {
        m_keys.clear();
        m_inserted.clear();
        m_truncates = false;
        for (const auto& txn : txns) {
            SLUICE_TRY(collect_keys(txn));
        }
        m_absent.clear();
        if (!m_truncates && m_writer.durable_lsn() >= m_writer.visible_from()) {
            std::unordered_set<core::RowKey, core::RowKeyHash> touched(m_keys.begin(), m_keys.end());
            for (auto& key : m_inserted) {
                if (touched.insert(key).second) {
                    m_absent.push_back(std::move(key));
                } else {
                    m_keys.push_back(std::move(key));
                }
            }
        } else {
            m_keys.insert(m_keys.end(), std::make_move_iterator(m_inserted.begin()),
                          std::make_move_iterator(m_inserted.end()));
        }
        SLUICE_TRY(m_writer.prefetch(m_keys, m_absent));
        for (const auto& txn : txns) {
            SLUICE_TRY(apply_changes(txn));
        }
        return Status::ok();
    }

private:
    Status collect_keys(const replication::SourceTransaction& txn) {
        for (const auto& change : txn.changes) {
            if (std::holds_alternative<replication::TruncateChange>(change)) {
                m_truncates = true;
            }
            const auto* row = std::get_if<replication::RowChange>(&change);
            if (row == nullptr) {
                continue;
            }
            auto relation = keyed(row->relation);
            if (!relation) {
                return relation.status();
            }
            const auto& r = *relation.value();
            if (!row->new_tuple.empty()) {
                core::RowKey key{router::table_name(r), router::row_key(r, row->new_tuple)};
                const bool unique_key = r.identity != pg::ReplicaIdentity::kFull ||
                                        !std::all_of(r.columns.begin(), r.columns.end(),
                                                     [](const pg::Column& c) { return c.is_key; });
                (row->kind == replication::RowChange::Kind::kInsert && unique_key ? m_inserted : m_keys)
                    .push_back(std::move(key));
            }
            if (!row->old_tuple.empty()) {
                m_keys.push_back({router::table_name(r), router::row_key(r, row->old_tuple)});
            }
        }
        return Status::ok();
    }

    Status apply_changes(const replication::SourceTransaction& txn) {
        const router::StoredRowLookup stored = [this](const core::RowKey& key) { return m_writer.stored_row(key); };
        for (const auto& change : txn.changes) {
            if (const auto* row = std::get_if<replication::RowChange>(&change)) {
                SLUICE_TRY(apply_row(*row, stored));
            } else if (const auto* truncate = std::get_if<replication::TruncateChange>(&change)) {
                for (const auto& relation : truncate->relations) {
                    SLUICE_TRY(m_writer.truncate(router::table_name(*relation)));
                }
            } else if (const auto* message = std::get_if<pg::LogicalMessage>(&change)) {
                record_write_checkpoint(*message);
            }
            // Other logical messages (heartbeats) need no storage: the commit records the LSN.
        }
        return Status::ok();
    }

    // A write checkpoint issued in this transaction (storage/write_checkpoints.h) is recorded with
    // the batch's commit; a malformed one is someone else's message under our prefix.
    void record_write_checkpoint(const pg::LogicalMessage& message) {
        if (!message.transactional || message.prefix != storage::kWriteCheckpointPrefix) {
            return;
        }
        if (auto checkpoint = storage::parse_write_checkpoint_message(message.content)) {
            m_writer.add_write_checkpoint(std::move(*checkpoint));
        } else {
            kLog.warn("ignored a '{}' logical message at {} that is not a write checkpoint: {:.200}",
                      storage::kWriteCheckpointPrefix, message.lsn.to_string(), message.content);
        }
    }

    // The relation with storage's key columns (see replication::key_by_primary_key), cached per
    // relation version.
    protocol::Result<replication::RelationPtr> keyed(const replication::RelationPtr& relation) {
        if (auto it = m_keyed.find(relation.get()); it != m_keyed.end() && it->second.first == relation) {
            return it->second.second;
        }
        auto result = replication::key_by_primary_key(m_source, relation);
        if (result) {
            m_keyed[relation.get()] = {relation, result.value()};
        }
        return result;
    }

    Status apply_row(const replication::RowChange& row, const router::StoredRowLookup& stored) {
        using Kind = replication::RowChange::Kind;
        m_out.clear();
        auto keyed_relation = keyed(row.relation);
        if (!keyed_relation) {
            return keyed_relation.status();
        }
        const auto& relation = *keyed_relation.value();
        if (row.kind == Kind::kInsert) {
            auto change = m_router.upsert(relation, row.new_tuple);
            if (!change) {
                return change.status();
            }
            m_out.push_back(std::move(change).value());
        } else if (row.kind == Kind::kUpdate) {
            SLUICE_TRY(m_router.update(relation, row.old_kind, row.old_tuple, row.new_tuple, stored, m_out));
        } else {
            m_out.push_back(router::Router::remove(relation, row.old_tuple));
        }
        for (const auto& change : m_out) {
            SLUICE_TRY(m_writer.apply(change));
        }
        return Status::ok();
    }

    storage::BucketWriter& m_writer;
    router::Router& m_router;
    PgConnection& m_source;
    // Relation version -> (that version, keyed copy); holding the version keeps its address unique.
    std::unordered_map<const pg::Relation*, std::pair<replication::RelationPtr, replication::RelationPtr>> m_keyed;
    std::vector<core::RowKey> m_keys;      // rows to look up before applying a group
    std::vector<core::RowKey> m_inserted;  // rows the group inserts (see apply())
    std::vector<core::RowKey> m_absent;    // of those, the ones known not to be stored
    bool m_truncates = false;              // the group truncates a table
    std::vector<core::EvaluatedChange> m_out;
};

// The slot is lost: every stored row goes (REMOVE ops, hidden from clients like the snapshot that
// follows, so they see one change from the old state to the new) and the snapshot starts again.
Status start_over(PgConnection& source, storage::BucketWriter& writer, bool drop_slot, const std::string& slot) {
    if (drop_slot) {
        auto dropped = source.query("SELECT pg_drop_replication_slot(" + replication::quote_literal(slot) + ")");
        if (!dropped) {
            return dropped.status();
        }
    }
    auto tables = writer.stored_tables();
    if (!tables) {
        return tables.status();
    }
    for (const auto& table : tables.value()) {
        SLUICE_TRY(writer.truncate(table));
    }
    SLUICE_TRY(writer.reset_snapshot());
    auto committed = writer.commit(Lsn{}, storage::Visibility::kHidden);
    return committed ? Status::ok() : committed.status();
}

// The write checkpoints of the uploads the snapshot holds (see storage/write_checkpoints.h): their
// messages may be in WAL that a lost slot never decoded. Each client's highest goes with the
// snapshot's checkpoint. Answers how many.
protocol::Result<std::size_t> add_snapshot_write_checkpoints(PgConnection& snapshot, storage::BucketWriter& writer) {
    auto readable = snapshot.query(storage::kUploadCheckpointsReadableSql);
    if (!readable) {
        return readable.status();
    }
    if (readable.value().empty() || readable.value()[0][0].value_or("") != "true") {
        return std::size_t{0};
    }
    auto rows = snapshot.query(storage::kSnapshotWriteCheckpointsSql);
    if (!rows) {
        return rows.status();
    }
    for (const auto& row : rows.value()) {
        writer.add_write_checkpoint({row[0].value_or(""), row[1].value_or(""), std::stoll(row[2].value_or("0"))});
    }
    return rows.value().size();
}

}  // namespace

Replicator::Replicator(ReplicatorConfig config)
    : m_config(std::move(config)),
      m_stats_owner(m_config.stats ? m_config.stats : std::make_shared<ReplicatorStats>()),
      m_stats(*m_stats_owner) {}

Status Replicator::run(const std::atomic<bool>& stop) {
    const auto log = kLog.with_scope("slot=" + m_config.slot);
    auto source = PgConnection::open(m_config.source_conninfo, ConnectionKind::kRegular, 10,
                                     replication::kSourceSessionOptions);
    if (!source) {
        return source.status();
    }
    const auto tables = table_names(*m_config.rules);
    SLUICE_TRY(replication::ensure_publication(
        source.value(), {m_config.publication, tables,
                         m_config.publication_mode == config::PublicationMode::kManaged
                             ? replication::PublicationMode::kManaged
                             : replication::PublicationMode::kUserManaged}));
    storage::WriterOptions writer_options;
    writer_options.slot_name = m_config.slot;
    writer_options.rules_version = m_config.rules_version;
    auto opened = storage::BucketWriter::open(m_config.storage_conninfo, writer_options);
    if (!opened) {
        return opened.status();
    }
    auto& writer = *opened.value();
    router::Router router(m_config.rules);

    auto progress = writer.progress();
    if (!progress) {
        return progress.status();
    }
    if (progress->snapshot_done) {
        auto slot_state = source.value().query("SELECT wal_status FROM pg_replication_slots WHERE slot_name = " +
                                               replication::quote_literal(m_config.slot));
        if (!slot_state) {
            return slot_state.status();
        }
        const bool missing = slot_state.value().empty();
        if (missing || slot_state.value()[0][0].value_or("") == "lost") {
            log.error("replication slot {}: the changes since {} cannot be streamed any more; recreating the slot "
                      "and snapshotting every table again (clients keep the current data until it has converged)",
                      missing ? "is gone" : "was invalidated by Postgres (wal_status = lost)",
                      progress->durable_lsn.to_string());
            SLUICE_TRY(start_over(source.value(), writer, !missing, m_config.slot));
            progress->snapshot_done = false;
        }
    }
    if (!progress->snapshot_done) {
        auto replication = PgConnection::open(m_config.source_conninfo, ConnectionKind::kReplication, 10,
                                              replication::kSourceSessionOptions);
        if (!replication) {
            return replication.status();
        }
        auto slot = replication::ensure_slot(replication.value(), m_config.slot, replication::SlotSnapshot::kExport);
        if (!slot) {
            return slot.status();
        }
        auto& snapshot = source.value();
        auto begin = snapshot.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
        if (!begin) {
            return begin.status();
        }
        Lsn visible_from = slot->consistent_point;
        if (slot->created) {
            // The exported snapshot is exactly the slot's start: copy and stream meet without a gap.
            auto set = snapshot.query("SET TRANSACTION SNAPSHOT " + replication::quote_literal(slot->snapshot_name));
            if (!set) {
                return set.status();
            }
            log.info("slot created at {}; copying {} table(s)", slot->consistent_point.to_string(), tables.size());
        } else {
            // Resuming after a crash: the export is gone. Copy the rest as of now and hide checkpoints
            // until the stream (which replays from the slot's start) has passed this point.
            auto now = snapshot.query("SELECT pg_current_wal_lsn()::text");
            if (!now) {
                return now.status();
            }
            visible_from = Lsn::parse(now.value()[0][0].value_or("0/0")).value_or(Lsn{});
            log.info("resuming the snapshot; checkpoints hidden until {}", visible_from.to_string());
        }
        SnapshotCopier copier(snapshot, writer, router, m_stats, m_config.snapshot_chunk_rows);
        for (const auto& table : tables) {
            SLUICE_TRY(copier.copy_table(table, stop));
            if (stop.load()) {
                return Status::ok();
            }
        }
        auto checkpoints = add_snapshot_write_checkpoints(snapshot, writer);
        if (!checkpoints) {
            return checkpoints.status();
        }
        auto end = snapshot.query("COMMIT");
        if (!end) {
            return end.status();
        }
        if (checkpoints.value() > 0) {
            log.info("the snapshot holds the uploads of {} client(s): their write checkpoints go with it",
                     checkpoints.value());
        }
        SLUICE_TRY(writer.finish_snapshot(slot->consistent_point, visible_from));
        auto first = writer.commit(slot->consistent_point);
        if (!first) {
            return first.status();
        }
        log.info("snapshot complete: {} rows, checkpoint {}", m_stats.snapshot_rows.load(), first->op_id);
    }

    // A version being built has caught up once its stream commits past a marker written now, after
    // its snapshot: the marker comes back through its own slot as a transaction of its own.
    std::optional<Lsn> catch_up_at;
    if (m_config.on_caught_up) {
        auto marker = source.value().query("SELECT pg_logical_emit_message(true, 'sluice_caught_up', " +
                                           replication::quote_literal(std::to_string(m_config.rules_version)) +
                                           ")::text");
        if (!marker) {
            return marker.status();
        }
        catch_up_at = Lsn::parse(marker.value()[0][0].value_or("0/0")).value_or(Lsn{});
        log.info("rules version {}: snapshot done; switching to it once the stream passes {}", m_config.rules_version,
                 catch_up_at->to_string());
    }

    replication::TransactionQueue queue(1024, 4 * m_config.batch_changes);
    replication::StreamConfig stream_config{m_config.source_conninfo, m_config.slot, {m_config.publication},
                                            writer.durable_lsn()};
    stream_config.max_chunk_changes = m_config.max_chunk_changes;
    replication::ReplicationStream stream(stream_config, queue);
    stream.start();
    TransactionApplier applier(writer, router, source.value());
    Status result;
    auto last_activity = std::chrono::steady_clock::now();
    std::int64_t last_checkpoint = 0;
    while (!stop.load()) {
        auto txn = queue.pop(std::chrono::milliseconds(100));
        if (!txn) {
            if (queue.closed()) {
                break;  // the stream ended: its status says why
            }
            if (std::chrono::steady_clock::now() - last_activity >= m_config.heartbeat_interval) {
                // Comes back through the stream as a transaction of its own, whose commit advances the slot.
                auto beat = source.value().query("SELECT pg_logical_emit_message(true, 'sluice_heartbeat', now()::text)");
                if (!beat) {
                    log.warn("heartbeat failed: {}", beat.status().to_string());
                }
                last_activity = std::chrono::steady_clock::now();
            }
            continue;
        }
        last_activity = std::chrono::steady_clock::now();
        // Batch whole transactions into one storage commit while more are waiting, applying them in
        // groups of what is already queued. A large transaction arrives in chunks: they all go into
        // the open storage transaction, committed after the last.
        std::size_t changes = 0;
        Lsn end;
        bool inside_transaction = false;
        std::vector<replication::SourceTransaction> group;
        for (;;) {
            group.clear();
            std::size_t group_changes = 0;
            for (;;) {
                group_changes += txn->changes.size();
                inside_transaction = !txn->complete;
                if (txn->complete) {
                    end = txn->end_lsn;
                    ++m_stats.transactions;
                }
                group.push_back(std::move(*txn));
                if (inside_transaction || changes + group_changes >= m_config.batch_changes) {
                    break;
                }
                if (txn = queue.pop(std::chrono::milliseconds(0)); !txn) {
                    break;
                }
            }
            if (result = applier.apply(group); !result) {
                break;
            }
            changes += group_changes;
            if (!inside_transaction && changes >= m_config.batch_changes) {
                break;
            }
            txn = queue.pop(std::chrono::milliseconds(inside_transaction ? 100 : 0));
            while (!txn && inside_transaction && !stop.load() && !queue.closed()) {
                txn = queue.pop(std::chrono::milliseconds(100));
            }
            if (!txn) {
                break;
            }
        }
        if (!result || inside_transaction) {
            writer.rollback();  // an error, or stopped in the middle of a large transaction
            break;
        }
        auto committed = writer.commit(end);
        if (!committed) {
            result = committed.status();
            break;
        }
        queue.mark_durable(end);
        if (committed->op_id != last_checkpoint) {
            last_checkpoint = committed->op_id;
            ++m_stats.checkpoints;
        }
        m_stats.changes += changes;
        m_stats.ops += committed->ops_written;
        if (!catch_up_at) {  // a version still being built is not what clients are served from
            m_stats.durable_lsn = end.value();
        }
        if (catch_up_at && end >= *catch_up_at) {
            if (result = m_config.on_caught_up(writer, end); !result) {
                break;
            }
            catch_up_at.reset();
        }
    }
    stream.request_stop();
    queue.close();
    auto stream_status = stream.join();
    if (!result) {
        return result;
    }
    return stop.load() ? Status::ok() : stream_status;
}

}  // namespace sluice::app
