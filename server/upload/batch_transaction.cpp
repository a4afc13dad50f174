// One attempt at one upload batch in one source transaction (see detail/batch_transaction.h and
// uploader.h), in round trips of pipelined statements: BEGIN with the record check and the first
// op's locked read; each op's write, then the next op's read; the last op's write with the record
// and its write checkpoint, and COMMIT (run_attempt). Identifiers in SQL come only from the catalog
// (TableCatalog), quoted; every client value is a parameter, cast to its column's type.
#include "server/upload/detail/batch_transaction.h"

#include <algorithm>
#include <optional>
#include <variant>

#include <fmt/format.h>
#include <pqxx/pqxx>

#include "protocol/pgoutput/text_value.h"
#include "server/storage/write_checkpoints.h"
#include "server/upload/db_errors.h"

namespace sluice::upload::detail {
namespace {

namespace wire = protocol::wire;
namespace rules = config::rules;
namespace pg = protocol::pgoutput;
using protocol::ErrorCode;
using protocol::Status;
using wire::OpResult;
using wire::OpStatus;

// The record of a batch is written with its result just before COMMIT, in the same round trip.
// A concurrent request with the same key waits on the record's primary key and fails, so its own
// writes roll back and it answers from the committed record; a later retry finds the record in
// its first round trip and writes nothing. Every statement is prepared once per connection.
constexpr const char* kBegin = "BEGIN ISOLATION LEVEL READ COMMITTED";
constexpr const char* kSetRole =
    "SELECT set_config('role', $1, true), set_config('request.jwt.claims', $2, true)";
constexpr const char* kRecord =
    "SELECT user_id, result::text FROM sluice.uploads WHERE client_id = $1 AND batch_id = $2";
// The batch's write checkpoint is issued in its transaction, in the statement that inserts the
// record (see storage/write_checkpoints.h): a transactional logical message carries it through
// replication, which delivers it once it has passed the commit; the record keeps the number too, for
// a snapshot that covers the commit. The number is the WAL insert position, read under a
// transaction-scoped advisory lock on the (user, client): a client's next transaction takes the lock
// only after this one committed, so it reads a larger position. A client's numbers thus grow in the
// order its transactions commit, and delivering one says that every lower one is visible too. (Two
// clients whose keys share a hash merely wait for each other.)
constexpr const char* kWalPosition = "(pg_current_wal_insert_lsn() - '0/0')::bigint";

// FROM item `locked`, one row, for SQL expressions `user` and `client`: takes the client's lock
// before the select list is computed (OFFSET 0 keeps the planner from folding it away).
std::string client_lock(std::string_view user, std::string_view client) {
    return fmt::format(
        "(SELECT pg_advisory_xact_lock(hashtextextended(({})::text || '/' || ({})::text, 0)) OFFSET 0) AS locked",
        user, client);
}

// The record and the write checkpoint: $1 client, $2 batch, $3 user, $4 result. Answers the write
// checkpoint, or no row when `if_new` and the batch has a record already.
std::string record_sql(bool if_new) {
    return fmt::format(
        "INSERT INTO sluice.uploads (client_id, batch_id, user_id, result, write_checkpoint) "
        "SELECT $1::text, $2::text, $3::text, $4::jsonb, {} FROM {}{} RETURNING write_checkpoint, {}",
        kWalPosition, client_lock("$3", "$1"), if_new ? " ON CONFLICT (client_id, batch_id) DO NOTHING" : "",
        storage::emit_write_checkpoint_sql("user_id", "client_id", "write_checkpoint"));
}

// A write checkpoint of its own: $1 user, $2 client, $3 the client's own number when `chosen` (it
// still takes the client's lock, so it follows the client's uploads in flight). Answers the number
// and the WAL position.
const std::string& own_checkpoint_sql(bool chosen) {
    static const std::string kServerNumber =
        fmt::format("SELECT position, position, {} FROM (SELECT {} AS position FROM {}) AS numbered",
                    storage::emit_write_checkpoint_sql("$1", "$2", "position"), kWalPosition, client_lock("$1", "$2"));
    static const std::string kClientNumber =
        fmt::format("SELECT $3::bigint, position, {} FROM (SELECT {} AS position FROM {}) AS numbered",
                    storage::emit_write_checkpoint_sql("$1", "$2", "$3::bigint"), kWalPosition,
                    client_lock("$1", "$2"));
    return chosen ? kClientNumber : kServerNumber;
}

const std::string kInsertRecord = record_sql(false);
const std::string kInsertRecordIfNew = record_sql(true);
constexpr const char* kSavepoint = "SAVEPOINT sluice_op";
constexpr int kInsertRaces = 3;  // an INSERT that found the row inserted meanwhile is checked again as an update

OpResult rejected(ErrorCode code, std::string reason) { return {OpStatus::kRejected, code, std::move(reason)}; }

rules::Value to_rules_value(pg::Value v) {
    switch (v.type) {
        case pg::ValueType::kNull:
            return rules::Value::null();
        case pg::ValueType::kInteger:
            return rules::Value::integer(v.integer);
        case pg::ValueType::kReal:
            return rules::Value::real(v.real);
        case pg::ValueType::kText:
            return rules::Value::text(std::move(v.bytes));
        case pg::ValueType::kBlob:
            return rules::Value::blob(std::move(v.bytes));
    }
    return rules::Value::null();
}

// A column value as replication would give it to the rules (powersync-compat.md's type mapping).
rules::Value column_value(const ColumnInfo& column, const Reply& reply, int at, const pg::TypeResolver& resolver) {
    if (reply.is_null(0, at)) {
        return rules::Value::null();
    }
    const std::string_view text = reply.value(0, at);
    auto decoded = pg::decode_text_value(column.type, text, resolver);
    return decoded ? to_rules_value(std::move(decoded).value()) : rules::Value::text(std::string(text));
}

// The write_rules table an op's `type` names: "todos" (any schema, public first) or "schema.todos".
std::optional<rules::TableName> resolve_table(const rules::WriteRules& write_rules, const std::string& type) {
    std::optional<rules::TableName> found;
    for (const auto& t : write_rules.tables()) {
        if (t.schema + "." + t.name == type) {
            return t;
        }
        if (t.name == type && (!found || t.schema == "public")) {
            found = t;
        }
    }
    return found;
}

struct Written {
    const ColumnInfo* column;
    const wire::CrudValue* value;
};

// What one op came to.
struct OpOutcome {
    OpResult result;
    // Rejected by a statement's error: the transaction (or, apply_valid, the op's savepoint) is
    // aborted and must be rolled back.
    bool statement_failed = false;
    // The op's write is queued, to go with the record and COMMIT: it is applied only if that whole
    // flight succeeds.
    bool write_deferred = false;
};

// Runs one op in two round trips: its row read and locked (with the new values cast to their
// columns' types, whose text form is what replication would show the rules), then, if the write
// rules allow it, the write. The write may instead be deferred: left queued, to go in the batch's
// last round trip (see run_attempt).
class OpRunner {
public:
    OpRunner(PipelinedConnection& source, const BatchContext& ctx) : m_source(source), m_ctx(ctx) {}

