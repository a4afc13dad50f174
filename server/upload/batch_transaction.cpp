// One attempt at one upload batch in one source transaction (see detail/batch_transaction.h and
// uploader.h). Identifiers in SQL come only from the catalog (TableCatalog), quoted; every client
// value is a parameter, cast to its column's type.
#include "server/upload/detail/batch_transaction.h"

#include <fmt/format.h>
#include <pqxx/pqxx>

#include "protocol/pgoutput/text_value.h"
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

// The record of a batch: claimed first (a concurrent duplicate waits on the key, then sees the
// committed record), its result written before COMMIT. The placeholder never commits. The claim
// goes with BEGIN, and the result with COMMIT, in one round trip each: their values are quoted by
// libpq as literals (client and batch ids are checked to hold no NUL). The result is the only
// column the UPDATE changes, and it is not indexed: a HOT update.
constexpr const char* kBeginClaim =
    "BEGIN ISOLATION LEVEL READ COMMITTED; "
    "INSERT INTO sluice.uploads (client_id, batch_id, user_id, result) VALUES ({}, {}, {}, "
    "'{{\"status\":\"pending\"}}') "
    "ON CONFLICT (client_id, batch_id) DO NOTHING RETURNING 1";
constexpr const char* kFinishCommit =
    "UPDATE sluice.uploads SET result = {}::jsonb WHERE client_id = {} AND batch_id = {}; "
    "COMMIT; SELECT pg_current_wal_insert_lsn()::text";
constexpr const char* kClaimFinal =
    "INSERT INTO sluice.uploads (client_id, batch_id, user_id, result) VALUES ($1, $2, $3, $4::jsonb) "
    "ON CONFLICT (client_id, batch_id) DO NOTHING RETURNING 1";
constexpr const char* kRecord =
    "SELECT user_id, result::text FROM sluice.uploads WHERE client_id = $1 AND batch_id = $2";