    // Runs `op`. The statements the caller queued on the connection go in its first round trip;
    // their replies are moved into `queued_replies`, and when one of them failed the op is not run
    // (the caller must check them first). With `defer_write`, a write is queued, not run.
    OpOutcome run(const wire::CrudOp& op, std::vector<Reply>& queued_replies, bool defer_write) {
        m_refreshed = false;
        m_defer_write = defer_write;
        for (int race = 0;; ++race) {
            auto outcome = run_once(op, queued_replies);
            if (outcome) {
                return *outcome;
            }
            if (race + 1 >= kInsertRaces) {
                return {rejected(ErrorCode::kUploadConstraint, "the row was inserted and removed concurrently; try again")};
            }
        }
    }

private:
    // What the op writes, checked against the catalog; or why it is rejected before any SQL.
    struct Plan {
        rules::TableName table;
        std::shared_ptr<const TableInfo> info;
        std::vector<Written> written;
    };

    std::variant<OpResult, Plan> plan(const wire::CrudOp& op) {
        const auto table = resolve_table(m_ctx.rules, op.table);
        if (!table) {
            return rejected(ErrorCode::kUploadTableNotAllowed, fmt::format("table '{}' has no write_rules entry", op.table));
        }
        auto info = m_ctx.catalog.get(*table);
        if (!info) {
            return rejected(ErrorCode::kUploadTableNotAllowed,
                            fmt::format("table {} does not exist in the source database", table->to_string()));
        }
        if (!info->id_column || !info->id_unique) {
            return rejected(ErrorCode::kUploadTableNotAllowed,
                            fmt::format("table {} has no column id with a primary key or unique constraint of its "
                                        "own; uploads identify rows by id",
                                        table->to_string()));
        }
        if (op.id.find('\0') != std::string::npos) {
            return rejected(ErrorCode::kUploadInvalidData, "the id contains a NUL character");
        }
        Plan planned{*table, info, {}};
        if (op.kind == wire::CrudKind::kDelete) {
            return planned;
        }
        for (const auto& [name, value] : op.data) {
            if (name == "id") {
                if ((value.kind != wire::CrudValue::Kind::kString && value.kind != wire::CrudValue::Kind::kNumber) ||
                    value.text != op.id) {
                    return rejected(ErrorCode::kUploadInvalidData, "data.id differs from the op's id");
                }
                continue;
            }
            const ColumnInfo* column = info->column(name);
            if (column == nullptr && !m_refreshed) {
                // The table may have gained the column since it was cached.
                m_refreshed = true;
                m_ctx.catalog.invalidate();
                return plan(op);
            }
            if (column == nullptr || column->generated) {
                return rejected(ErrorCode::kUploadUnknownColumn,
                                fmt::format("table {} has no writable column '{}'", table->to_string(), name));
            }
            if (value.text.find('\0') != std::string::npos) {
                return rejected(ErrorCode::kUploadInvalidData,
                                fmt::format("the value of '{}' contains a NUL character", name));
            }
            planned.written.push_back({column, &value});
        }
        return planned;
    }

    // A rejection when a statement of the op failed with the client's data; other errors throw.
    static OpOutcome statement_error(const Reply& reply) {
        const auto error = classify_sqlstate(reply.sqlstate(), reply.message());
        if (error.action != DbAction::kReject) {
            reply.throw_error();
        }
        return {rejected(error.code, error.message), true};
    }

    // Throws a stale-catalog error (the batch runs again with the table's new shape) when the
    // table's columns or their types differ from the cached shape `used`.
    void throw_if_changed(const rules::TableName& table, const TableInfo& used) {
        m_ctx.catalog.invalidate();
        const auto now = m_ctx.catalog.get(table);
        const auto shape = [](const TableInfo& t) {
            std::vector<std::pair<std::string, std::string>> columns;
            for (const auto& c : t.columns) {
                columns.emplace_back(c.name, c.type_sql);
            }
            return columns;
        };
        if (!now || shape(*now) != shape(used)) {
            throw pqxx::sql_error("table " + table.to_string() + " changed during the upload", "", "42703");
        }
    }

    // nullopt: an INSERT lost a race with a concurrent insert of the same id (check again).
    std::optional<OpOutcome> run_once(const wire::CrudOp& op, std::vector<Reply>& queued_replies) {
        auto planned = plan(op);
        if (auto* rejection = std::get_if<OpResult>(&planned)) {
            if (m_source.has_queued()) {
                queued_replies = m_source.run();  // whatever the caller queued still runs
            }
            return OpOutcome{std::move(*rejection)};
        }
        const auto& [table, info, written] = std::get<Plan>(planned);
        const ColumnInfo& id = info->columns[*info->id_column];
        const std::string id_param = "$1::" + id.type_sql;
        Params params;
        params.emplace_back(op.id);
        std::string sql = "SELECT " + id_param;
        for (const auto& w : written) {
            params.push_back(w.value->kind == wire::CrudValue::Kind::kNull ? std::nullopt
                                                                           : std::optional<std::string>(w.value->text));
            sql += fmt::format(", ${}::{}", params.size(), w.column->type_sql);
        }
        sql += ", o.* FROM (SELECT 1) AS one LEFT JOIN (SELECT true";
        for (const auto& c : info->columns) {
            sql += ", " + c.quoted;
        }
        sql += " FROM " + info->quoted + " WHERE " + id.quoted + " = " + id_param + " FOR UPDATE) AS o ON true";
        const auto read_at = m_source.add(sql, params);
        auto replies = m_source.run();
        Reply row = std::move(replies[read_at]);
        replies.pop_back();
        if (!replies.empty()) {
            queued_replies = std::move(replies);  // (the caller's statements go with the first read only)
        }
        if (row.aborted()) {
            return OpOutcome{};  // a queued statement failed
        }
        if (!row.ok()) {
            if (row.sqlstate().starts_with("22")) {
                throw_if_changed(table, *info);  // the cast may have used a type the column no longer has
            }
            return statement_error(row);
        }

        const auto resolver = info->resolver();
        const int old_at = static_cast<int>(1 + written.size());
        const bool exists = !row.is_null(0, old_at);
        rules::Row old_row;
        if (exists) {
            for (std::size_t i = 0; i < info->columns.size(); ++i) {
                old_row.set(info->columns[i].name,
                            column_value(info->columns[i], row, old_at + 1 + static_cast<int>(i), resolver));
            }
        }
        if (op.kind == wire::CrudKind::kDelete) {
            if (!exists) {
                return OpOutcome{};  // already gone: the delete holds
            }
            rules::WriteCheck check;
            check.op = rules::WriteOp::kDelete;
            check.old_row = &old_row;
            if (auto decision = m_ctx.rules.check(table, check, m_ctx.request); !decision.allowed) {
                return OpOutcome{rejected(ErrorCode::kUploadDenied, decision.reason)};
            }
            const std::string remove = "DELETE FROM " + info->quoted + " WHERE " + id.quoted + " = " + id_param;
            if (m_defer_write) {
                return defer(remove, {op.id}, false);
            }
            const auto done = write(remove, {op.id});
            return done.ok() ? OpOutcome{} : statement_error(done);
        }
        if (op.kind == wire::CrudKind::kPatch && !exists) {
            return OpOutcome{rejected(ErrorCode::kUploadRowNotFound,
                                      fmt::format("{} has no row with id '{}' to patch", table.to_string(), op.id))};
        }
        rules::Row new_row = exists ? old_row : rules::Row{};
        new_row.set(id.name, column_value(id, row, 0, resolver));
        std::vector<std::string> patched;
        for (std::size_t i = 0; i < written.size(); ++i) {
            new_row.set(written[i].column->name,
                        column_value(*written[i].column, row, static_cast<int>(1 + i), resolver));
            patched.push_back(written[i].column->name);
        }
        rules::WriteCheck check;
        check.op = exists ? rules::WriteOp::kUpdate : rules::WriteOp::kInsert;
        check.old_row = exists ? &old_row : nullptr;
        check.new_row = &new_row;
        // A PATCH writes its keys; a PUT over an existing row writes the columns it changes.
        if (op.kind == wire::CrudKind::kPatch) {
            check.written_columns = patched;
        }
        if (auto decision = m_ctx.rules.check(table, check, m_ctx.request); !decision.allowed) {
            return OpOutcome{rejected(ErrorCode::kUploadDenied, decision.reason)};
        }
        if (exists) {
            if (written.empty()) {
                return OpOutcome{};
            }
            std::string update = "UPDATE " + info->quoted + " SET ";
            for (std::size_t i = 0; i < written.size(); ++i) {
                update += fmt::format("{}{} = ${}::{}", i == 0 ? "" : ", ", written[i].column->quoted, i + 2,
                                      written[i].column->type_sql);
            }
            update += " WHERE " + id.quoted + " = " + id_param;
            if (m_defer_write) {
                return defer(update + " RETURNING 1", params, true);
            }
            const auto done = write(update, params);
            if (!done.ok()) {
                return statement_error(done);
            }
            if (done.affected_rows() == 0) {
                return OpOutcome{rejected(ErrorCode::kUploadRowNotFound,
                                          fmt::format("{} row '{}' is not visible to the upload role",
                                                      table.to_string(), op.id))};
            }
            return OpOutcome{};
        }
        std::string insert = "INSERT INTO " + info->quoted + " (" + id.quoted;
        std::string values = id_param;
        for (std::size_t i = 0; i < written.size(); ++i) {
            insert += ", " + written[i].column->quoted;
            values += fmt::format(", ${}::{}", i + 2, written[i].column->type_sql);
        }
        insert += ") VALUES (" + values + ") ON CONFLICT (" + id.quoted + ") DO NOTHING RETURNING 1";
        if (m_defer_write) {
            return defer(insert, params, true);
        }
        const auto done = write(insert, params);
        if (!done.ok()) {
            return statement_error(done);
        }
        if (done.rows() == 0) {
            return std::nullopt;
        }
        return OpOutcome{};
    }