// One round trip: the commit and the WAL position after it (>= the commit record's end).
constexpr const char* kCommit = "COMMIT; SELECT pg_current_wal_insert_lsn()::text";
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
rules::Value column_value(const ColumnInfo& column, const pqxx::field& field, const pg::TypeResolver& resolver) {
    if (field.is_null()) {
        return rules::Value::null();
    }
    const std::string_view text(field.c_str(), field.size());
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

using Params = std::vector<std::optional<std::string>>;

class OpApplier {
public:
    OpApplier(pqxx::nontransaction& tx, StatementCache& statements, const BatchContext& ctx)
        : m_tx(tx), m_statements(statements), m_ctx(ctx) {}

    OpResult apply(const wire::CrudOp& op) {
        m_refreshed = false;
        return apply_checked(op);
    }

private:
    OpResult apply_checked(const wire::CrudOp& op) {
        const auto table = resolve_table(m_ctx.rules, op.table);
        if (!table) {
            return rejected(ErrorCode::kUploadTableNotAllowed,
                            fmt::format("table '{}' has no write_rules entry", op.table));
        }
        auto info = m_ctx.catalog.get(m_tx, *table);
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
        std::vector<Written> written;
        if (op.kind != wire::CrudKind::kDelete) {
            for (const auto& [name, value] : op.data) {
                if (name == "id") {
                    if ((value.kind != wire::CrudValue::Kind::kString &&
                         value.kind != wire::CrudValue::Kind::kNumber) ||
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
                    info = m_ctx.catalog.get(m_tx, *table);
                    if (!info) {
                        return rejected(
                            ErrorCode::kUploadTableNotAllowed,
                            fmt::format("table {} does not exist in the source database", table->to_string()));
                    }
                    return apply_checked(op);
                }
                if (column == nullptr || column->generated) {
                    return rejected(ErrorCode::kUploadUnknownColumn,
                                    fmt::format("table {} has no writable column '{}'", table->to_string(), name));
                }
                if (value.text.find('\0') != std::string::npos) {
                    return rejected(ErrorCode::kUploadInvalidData,
                                    fmt::format("the value of '{}' contains a NUL character", name));
                }
                written.push_back({column, &value});
            }
        }
        for (int race = 0;; ++race) {
            auto outcome = apply_once(op, *table, *info, written);
            if (outcome || race + 1 >= kInsertRaces) {
                return outcome.value_or(
                    rejected(ErrorCode::kUploadConstraint, "the row was inserted and removed concurrently; try again"));
            }
        }
    }

    // nullopt: an INSERT lost a race with a concurrent insert of the same id (check again).
    std::optional<OpResult> apply_once(const wire::CrudOp& op, const rules::TableName& table, const TableInfo& info,
                                       const std::vector<Written>& written) {
        const ColumnInfo& id = info.columns[*info.id_column];
        const std::string id_param = "$1::" + id.type_sql;
        Params params;
        params.emplace_back(op.id);
        // The new values cast to their columns' types (their text form is what replication would
        // show the rules), beside the old row, locked.
        std::string sql = "SELECT " + id_param;
        for (const auto& w : written) {
            params.push_back(w.value->kind == wire::CrudValue::Kind::kNull ? std::nullopt
                                                                           : std::optional<std::string>(w.value->text));
            sql += fmt::format(", ${}::{}", params.size(), w.column->type_sql);
        }
        sql += ", o.* FROM (SELECT 1) AS one LEFT JOIN (SELECT true";
        for (const auto& c : info.columns) {
            sql += ", " + c.quoted;
        }
        sql += " FROM " + info.quoted + " WHERE " + id.quoted + " = " + id_param + " FOR UPDATE) AS o ON true";
        const auto rows = run(sql, params);
        const auto& row = rows[0];
        const auto resolver = info.resolver();
        const std::size_t old_at = 1 + written.size();
        const bool exists = !row[static_cast<int>(old_at)].is_null();

        rules::Row old_row;
        if (exists) {
            for (std::size_t i = 0; i < info.columns.size(); ++i) {
                old_row.set(info.columns[i].name,
                            column_value(info.columns[i], row[static_cast<int>(old_at + 1 + i)], resolver));
            }
        }
        if (op.kind == wire::CrudKind::kDelete) {
            if (!exists) {
                return OpResult{};  // already gone: the delete holds
            }
            rules::WriteCheck check;
            check.op = rules::WriteOp::kDelete;
            check.old_row = &old_row;
            if (auto decision = m_ctx.rules.check(table, check, m_ctx.request); !decision.allowed) {
                return rejected(ErrorCode::kUploadDenied, decision.reason);
            }
            (void)run("DELETE FROM " + info.quoted + " WHERE " + id.quoted + " = " + id_param, {op.id});
            return OpResult{};
        }
        if (op.kind == wire::CrudKind::kPatch && !exists) {
            return rejected(ErrorCode::kUploadRowNotFound,
                            fmt::format("{} has no row with id '{}' to patch", table.to_string(), op.id));
        }
        rules::Row new_row = exists ? old_row : rules::Row{};
        new_row.set(id.name, column_value(id, row[0], resolver));
        std::vector<std::string> patched;
        for (std::size_t i = 0; i < written.size(); ++i) {
            new_row.set(written[i].column->name,
                        column_value(*written[i].column, row[static_cast<int>(1 + i)], resolver));
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
            return rejected(ErrorCode::kUploadDenied, decision.reason);
        }
        if (exists) {
            if (written.empty()) {
                return OpResult{};
            }
            std::string update = "UPDATE " + info.quoted + " SET ";
            for (std::size_t i = 0; i < written.size(); ++i) {
                update += fmt::format("{}{} = ${}::{}", i == 0 ? "" : ", ", written[i].column->quoted, i + 2,
                                      written[i].column->type_sql);
            }
            update += " WHERE " + id.quoted + " = " + id_param;
            const auto done = run(update, params);
            if (done.affected_rows() == 0) {
                return rejected(ErrorCode::kUploadRowNotFound,
                                fmt::format("{} row '{}' is not visible to the upload role", table.to_string(), op.id));
            }
            return OpResult{};
        }
        std::string insert = "INSERT INTO " + info.quoted + " (" + id.quoted;
        std::string values = id_param;
        for (std::size_t i = 0; i < written.size(); ++i) {
            insert += ", " + written[i].column->quoted;
            values += fmt::format(", ${}::{}", i + 2, written[i].column->type_sql);
        }
        insert += ") VALUES (" + values + ") ON CONFLICT (" + id.quoted + ") DO NOTHING RETURNING 1";
        if (run(insert, params).empty()) {
            return std::nullopt;
        }
        return OpResult{};
    }

    // Runs `sql` with `params`, prepared when the cache allows.
    pqxx::result run(const std::string& sql, const Params& params) {
        const auto name = m_statements.name_for(m_tx.conn(), sql);
        if (name.empty()) {
            return m_tx.exec_params(sql, pqxx::prepare::make_dynamic_params(params));
        }
        return m_tx.exec_prepared(name, pqxx::prepare::make_dynamic_params(params));
    }

    pqxx::nontransaction& m_tx;
    StatementCache& m_statements;
    const BatchContext& m_ctx;
    bool m_refreshed = false;  // the catalog was read again for this op
};

protocol::Lsn parse_lsn(const pqxx::result& r) {
    return protocol::Lsn::parse(r[0][0].as<std::string>()).value_or(protocol::Lsn{});
}

std::string result_json(const wire::UploadResult& result) {
    std::string json;
    encode_upload_result(json, result);
    return json;
}

void call_hook(const BatchContext& ctx, HookPoint point, const pqxx::connection_base& c) {
    if (ctx.hook) {
        ctx.hook(point, c.backendpid());
    }
}

// The batch was claimed by an earlier (committed) request: answer from its record.
protocol::Result<Attempt> replay(pqxx::nontransaction& tx, const BatchContext& ctx) {
    const auto record = tx.exec_params(kRecord, ctx.client_id, ctx.batch.batch_id);
    const auto lsn = parse_lsn(tx.exec("ROLLBACK; SELECT pg_current_wal_insert_lsn()::text"));
    if (record.empty()) {
        throw pqxx::serialization_failure("the batch's record vanished between its claim and its read");
    }
    if (record[0][0].as<std::string>() != ctx.user_id) {
        return Status{
            ErrorCode::kUploadBatchIdTaken,
            fmt::format("batch '{}' of client '{}' was uploaded by another user", ctx.batch.batch_id, ctx.client_id)};
    }
    auto decoded = wire::decode_upload_result(record[0][1].as<std::string>());
    if (!decoded) {
        return Status{ErrorCode::kInternal,
                      "the record of batch '" + ctx.batch.batch_id + "' cannot be read: " + decoded.status().message()};
    }
    return Attempt{std::move(decoded).value(), true, lsn};
}

// Nothing of the batch is applied (its transaction was rolled back): record that, in a new one.
protocol::Result<Attempt> record_rejection(pqxx::nontransaction& tx, const BatchContext& ctx,
                                           wire::UploadResult result) {
    tx.exec0("BEGIN ISOLATION LEVEL READ COMMITTED");
    if (tx.exec_params(kClaimFinal, ctx.client_id, ctx.batch.batch_id, ctx.user_id, result_json(result)).empty()) {
        return replay(tx, ctx);
    }
    call_hook(ctx, HookPoint::kBeforeCommit, tx.conn());
    const auto lsn = parse_lsn(tx.exec(kCommit));
    call_hook(ctx, HookPoint::kAfterCommit, tx.conn());
    return Attempt{std::move(result), false, lsn};
}

}  // namespace

const char* source_schema_sql() {
    return "CREATE SCHEMA IF NOT EXISTS sluice; "
           "CREATE TABLE IF NOT EXISTS sluice.uploads ("
           "    client_id text COLLATE \"C\" NOT NULL, batch_id text COLLATE \"C\" NOT NULL, user_id text NOT NULL, "
           "    result jsonb NOT NULL, "
           "    applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (client_id, batch_id)); "
           "CREATE INDEX IF NOT EXISTS uploads_applied_at ON sluice.uploads (applied_at)";
}

std::string StatementCache::name_for(pqxx::connection_base& source, const std::string& sql) {
    if (auto it = m_names.find(sql); it != m_names.end()) {
        return it->second;
    }
    if (m_names.size() >= kCap) {
        return {};
    }
    std::string name = "sluice_upload_" + std::to_string(m_names.size());
    source.prepare(name, sql);
    m_names.emplace(sql, name);
    return name;
}

protocol::Result<Attempt> run_batch(pqxx::connection_base& source, StatementCache& statements,
                                    const BatchContext& ctx) {
    if (ctx.user_id.find('\0') != std::string::npos) {
        return Status{ErrorCode::kAuthInvalid, "the token's sub claim contains a NUL character"};
    }
    pqxx::nontransaction tx(source);
    const auto client = tx.quote(ctx.client_id);
    const auto batch_id = tx.quote(ctx.batch.batch_id);
    if (tx.exec(fmt::format(kBeginClaim, client, batch_id, tx.quote(ctx.user_id))).empty()) {
        return replay(tx, ctx);
    }
    if (!ctx.role.empty()) {
        // As PostgREST: the role for row-level security, and the claims its policies read.
        tx.exec_params("SELECT set_config('role', $1, true), set_config('request.jwt.claims', $2, true)", ctx.role,
                       ctx.claims_json);
    }
    const bool all_or_nothing = ctx.policy == config::BatchPolicy::kAllOrNothing;
    const auto& ops = ctx.batch.ops;
    wire::UploadResult result;
    result.ops.reserve(ops.size());
    OpApplier applier(tx, statements, ctx);
    for (std::size_t i = 0; i < ops.size(); ++i) {
        if (!all_or_nothing) {
            tx.exec0(i == 0 ? "SAVEPOINT sluice_op" : "RELEASE SAVEPOINT sluice_op; SAVEPOINT sluice_op");
        }
        OpResult op;
        try {
            op = applier.apply(ops[i]);
        } catch (const std::exception& e) {
            const auto error = classify(e);
            if (error.action != DbAction::kReject) {
                throw;
            }
            op = rejected(error.code, error.message);
            if (!all_or_nothing) {
                tx.exec0("ROLLBACK TO SAVEPOINT sluice_op");
            }
        }
        if (op.status == OpStatus::kRejected && all_or_nothing) {
            tx.exec0("ROLLBACK");
            const auto reason = fmt::format("op {} of the batch was rejected", i);
            wire::UploadResult none;
            none.outcome = wire::BatchOutcome::kRejected;
            for (std::size_t k = 0; k < ops.size(); ++k) {
                none.ops.push_back(k == i ? op : OpResult{OpStatus::kSkipped, ErrorCode::kUploadSkipped, reason});
            }
            return record_rejection(tx, ctx, std::move(none));
        }
        result.ops.push_back(std::move(op));
    }
    std::size_t applied = 0;
    for (const auto& op : result.ops) {
        applied += op.status == OpStatus::kApplied ? 1 : 0;
    }
    result.outcome = applied == result.ops.size() ? wire::BatchOutcome::kApplied
                     : applied == 0               ? wire::BatchOutcome::kRejected
                                                  : wire::BatchOutcome::kPartial;
    if (!ctx.role.empty()) {
        tx.exec0("RESET ROLE");  // the record is Sluice's, not the user's
    }
    call_hook(ctx, HookPoint::kBeforeCommit, source);
    protocol::Lsn lsn;
    try {
        lsn = parse_lsn(tx.exec(fmt::format(kFinishCommit, tx.quote(result_json(result)), client, batch_id)));
    } catch (const pqxx::sql_error& e) {
        // A deferred constraint or trigger refused the batch at COMMIT: nothing of it is applied.
        const auto error = classify(e);
        if (error.action != DbAction::kReject) {
            throw;
        }
        wire::UploadResult none;
        none.outcome = wire::BatchOutcome::kRejected;
        none.ops.assign(ops.size(), rejected(error.code, "at commit: " + error.message));
        return record_rejection(tx, ctx, std::move(none));
    }
    call_hook(ctx, HookPoint::kAfterCommit, source);
    return Attempt{std::move(result), false, lsn};
}

}  // namespace sluice::upload::detail