    Reply write(const std::string& sql, const Params& params) {
        m_source.add(sql, params);
        return std::move(m_source.run().front());
    }

    // Queues the write. What run_once would look at after it, it cannot see before COMMIT, so the
    // statement fails instead, failing the flight: a write `returning_row` (its SQL ends in
    // RETURNING 1) that writes no row divides by zero.
    OpOutcome defer(const std::string& sql, const Params& params, bool returning_row) {
        m_source.add(returning_row ? "WITH written AS (" + sql + ") SELECT 1 / count(*) FROM written" : sql, params);
        OpOutcome outcome;
        outcome.write_deferred = true;
        return outcome;
    }

    PipelinedConnection& m_source;
    const BatchContext& m_ctx;
    bool m_refreshed = false;    // the catalog was read again for this op
    bool m_defer_write = false;  // see run()
};

// Column `column` of a statement's one row, as a number.
std::int64_t number_in(const Reply& r, int column) {
    if (!r.ok()) {
        r.throw_error();
    }
    if (r.rows() != 1) {
        throw pqxx::internal_error(fmt::format("a statement answered {} rows where one was expected", r.rows()));
    }
    return std::stoll(std::string(r.value(0, column)));
}

std::string result_json(const wire::UploadResult& result) {
    std::string json;
    encode_upload_result(json, result);
    return json;
}

void call_hook(const BatchContext& ctx, HookPoint point, const PipelinedConnection& c) {
    if (ctx.hook) {
        ctx.hook(point, c.backend_pid());
    }
}

// The first failed reply, thrown (for statements Sluice queued itself, whose failure is no
// rejection of the client's op).
void require_ok(const std::vector<Reply>& replies) {
    for (const auto& r : replies) {
        if (!r.ok()) {
            r.throw_error();
        }
    }
}

// The answer recorded by an earlier (committed) request of this batch.
protocol::Result<Attempt> answer_from_record(const Reply& record, const BatchContext& ctx,
                                             std::int64_t write_checkpoint) {
    if (!record.ok() || record.rows() == 0) {
        throw pqxx::serialization_failure("the batch's record vanished between its check and its read");
    }
    if (record.value(0, 0) != ctx.user_id) {
        return Status{
            ErrorCode::kUploadBatchIdTaken,
            fmt::format("batch '{}' of client '{}' was uploaded by another user", ctx.batch.batch_id, ctx.client_id)};
    }
    auto decoded = wire::decode_upload_result(record.value(0, 1));
    if (!decoded) {
        return Status{ErrorCode::kInternal,
                      "the record of batch '" + ctx.batch.batch_id + "' cannot be read: " + decoded.status().message()};
    }
    return Attempt{std::move(decoded).value(), true, write_checkpoint};
}

// Ends any transaction, then answers from the committed record, with a new write checkpoint (the
// record's transaction committed before it is issued).
protocol::Result<Attempt> replay(PipelinedConnection& source, const BatchContext& ctx) {
    source.add("ROLLBACK");
    const auto record_at = source.add(kRecord, {ctx.client_id, ctx.batch.batch_id});
    const auto checkpoint_at = source.add(own_checkpoint_sql(false), {ctx.user_id, ctx.client_id});
    const auto replies = source.run();
    return answer_from_record(replies[record_at], ctx, number_in(replies[checkpoint_at], 0));
}

// Nothing of the batch is applied (its transaction is rolled back here): record that, in a new one.
protocol::Result<Attempt> record_rejection(PipelinedConnection& source, const BatchContext& ctx,
                                           wire::UploadResult result) {
    call_hook(ctx, HookPoint::kBeforeCommit, source);
    source.add("ROLLBACK");
    source.add(kBegin);
    const auto record_at =
        source.add(kInsertRecordIfNew, {ctx.client_id, ctx.batch.batch_id, ctx.user_id, result_json(result)});
    source.add("COMMIT");
    const auto replies = source.run();
    require_ok(replies);
    if (replies[record_at].rows() == 0) {
        return replay(source, ctx);  // another request recorded the batch first
    }
    call_hook(ctx, HookPoint::kAfterCommit, source);
    return Attempt{std::move(result), false, number_in(replies[record_at], 0)};
}

}  // namespace

const char* source_schema_sql() {
    return "CREATE SCHEMA IF NOT EXISTS sluice; "
           "CREATE TABLE IF NOT EXISTS sluice.uploads ("
           "    client_id text COLLATE \"C\" NOT NULL, batch_id text COLLATE \"C\" NOT NULL, user_id text NOT NULL, "
           "    result jsonb NOT NULL, "
           "    applied_at timestamptz NOT NULL DEFAULT now(), write_checkpoint bigint, "
           "    PRIMARY KEY (client_id, batch_id)); "
           "CREATE INDEX IF NOT EXISTS uploads_applied_at ON sluice.uploads (applied_at); "
           // A table made by an older Sluice (or by migrations before 0008) lacks the column; only
           // then is it altered, so an up-to-date table needs no ownership.
           "DO $$ BEGIN "
           "  IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'sluice.uploads'::regclass "
           "                 AND attname = 'write_checkpoint' AND NOT attisdropped) THEN "
           "    ALTER TABLE sluice.uploads ADD COLUMN write_checkpoint bigint; "
           "  END IF; "
           "END $$";
}

IssuedCheckpoint issue_write_checkpoint(PipelinedConnection& source, const std::string& user_id,
                                        const std::string& client_id, std::optional<std::int64_t> number) {
    Params params{user_id, client_id};
    if (number) {
        params.emplace_back(std::to_string(*number));
    }
    source.add(own_checkpoint_sql(number.has_value()), params);
    const auto reply = source.run();
    return {number_in(reply.front(), 0), protocol::Lsn(static_cast<std::uint64_t>(number_in(reply.front(), 1)))};
}

namespace {

// One attempt. With `merge_last_write`, the last op's write goes in the last round trip, with the
// record and COMMIT (a single-op batch then takes two round trips, not three): when anything in
// that flight fails, the transaction is rolled back and nullopt answered, and the caller runs the
// batch again without merging, step by step, which looks at each reply before COMMIT.
std::optional<protocol::Result<Attempt>> run_attempt(PipelinedConnection& source, const BatchContext& ctx,
                                                     bool merge_last_write) {
    const bool all_or_nothing = ctx.policy == config::BatchPolicy::kAllOrNothing;
    const auto& ops = ctx.batch.ops;
    // First round trip: BEGIN, the role, the record of an earlier request, and the first op's row.
    source.add(kBegin);
    const auto record_at = source.add(kRecord, {ctx.client_id, ctx.batch.batch_id});
    if (!ctx.role.empty()) {
        // As PostgREST: the role for row-level security, and the claims its policies read.
        source.add(kSetRole, {ctx.role, ctx.claims_json});
    }
    wire::UploadResult result;
    result.ops.reserve(ops.size());
    OpRunner runner(source, ctx);
    std::vector<Reply> queued;  // the replies to what went with an op's first round trip
    bool deferred = false;      // the last op's write is queued
    for (std::size_t i = 0; i < ops.size(); ++i) {
        if (!all_or_nothing) {
            if (i > 0) {
                source.add("RELEASE SAVEPOINT sluice_op");
            }
            source.add(kSavepoint);
        }
        queued.clear();
        auto op = runner.run(ops[i], queued, merge_last_write && i + 1 == ops.size());
        require_ok(queued);
        if (i == 0 && queued[record_at].rows() > 0) {
            return replay(source, ctx);  // answered before: nothing of this attempt is kept
        }
        if (op.result.status == OpStatus::kRejected && all_or_nothing) {
            const auto reason = fmt::format("op {} of the batch was rejected", i);
            wire::UploadResult none;
            none.outcome = wire::BatchOutcome::kRejected;
            for (std::size_t k = 0; k < ops.size(); ++k) {
                none.ops.push_back(k == i ? op.result : OpResult{OpStatus::kSkipped, ErrorCode::kUploadSkipped, reason});
            }
            return record_rejection(source, ctx, std::move(none));
        }
        if (op.statement_failed) {
            source.add("ROLLBACK TO SAVEPOINT sluice_op");
        }
        deferred = op.write_deferred;
        result.ops.push_back(std::move(op.result));
    }
    if (ops.empty()) {
        auto replies = source.run();
        require_ok(replies);
        if (replies[record_at].rows() > 0) {
            return replay(source, ctx);
        }
    }
    std::size_t applied = 0;
    for (const auto& op : result.ops) {
        applied += op.status == OpStatus::kApplied ? 1 : 0;
    }
    result.outcome = applied == result.ops.size() ? wire::BatchOutcome::kApplied
                     : applied == 0               ? wire::BatchOutcome::kRejected
                                                  : wire::BatchOutcome::kPartial;
    // Last round trip: (when merging, the last op's write,) the record with the write checkpoint (a
    // concurrent request with the same key fails here, on the key), and COMMIT.
    if (!ctx.role.empty()) {
        source.add("RESET ROLE");  // the record is Sluice's, not the user's
    }
    call_hook(ctx, HookPoint::kBeforeCommit, source);
    const auto insert_at =
        source.add(kInsertRecord, {ctx.client_id, ctx.batch.batch_id, ctx.user_id, result_json(result)});
    const auto commit_at = source.add("COMMIT");
    const auto replies = source.run();
    if (deferred && !std::all_of(replies.begin(), replies.end(), [](const Reply& r) { return r.ok(); })) {
        source.add("ROLLBACK");  // (after a failed COMMIT there is no transaction: a warning)
        require_ok(source.run());
        return std::nullopt;
    }
    for (std::size_t i = 0; i < insert_at; ++i) {
        if (!replies[i].ok()) {
            replies[i].throw_error();
        }
    }
    if (const auto& insert = replies[insert_at]; !insert.ok()) {
        if (insert.sqlstate() == "23505") {
            return replay(source, ctx);  // a concurrent request of this batch committed first
        }
        insert.throw_error();
    }
    if (const auto& commit = replies[commit_at]; !commit.ok()) {
        // A deferred constraint or trigger refused the batch at COMMIT: nothing of it is applied.
        const auto error = classify_sqlstate(commit.sqlstate(), commit.message());
        if (error.action != DbAction::kReject) {
            commit.throw_error();
        }
        wire::UploadResult none;
        none.outcome = wire::BatchOutcome::kRejected;
        none.ops.assign(ops.size(), rejected(error.code, "at commit: " + error.message));
        return record_rejection(source, ctx, std::move(none));
    }
    const auto write_checkpoint = number_in(replies[insert_at], 0);
    call_hook(ctx, HookPoint::kAfterCommit, source);
    return Attempt{std::move(result), false, write_checkpoint};
}

}  // namespace

protocol::Result<Attempt> run_batch(PipelinedConnection& source, const BatchContext& ctx) {
    if (ctx.user_id.find('\0') != std::string::npos) {
        return Status{ErrorCode::kAuthInvalid, "the token's sub claim contains a NUL character"};
    }
    if (auto merged = run_attempt(source, ctx, true)) {
        return std::move(*merged);
    }
    return std::move(*run_attempt(source, ctx, false));  // without merging, every attempt answers
}

}  // namespace sluice::upload::detail
