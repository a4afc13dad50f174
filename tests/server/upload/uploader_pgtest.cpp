// The Uploader against a real Postgres: exactly once under retries and connection cuts around the
// commit, every kind of rejection, both batch policies, row-level security, injection attempts,
// concurrent writers, and write checkpoints issued in the source transactions (read back through a
// test_decoding slot).
#include <atomic>
#include <map>
#include <regex>
#include <thread>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <pqxx/pqxx>

#include "migrations/migrations.h"
#include "protocol/wire/upload.h"
#include "server/storage/migrator.h"
#include "server/upload/uploader.h"
#include "tests/support/pg.h"

namespace {

namespace wire = sluice::protocol::wire;
using sluice::protocol::ErrorCode;
using sluice::upload::HookPoint;
using sluice::upload::Uploader;
using sluice::upload::UploaderOptions;
using wire::OpStatus;

constexpr const char* kSchema = R"SQL(
CREATE TABLE lists (id text PRIMARY KEY, owner_id text NOT NULL, name text NOT NULL CHECK (length(name) < 40));
CREATE TABLE todos (id text PRIMARY KEY, list_id text NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
                    description text NOT NULL, completed boolean NOT NULL DEFAULT false, created_by text,
                    assigned_to text, points integer);
CREATE TABLE items (name text PRIMARY KEY);
-- Every write to lists and todos, to prove nothing is applied twice.
CREATE TABLE audit (n bigserial PRIMARY KEY, tbl text, op text, id text);
CREATE FUNCTION audit_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO audit (tbl, op, id) VALUES (TG_TABLE_NAME, TG_OP, COALESCE(NEW.id, OLD.id));
  RETURN NULL;
END $$;
CREATE TRIGGER lists_audit AFTER INSERT OR UPDATE OR DELETE ON lists FOR EACH ROW EXECUTE FUNCTION audit_write();
CREATE TRIGGER todos_audit AFTER INSERT OR UPDATE OR DELETE ON todos FOR EACH ROW EXECUTE FUNCTION audit_write();
INSERT INTO lists VALUES ('l1', 'u1', 'Groceries'), ('l2', 'u2', 'Work');
INSERT INTO todos (id, list_id, description, created_by) VALUES ('t1', 'l1', 'Milk', 'u1'), ('t2', 'l2', 'Report', 'u2');
DELETE FROM audit;
)SQL";

constexpr const char* kRules = R"YAML(
bucket_definitions:
  global:
    data:
      - SELECT * FROM lists
write_rules:
  lists:
    columns: [id, name, owner_id]
    insert: new.owner_id = request.user_id()
    update:
      condition: old.owner_id = request.user_id() AND new.owner_id = old.owner_id
      columns: [name]
    delete: old.owner_id = request.user_id()
  todos:
    insert: new.created_by = request.user_id()
    update:
      condition: old.created_by = request.user_id() OR old.assigned_to = request.user_id()
      columns: [description, completed, assigned_to, points]
    delete: old.created_by = request.user_id()
  items:
    insert: true
  ghosts:
    insert: true
)YAML";

sluice::auth::VerifiedToken user(const std::string& id) {
    return {id, R"({"sub":")" + id + R"(","aud":"test"})", 4102444800};
}

struct Fixture {
    std::string source;
    std::string storage;
    std::shared_ptr<const sluice::config::rules::RuleSet> rules;

    explicit Fixture(const std::string& name) {
        source = sluice::test::fresh_database(name + "_src");
        storage = sluice::test::fresh_database(name + "_sto");
        sluice::test::exec_sql(source, kSchema);
        pqxx::connection c(storage);
        REQUIRE(sluice::storage::migrate(c, sluice::migrations::embedded()).is_ok());
        auto compiled = sluice::config::rules::RuleSet::compile(kRules, "rules.yaml");
        REQUIRE(compiled.rules);
        rules = compiled.rules;
    }

    [[nodiscard]] UploaderOptions options(sluice::config::BatchPolicy policy = sluice::config::BatchPolicy::kAllOrNothing) const {
        UploaderOptions o;
        o.source_conninfo = source;
        o.storage_conninfo = storage;
        o.policy = policy;
        o.retry_backoff = std::chrono::milliseconds(1);
        return o;
    }

    [[nodiscard]] std::string query(const std::string& sql, const std::string& db = {}) const {
        pqxx::connection c(db.empty() ? source : db);
        pqxx::nontransaction tx(c);
        auto r = tx.exec(sql);
        return r.empty() || r[0][0].is_null() ? std::string("<null>") : r[0][0].as<std::string>();
    }
    [[nodiscard]] int audit_count() const { return std::stoi(query("SELECT count(*) FROM audit")); }
};

// A test_decoding slot on the source: what replication will see, as text lines. Dropped at the end.
class DecodingSlot {
public:
    DecodingSlot(std::string db, std::string name) : m_db(std::move(db)), m_name(std::move(name)) {
        pqxx::connection c(m_db);
        pqxx::nontransaction(c).exec_params("SELECT pg_create_logical_replication_slot($1, 'test_decoding')", m_name);
    }
    ~DecodingSlot() {
        try {
            pqxx::connection c(m_db);
            pqxx::nontransaction(c).exec_params("SELECT pg_drop_replication_slot($1)", m_name);
        } catch (const std::exception&) {
        }
    }
    DecodingSlot(const DecodingSlot&) = delete;
    DecodingSlot& operator=(const DecodingSlot&) = delete;

    // The lines since the last call, in commit order.
    std::vector<std::string> changes() {
        pqxx::connection c(m_db);
        {
            // Decoding stops at the WAL flushed so far; the test cluster commits without flushing.
            // A commit that wrote WAL, with synchronous_commit on, flushes everything before it.
            pqxx::work flush(c);
            flush.exec0("SET LOCAL synchronous_commit = on");
            flush.exec("SELECT pg_logical_emit_message(true, 'test_flush', '')");
            flush.commit();
        }
        std::vector<std::string> lines;
        for (const auto& row : pqxx::nontransaction(c).exec_params(
                 "SELECT data FROM pg_logical_slot_get_changes($1, NULL, NULL, 'include-xids', '0')", m_name)) {
            lines.push_back(row[0].as<std::string>());
        }
        return lines;
    }

private:
    std::string m_db;
    std::string m_name;
};

// The write checkpoints in decoded lines: (user, client, number), in commit order, each with whether
// its transaction also wrote to `table`.
struct DecodedCheckpoint {
    std::string user, client;
    std::int64_t number;
    bool with_write;
};
std::vector<DecodedCheckpoint> decoded_checkpoints(const std::vector<std::string>& lines, const std::string& table) {
    static const std::regex kMessage(
        R"re(^message: transactional: 1 prefix: sluice_write_checkpoint, sz: \d+ content:\["(.*)", "(.*)", (\d+)\]$)re");
    std::vector<DecodedCheckpoint> found;
    bool wrote = false;
    std::vector<DecodedCheckpoint> in_transaction;
    for (const auto& line : lines) {
        std::smatch m;
        if (line.rfind("BEGIN", 0) == 0) {
            wrote = false;
            in_transaction.clear();
        } else if (line.rfind("table public." + table + ":", 0) == 0) {
            wrote = true;
        } else if (std::regex_match(line, m, kMessage)) {
            in_transaction.push_back({m[1].str(), m[2].str(), std::stoll(m[3].str()), false});
        } else if (line.rfind("COMMIT", 0) == 0) {
            for (auto& c : in_transaction) {
                c.with_write = wrote;
                found.push_back(c);
            }
        }
    }
    return found;
}

wire::UploadBatch parse(const std::string& json) {
    auto batch = wire::parse_upload_request(json, {});
    INFO(json << " -> " << batch.status().to_string());
    REQUIRE(batch);
    return std::move(batch).value();
}

wire::UploadBatch one_op(const std::string& batch_id, const std::string& op_json) {
    return parse(R"({"client_id":"c1","batch_id":")" + batch_id + R"(","ops":[)" + op_json + "]}");
}

sluice::upload::UploadAnswer must_upload(Uploader& uploader, const sluice::auth::VerifiedToken& who,
                                         const wire::UploadBatch& batch) {
    auto answer = uploader.upload(who, batch);
    INFO(answer.status().to_string());
    REQUIRE(answer);
    return std::move(answer).value();
}

// The rejection of a one-op batch: its code.
ErrorCode rejection(Uploader& uploader, const std::string& who, const std::string& batch_id, const std::string& op) {
    auto answer = must_upload(uploader, user(who), one_op(batch_id, op));
    REQUIRE(answer.result.ops.size() == 1);
    INFO(answer.result.ops[0].reason);
    CHECK(answer.result.outcome == wire::BatchOutcome::kRejected);
    CHECK(answer.result.ops[0].status == OpStatus::kRejected);
    return answer.result.ops[0].code;
}

}  // namespace

TEST_CASE("PUT, PATCH and DELETE are applied in one transaction and recorded, a retry is answered from the record") {
    Fixture f("up_basic");
    auto uploader = Uploader::create(f.options(), f.rules);
    const auto batch = parse(R"({"client_id":"c1","batch_id":"b1","ops":[
        {"op_id":1,"op":"PUT","type":"todos","id":"t3","data":{"list_id":"l1","description":"Eggs","created_by":"u1","points":3}},
        {"op_id":2,"op":"PATCH","type":"todos","id":"t1","data":{"completed":true,"description":"Oat milk"}},
        {"op_id":3,"op":"PUT","type":"lists","id":"l3","data":{"name":"Garage","owner_id":"u1"}},
        {"op_id":4,"op":"DELETE","type":"todos","id":"t3"},
        {"op_id":5,"op":"DELETE","type":"todos","id":"nope"}]})");
    const auto first = must_upload(*uploader, user("u1"), batch);
    CHECK(first.result.outcome == wire::BatchOutcome::kApplied);
    CHECK_FALSE(first.replayed);
    CHECK(first.write_checkpoint > 0);
    CHECK(f.query("SELECT description || '/' || completed FROM todos WHERE id = 't1'") == "Oat milk/true");
    CHECK(f.query("SELECT count(*) FROM todos WHERE id = 't3'") == "0");
    CHECK(f.query("SELECT name FROM lists WHERE id = 'l3'") == "Garage");
    CHECK(f.audit_count() == 4);  // insert t3, update t1, insert l3, delete t3
    CHECK(f.query("SELECT result->>'status' FROM sluice.uploads WHERE client_id = 'c1' AND batch_id = 'b1'") ==
          "applied");
    // The record keeps the write checkpoint its transaction issued.
    CHECK(f.query("SELECT write_checkpoint FROM sluice.uploads WHERE client_id = 'c1' AND batch_id = 'b1'") ==
          std::to_string(first.write_checkpoint));

    const auto again = must_upload(*uploader, user("u1"), batch);
    CHECK(again.replayed);
    CHECK(again.result == first.result);
    CHECK(again.write_checkpoint > first.write_checkpoint);
    CHECK(f.audit_count() == 4);

    // The same batch id from another user is refused without revealing the result.
    auto other = uploader->upload(user("u2"), batch);
    REQUIRE_FALSE(other);
    CHECK(other.status().code() == ErrorCode::kUploadBatchIdTaken);
    // Without client_id the user id is the client id: a separate key.
    auto own = must_upload(*uploader, user("u2"),
                           parse(R"({"batch_id":"b1","ops":[{"op":"PATCH","type":"todos","id":"t2","data":{"points":7}}]})"));
    CHECK(own.result.outcome == wire::BatchOutcome::kApplied);
    CHECK(f.query("SELECT count(*) FROM sluice.uploads WHERE client_id = 'u2' AND batch_id = 'b1'") == "1");
}

TEST_CASE("a connection cut right after COMMIT: the retry is answered from the record, applied once") {
    Fixture f("up_cut_after");
    std::atomic<int> cuts{0};
    const std::string source = f.source;
    auto uploader = Uploader::create(f.options(), f.rules, [&](HookPoint point, int pid) {
        if (point == HookPoint::kAfterCommit && cuts.fetch_add(1) == 0) {
            // The backend dies and the answer is lost between the commit and the client.
            sluice::test::exec_sql(source, "SELECT pg_terminate_backend(" + std::to_string(pid) + ")");
            throw pqxx::broken_connection("test: connection cut after commit");
        }
    });
    const auto batch = one_op("cut1", R"({"op":"PUT","type":"todos","id":"t9","data":{"list_id":"l1","description":"Tea","created_by":"u1"}})");
    const auto answer = must_upload(*uploader, user("u1"), batch);
    CHECK(answer.replayed);
    CHECK(answer.result.outcome == wire::BatchOutcome::kApplied);
    CHECK(f.audit_count() == 1);
    CHECK(uploader->stats().retries.load() == 1);
    // The pool recovers from the dead connection.
    const auto next = must_upload(*uploader, user("u1"), one_op("cut2", R"({"op":"PATCH","type":"todos","id":"t9","data":{"points":1}})"));
    CHECK(next.result.outcome == wire::BatchOutcome::kApplied);
    CHECK(f.audit_count() == 2);
}

TEST_CASE("a connection cut before COMMIT: nothing is half-applied, the retry applies the batch once") {
    Fixture f("up_cut_before");
    std::atomic<int> cuts{0};
    const std::string source = f.source;
    auto uploader = Uploader::create(f.options(), f.rules, [&](HookPoint point, int pid) {
        if (point == HookPoint::kBeforeCommit && cuts.fetch_add(1) == 0) {
            sluice::test::exec_sql(source, "SELECT pg_terminate_backend(" + std::to_string(pid) + ")");
        }
    });
    const auto batch = parse(R"({"client_id":"c1","batch_id":"b","ops":[
        {"op":"PUT","type":"todos","id":"t7","data":{"list_id":"l1","description":"A","created_by":"u1"}},
        {"op":"PUT","type":"todos","id":"t8","data":{"list_id":"l1","description":"B","created_by":"u1"}}]})");
    const auto answer = must_upload(*uploader, user("u1"), batch);
    CHECK_FALSE(answer.replayed);
    CHECK(answer.result.outcome == wire::BatchOutcome::kApplied);
    CHECK(f.audit_count() == 2);
    CHECK(uploader->stats().retries.load() >= 1);
}

TEST_CASE("the last write goes with COMMIT, and a write that writes no row runs again step by step") {
    // A single-op batch sends its write with the record and COMMIT. When the write writes no row,
    // that flight must fail, not commit: here a concurrent insert of the same id (the PUT's INSERT
    // finds it) and a trigger that skips the update.
    Fixture f("up_merged");
    sluice::test::exec_sql(f.source, R"SQL(
        CREATE FUNCTION skip_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.name = 'frozen' THEN RETURN NULL; END IF; RETURN NEW; END $$;
        CREATE TRIGGER lists_skip BEFORE UPDATE ON lists FOR EACH ROW EXECUTE FUNCTION skip_frozen();
    )SQL");
    std::atomic<int> inserts{0};
    const std::string source = f.source;
    auto uploader = Uploader::create(f.options(), f.rules, [&](HookPoint point, int) {
        if (point == HookPoint::kBeforeCommit && inserts.fetch_add(1) == 0) {
            sluice::test::exec_sql(source, "INSERT INTO todos (id, list_id, description, created_by) "
                                           "VALUES ('t9', 'l1', 'theirs', 'u1')");
        }
    });
    const auto put = must_upload(*uploader, user("u1"), one_op("p", R"({"op":"PUT","type":"todos","id":"t9",
        "data":{"list_id":"l1","description":"mine","created_by":"u1"}})"));
    CHECK(put.result.outcome == wire::BatchOutcome::kApplied);
    CHECK(f.query("SELECT description FROM todos WHERE id = 't9'") == "mine");  // as an update of theirs
    CHECK(inserts.load() == 2);  // the hook ran in the merged attempt and again step by step

    CHECK(rejection(*uploader, "u1", "f", R"({"op":"PATCH","type":"lists","id":"l1","data":{"name":"frozen"}})") ==
          ErrorCode::kUploadRowNotFound);
    CHECK(f.query("SELECT name FROM lists WHERE id = 'l1'") == "Groceries");
    CHECK(uploader->stats().retries.load() == 0);  // no attempt failed: each ran again within itself
}

TEST_CASE("every kind of rejection, with its code") {
    Fixture f("up_reject");
    auto uploader = Uploader::create(f.options(), f.rules);
    CHECK(rejection(*uploader, "u1", "r1", R"({"op":"PUT","type":"users","id":"x","data":{}})") ==
          ErrorCode::kUploadTableNotAllowed);
    CHECK(rejection(*uploader, "u1", "r2", R"({"op":"PUT","type":"ghosts","id":"x","data":{}})") ==
          ErrorCode::kUploadTableNotAllowed);  // in write_rules, not in the database
    CHECK(rejection(*uploader, "u1", "r3", R"({"op":"PUT","type":"items","id":"x","data":{"name":"a"}})") ==
          ErrorCode::kUploadTableNotAllowed);  // no id column
    CHECK(rejection(*uploader, "u1", "r4",
                    R"({"op":"PUT","type":"todos","id":"t5","data":{"list_id":"l1","description":"x","created_by":"u2"}})") ==
          ErrorCode::kUploadDenied);  // insert condition
    CHECK(rejection(*uploader, "u1", "r5", R"({"op":"PATCH","type":"todos","id":"t2","data":{"description":"mine"}})") ==
          ErrorCode::kUploadDenied);  // update condition: u2's todo
    CHECK(rejection(*uploader, "u1", "r6", R"({"op":"PATCH","type":"lists","id":"l1","data":{"owner_id":"u2"}})") ==
          ErrorCode::kUploadDenied);  // column not allowed
    CHECK(rejection(*uploader, "u1", "r7", R"({"op":"DELETE","type":"lists","id":"l2"})") == ErrorCode::kUploadDenied);
    CHECK(rejection(*uploader, "u1", "r8", R"({"op":"PATCH","type":"todos","id":"t1","data":{"colour":"red"}})") ==
          ErrorCode::kUploadUnknownColumn);
    CHECK(rejection(*uploader, "u1", "r9", R"({"op":"PATCH","type":"todos","id":"zz","data":{"points":1}})") ==
          ErrorCode::kUploadRowNotFound);
    CHECK(rejection(*uploader, "u1", "r10",
                    R"({"op":"PUT","type":"todos","id":"t5","data":{"list_id":"missing","description":"x","created_by":"u1"}})") ==
          ErrorCode::kUploadConstraint);  // foreign key
    CHECK(rejection(*uploader, "u1", "r11",
                    R"({"op":"PUT","type":"lists","id":"l9","data":{"name":"a name much longer than forty characters!!","owner_id":"u1"}})") ==
          ErrorCode::kUploadConstraint);  // check
    CHECK(rejection(*uploader, "u1", "r12", R"({"op":"PATCH","type":"todos","id":"t1","data":{"completed":"maybe"}})") ==
          ErrorCode::kUploadInvalidData);
    CHECK(rejection(*uploader, "u1", "r13", R"({"op":"PATCH","type":"todos","id":"t1","data":{"points":1e12}})") ==
          ErrorCode::kUploadInvalidData);
    CHECK(rejection(*uploader, "u1", "r14", R"({"op":"PATCH","type":"todos","id":"t1","data":{"description":null}})") ==
          ErrorCode::kUploadConstraint);  // not null
    CHECK(f.audit_count() == 0);

    // All or nothing: the valid first op is not applied either, and says why.
    const auto mixed = must_upload(*uploader, user("u1"), parse(R"({"client_id":"c1","batch_id":"m","ops":[
        {"op":"PATCH","type":"todos","id":"t1","data":{"points":5}},
        {"op":"PATCH","type":"todos","id":"t2","data":{"points":5}}]})"));
    CHECK(mixed.result.outcome == wire::BatchOutcome::kRejected);
    CHECK(mixed.result.ops[0].status == OpStatus::kSkipped);
    CHECK(mixed.result.ops[0].code == ErrorCode::kUploadSkipped);
    CHECK(mixed.result.ops[1].code == ErrorCode::kUploadDenied);
    CHECK(f.query("SELECT points FROM todos WHERE id = 't1'") == "<null>");
    CHECK(f.audit_count() == 0);
    // A rejected batch is final too: its retry gets the same answer.
    const auto retried = must_upload(*uploader, user("u1"), parse(R"({"client_id":"c1","batch_id":"m","ops":[]})"));
    CHECK(retried.replayed);
    CHECK(retried.result == mixed.result);
}

TEST_CASE("apply_valid applies the valid ops and reports the rejected ones, database errors included") {
    Fixture f("up_partial");
    auto uploader = Uploader::create(f.options(sluice::config::BatchPolicy::kApplyValid), f.rules);
    const auto answer = must_upload(*uploader, user("u1"), parse(R"({"client_id":"c1","batch_id":"p","ops":[
        {"op":"PATCH","type":"todos","id":"t1","data":{"points":5}},
        {"op":"PATCH","type":"todos","id":"t2","data":{"points":5}},
        {"op":"PUT","type":"todos","id":"t6","data":{"list_id":"missing","description":"x","created_by":"u1"}},
        {"op":"PATCH","type":"todos","id":"t1","data":{"completed":"maybe"}},
        {"op":"PUT","type":"todos","id":"t7","data":{"list_id":"l1","description":"ok","created_by":"u1"}}]})"));
    CHECK(answer.result.outcome == wire::BatchOutcome::kPartial);
    REQUIRE(answer.result.ops.size() == 5);
    CHECK(answer.result.ops[0].status == OpStatus::kApplied);
    CHECK(answer.result.ops[1].code == ErrorCode::kUploadDenied);
    CHECK(answer.result.ops[2].code == ErrorCode::kUploadConstraint);
    CHECK(answer.result.ops[3].code == ErrorCode::kUploadInvalidData);
    CHECK(answer.result.ops[4].status == OpStatus::kApplied);
    CHECK(f.query("SELECT points FROM todos WHERE id = 't1'") == "5");
    CHECK(f.query("SELECT description FROM todos WHERE id = 't7'") == "ok");
    CHECK(f.audit_count() == 2);
}

TEST_CASE("RLS mode: the role and the token's claims apply, so row-level security policies hold") {
    Fixture f("up_rls");
    sluice::test::exec_sql(f.source, R"SQL(
        DO $$ BEGIN CREATE ROLE sluice_test_app NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
        GRANT sluice_test_app TO CURRENT_USER;
        GRANT SELECT, INSERT, UPDATE, DELETE ON todos, lists TO sluice_test_app;
        GRANT INSERT ON audit TO sluice_test_app;
        GRANT USAGE ON SEQUENCE audit_n_seq TO sluice_test_app;
        ALTER TABLE todos ENABLE ROW LEVEL SECURITY;
        CREATE POLICY own_list ON todos USING (list_id IN (SELECT id FROM lists
            WHERE owner_id = current_setting('request.jwt.claims', true)::json->>'sub'))
            WITH CHECK (points IS NULL OR points < 100);
    )SQL");
    auto options = f.options(sluice::config::BatchPolicy::kApplyValid);
    options.apply_as_role = "sluice_test_app";
    auto uploader = Uploader::create(options, f.rules);
    REQUIRE(uploader->prepare().is_ok());
    const auto answer = must_upload(*uploader, user("u2"), parse(R"({"client_id":"c2","batch_id":"r","ops":[
        {"op":"PATCH","type":"todos","id":"t2","data":{"points":5}},
        {"op":"PATCH","type":"todos","id":"t1","data":{"points":5}},
        {"op":"PATCH","type":"todos","id":"t2","data":{"points":500}}]})"));
    REQUIRE(answer.result.ops.size() == 3);
    CHECK(answer.result.ops[0].status == OpStatus::kApplied);
    CHECK(answer.result.ops[1].code == ErrorCode::kUploadRowNotFound);  // u1's list: invisible to u2 under RLS
    CHECK(answer.result.ops[2].code == ErrorCode::kUploadPermission);   // WITH CHECK
    CHECK(f.query("SELECT points FROM todos WHERE id = 't2'") == "5");
    CHECK(f.query("SELECT points FROM todos WHERE id = 't1'") == "<null>");
    // The record is written as the source user, not the role.
    CHECK(f.query("SELECT user_id FROM sluice.uploads WHERE client_id = 'c2'") == "u2");

    auto bad = f.options();
    bad.apply_as_role = "no_such_role_x";
    auto refused = Uploader::create(bad, f.rules)->prepare();
    CHECK(refused.code() == ErrorCode::kConfigInvalidValue);
}

TEST_CASE("injection attempts through table names, column names, ids and values change nothing else") {
    Fixture f("up_inject");
    auto uploader = Uploader::create(f.options(sluice::config::BatchPolicy::kApplyValid), f.rules);
    const auto answer = must_upload(*uploader, user("u1"), parse(R"({"client_id":"c1","batch_id":"i","ops":[
        {"op":"PUT","type":"todos; DROP TABLE lists; --","id":"x","data":{}},
        {"op":"PUT","type":"public.todos\" (id) VALUES ('x'); DROP TABLE lists; --","id":"x","data":{}},
        {"op":"PATCH","type":"todos","id":"t1","data":{"description\" = 'pwned', \"created_by":"u9"}},
        {"op":"PATCH","type":"todos","id":"t1","data":{"description = 'pwned' --":"x"}},
        {"op":"PUT","type":"todos","id":"t1' OR '1'='1","data":{"list_id":"l1","description":"'); DROP TABLE lists; --","created_by":"u1"}},
        {"op":"PATCH","type":"todos","id":"' OR 1=1 --","data":{"description":"all"}}]})"));
    REQUIRE(answer.result.ops.size() == 6);
    CHECK(answer.result.ops[0].code == ErrorCode::kUploadTableNotAllowed);
    CHECK(answer.result.ops[1].code == ErrorCode::kUploadTableNotAllowed);
    CHECK(answer.result.ops[2].code == ErrorCode::kUploadUnknownColumn);
    CHECK(answer.result.ops[3].code == ErrorCode::kUploadUnknownColumn);
    CHECK(answer.result.ops[4].status == OpStatus::kApplied);
    CHECK(answer.result.ops[5].code == ErrorCode::kUploadRowNotFound);
    CHECK(f.query("SELECT count(*) FROM lists") == "2");
    CHECK(f.query("SELECT description FROM todos WHERE id = 't1'") == "Milk");
    CHECK(f.query("SELECT description FROM todos WHERE id = 't1'' OR ''1''=''1'") == "'); DROP TABLE lists; --");
    CHECK(f.query("SELECT count(*) FROM todos WHERE description = 'all'") == "0");
}

TEST_CASE("concurrent writers to the same rows: deadlocks are retried, every batch is applied exactly once") {
    Fixture f("up_concurrent");
    // Lock-order conflicts below are deadlocks by design: detect them quickly.
    sluice::test::exec_sql(f.source, "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET deadlock_timeout = ''20ms''', "
                                     "current_database()); END $$");
    auto options = f.options();
    options.max_attempts = 50;
    auto uploader = Uploader::create(options, f.rules);
    constexpr int kThreads = 6;
    constexpr int kBatches = 25;
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            for (int b = 0; b < kBatches; ++b) {
                // Half the threads touch t1 then l1, the others l1 then t1: lock order conflicts.
                const std::string first = R"({"op":"PATCH","type":"todos","id":"t1","data":{"points":)" + std::to_string(t) + "}}";
                const std::string second = R"({"op":"PATCH","type":"lists","id":"l1","data":{"name":"n)" + std::to_string(t) + R"("}})";
                const std::string ops = t % 2 == 0 ? first + "," + second : second + "," + first;
                auto batch = wire::parse_upload_request(
                    R"({"client_id":"w)" + std::to_string(t) + R"(","batch_id":")" + std::to_string(b) + R"(","ops":[)" + ops + "]}", {});
                auto answer = uploader->upload(user("u1"), batch.value());
                if (!answer || answer->result.outcome != wire::BatchOutcome::kApplied) {
                    failures++;
                }
            }
        });
    }
    // Meanwhile the same batch from four threads at once: one applies it, the others get the record.
    std::atomic<int> replays{0};
    std::vector<std::thread> duplicates;
    const auto dup = one_op("dup", R"({"op":"PUT","type":"todos","id":"t40","data":{"list_id":"l1","description":"d","created_by":"u1"}})");
    for (int d = 0; d < 4; ++d) {
        duplicates.emplace_back([&] {
            auto answer = uploader->upload(user("u1"), dup);
            if (answer && answer->replayed) {
                replays++;
            }
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    for (auto& t : duplicates) {
        t.join();
    }
    CHECK(failures.load() == 0);
    CHECK(replays.load() == 3);
    CHECK(f.audit_count() == kThreads * kBatches * 2 + 1);
    CHECK(f.query("SELECT count(*) FROM sluice.uploads") == std::to_string(kThreads * kBatches + 1));
}

TEST_CASE("write checkpoints travel in the source transactions: a batch's in its own, numbered in commit order per client") {
    Fixture f("up_wcp");
    auto uploader = Uploader::create(f.options(), f.rules);
    REQUIRE(uploader->prepare().is_ok());
    DecodingSlot slot(f.source, "up_wcp_slot");
    // One client uploading from several threads at once, and asking for write checkpoints between.
    constexpr int kThreads = 6;
    constexpr int kEach = 12;
    std::map<std::int64_t, bool> answered;  // number -> from an upload
    std::mutex answered_mutex;
    std::atomic<int> failures{0};
    // The batches are parsed here: Catch's assertions (in one_op) are not thread-safe.
    std::vector<std::vector<wire::UploadBatch>> batches(kThreads);
    for (int t = 0; t < kThreads; ++t) {
        for (int i = 0; i < kEach; ++i) {
            const auto id = std::to_string(t) + "_" + std::to_string(i);
            batches[t].push_back(
                one_op("b" + id, R"({"op":"PUT","type":"lists","id":")" + id + R"(","data":{"name":"n","owner_id":"u1"}})"));
        }
    }
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < kEach; ++i) {
                std::int64_t number = 0;
                const bool upload = i % 3 != 2;
                if (upload) {
                    auto a = uploader->upload(user("u1"), batches[t][i]);
                    failures += a && a->result.outcome == wire::BatchOutcome::kApplied ? 0 : 1;
                    number = a ? a->write_checkpoint : 0;
                } else {
                    auto n = uploader->create_write_checkpoint("u1", "c1");
                    failures += n ? 0 : 1;
                    number = n ? n.value() : 0;
                }
                std::lock_guard lock(answered_mutex);
                failures += answered.emplace(number, upload).second ? 0 : 1;  // each number once
            }
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    REQUIRE(failures.load() == 0);
    const auto decoded = decoded_checkpoints(slot.changes(), "lists");
    REQUIRE(decoded.size() == answered.size());
    for (std::size_t i = 0; i < decoded.size(); ++i) {
        INFO(i);
        CHECK(decoded[i].user == "u1");
        CHECK(decoded[i].client == "c1");
        // In commit order the numbers grow: delivering one says every lower one is visible.
        if (i > 0) {
            CHECK(decoded[i].number > decoded[i - 1].number);
        }
        // An upload's checkpoint is in the transaction that applied the batch.
        REQUIRE(answered.count(decoded[i].number) == 1);
        CHECK(decoded[i].with_write == answered[decoded[i].number]);
    }

    // A replay answers with a new checkpoint (in a transaction of its own), above the first.
    const auto batch = one_op("again", R"({"op":"PUT","type":"lists","id":"again","data":{"name":"n","owner_id":"u1"}})");
    const auto first = must_upload(*uploader, user("u1"), batch);
    const auto replayed = must_upload(*uploader, user("u1"), batch);
    CHECK(replayed.replayed);
    CHECK(replayed.write_checkpoint > first.write_checkpoint);
    // A rejected batch has one too: its transaction records the rejection.
    const auto rejected = must_upload(*uploader, user("u1"), one_op("no", R"({"op":"PUT","type":"ghosts","id":"x","data":{}})"));
    CHECK(rejected.result.outcome == wire::BatchOutcome::kRejected);
    CHECK(rejected.write_checkpoint > replayed.write_checkpoint);
    // Checkpoint requests carry the client's own number.
    REQUIRE(uploader->request_write_checkpoint("u1", "c1", 7).is_ok());
    REQUIRE(uploader->request_write_checkpoint("u1", "c9", 42).is_ok());
    auto next = uploader->create_write_checkpoint("u1", "c1");
    REQUIRE(next);
    CHECK(next.value() > rejected.write_checkpoint);
    const auto later = decoded_checkpoints(slot.changes(), "lists");
    std::vector<std::int64_t> numbers;
    for (const auto& c : later) {
        numbers.push_back(c.number);
    }
    CHECK(numbers == std::vector<std::int64_t>{first.write_checkpoint, replayed.write_checkpoint,
                                               rejected.write_checkpoint, 7, 42, next.value()});
    CHECK(later.at(0).with_write);
    CHECK_FALSE(later.at(1).with_write);
}

TEST_CASE("write checkpoints without write_rules: numbered by the WAL position, nothing created in the source") {
    Fixture f("up_wcp_read_only");
    auto read_only = sluice::config::rules::RuleSet::compile("bucket_definitions:\n  global:\n    data:\n      - SELECT * FROM lists\n",
                                                             "rules.yaml");
    REQUIRE(read_only.rules);
    auto uploader = Uploader::create(f.options(), read_only.rules);
    DecodingSlot slot(f.source, "up_wcp_ro_slot");
    auto a = uploader->create_write_checkpoint("u1", "c1");
    sluice::test::exec_sql(f.source, "UPDATE lists SET name = 'Food' WHERE id = 'l1'");  // the app's own write
    auto b = uploader->create_write_checkpoint("u1", "c1");
    REQUIRE(a);
    REQUIRE(b);
    CHECK(b.value() > a.value());
    REQUIRE(uploader->request_write_checkpoint("u1", "c9", 42).is_ok());
    const auto decoded = decoded_checkpoints(slot.changes(), "lists");
    REQUIRE(decoded.size() == 3);
    CHECK(decoded[0].number == a.value());
    CHECK(decoded[1].number == b.value());
    CHECK(decoded[2].client == "c9");
    CHECK(decoded[2].number == 42);
    CHECK(f.query("SELECT count(*) FROM pg_namespace WHERE nspname = 'sluice'") == "0");

    // Each is also pending in storage at its WAL position, for a lost slot; the server's numbers are
    // that position.
    const auto pending = [&](const std::string& client) {
        return f.query("SELECT string_agg(checkpoint || '@' || (lsn - '0/0') || '/' || (op_id IS NULL), ' ' "
                       "ORDER BY checkpoint) FROM sluice.write_checkpoints WHERE user_id = 'u1' AND client_id = '" +
                           client + "'",
                       f.storage);
    };
    CHECK(pending("c1") == fmt::format("{0}@{0}/true {1}@{1}/true", a.value(), b.value()));
    const auto c9 = pending("c9");
    CHECK(c9.starts_with("42@"));
    CHECK(c9.ends_with("/true"));
    // Not when the client has that one, or a later one, delivered already.
    sluice::test::exec_sql(f.storage, "UPDATE sluice.write_checkpoints SET op_id = 1");
    REQUIRE(uploader->request_write_checkpoint("u1", "c9", 41).is_ok());
    REQUIRE(uploader->request_write_checkpoint("u1", "c9", 42).is_ok());
    CHECK(f.query("SELECT count(*) FROM sluice.write_checkpoints WHERE client_id = 'c9'", f.storage) == "1");
}

TEST_CASE("a sluice.uploads made before write checkpoints were recorded gains the column, its old records still replay") {
    Fixture f("up_old_shape");
    sluice::test::exec_sql(f.source, R"SQL(
        CREATE SCHEMA sluice;
        CREATE TABLE sluice.uploads (client_id text COLLATE "C" NOT NULL, batch_id text COLLATE "C" NOT NULL,
            user_id text NOT NULL, result jsonb NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (client_id, batch_id));
        INSERT INTO sluice.uploads (client_id, batch_id, user_id, result)
            VALUES ('c1', 'old', 'u1', '{"status":"applied","ops":[{"status":"applied"}]}');
    )SQL");
    auto uploader = Uploader::create(f.options(), f.rules);
    REQUIRE(uploader->prepare().is_ok());
    const auto old = must_upload(*uploader, user("u1"), one_op("old", R"({"op":"PUT","type":"items","id":"x"})"));
    CHECK(old.replayed);
    CHECK(old.write_checkpoint > 0);
    CHECK(f.query("SELECT count(*) FROM items") == "0");
    CHECK(f.query("SELECT write_checkpoint FROM sluice.uploads WHERE batch_id = 'old'") == "<null>");
    const auto fresh = must_upload(*uploader, user("u1"), one_op("new", R"({"op":"PUT","type":"items","id":"x"})"));
    CHECK_FALSE(fresh.replayed);
    CHECK(f.query("SELECT write_checkpoint FROM sluice.uploads WHERE batch_id = 'new'") ==
          std::to_string(fresh.write_checkpoint));
    // prepare() again, on the table as it is now, changes nothing.
    auto again = Uploader::create(f.options(), f.rules);
    REQUIRE(again->prepare().is_ok());
}

TEST_CASE("a table changed between batches: its prepared statements and cached shape are renewed") {
    Fixture f("up_alter");
    auto uploader = Uploader::create(f.options(), f.rules);
    const auto patch = [&](const std::string& batch_id, const std::string& data) {
        return must_upload(*uploader, user("u1"),
                           one_op(batch_id, R"({"op":"PATCH","type":"todos","id":"t1","data":)" + data + "}"));
    };
    CHECK(patch("a1", R"({"points":1})").result.outcome == wire::BatchOutcome::kApplied);
    // The locked read's result type changes: a prepared statement cannot run again as it was.
    sluice::test::exec_sql(f.source, "ALTER TABLE todos ALTER COLUMN points TYPE bigint");
    const auto widened = patch("a2", R"({"points":9007199254740993})");
    INFO(widened.result.ops.at(0).reason);
    CHECK(widened.result.outcome == wire::BatchOutcome::kApplied);
    CHECK(f.query("SELECT points FROM todos WHERE id = 't1'") == "9007199254740993");
    // A column the op does not write changes type: the same statement text no longer fits its plan.
    sluice::test::exec_sql(f.source, "ALTER TABLE todos ALTER COLUMN assigned_to TYPE varchar(50)");
    CHECK(patch("a3", R"({"points":2})").result.outcome == wire::BatchOutcome::kApplied);
    CHECK(f.query("SELECT points FROM todos WHERE id = 't1'") == "2");
    // A column's type changes before its first write: the cast from the cached shape no longer fits.
    sluice::test::exec_sql(f.source, "ALTER TABLE todos ALTER COLUMN assigned_to TYPE integer USING NULL");
    CHECK(patch("a5", R"({"assigned_to":5})").result.outcome == wire::BatchOutcome::kApplied);
    CHECK(f.query("SELECT assigned_to FROM todos WHERE id = 't1'") == "5");
    // A column added after the shape was cached.
    sluice::test::exec_sql(f.source, "ALTER TABLE todos ADD COLUMN colour text");
    const auto added = must_upload(
        *uploader, user("u1"),
        one_op("a4", R"({"op":"PUT","type":"todos","id":"t4","data":{"list_id":"l1","description":"Tea","created_by":"u1","colour":"red"}})"));
    INFO(added.result.ops.at(0).reason);
    CHECK(added.result.outcome == wire::BatchOutcome::kApplied);
    CHECK(f.query("SELECT colour FROM todos WHERE id = 't4'") == "red");
}

TEST_CASE("apply_valid: a failing statement aborts only its op, the ops after it still run") {
    Fixture f("up_abort");
    auto uploader = Uploader::create(f.options(sluice::config::BatchPolicy::kApplyValid), f.rules);
    const auto answer = must_upload(*uploader, user("u1"), parse(R"({"client_id":"c1","batch_id":"b","ops":[
        {"op":"PATCH","type":"todos","id":"t1","data":{"points":"many"}},
        {"op":"PUT","type":"todos","id":"t5","data":{"list_id":"nope","description":"x","created_by":"u1"}},
        {"op":"PATCH","type":"todos","id":"t1","data":{"points":3}},
        {"op":"PUT","type":"lists","id":"l5","data":{"owner_id":"u1","name":"this name is far too long for the check constraint"}},
        {"op":"PUT","type":"todos","id":"t6","data":{"list_id":"l1","description":"y","created_by":"u1"}}]})"));
    REQUIRE(answer.result.ops.size() == 5);
    CHECK(answer.result.outcome == wire::BatchOutcome::kPartial);
    CHECK(answer.result.ops[0].code == ErrorCode::kUploadInvalidData);  // the read's cast
    CHECK(answer.result.ops[1].code == ErrorCode::kUploadConstraint);   // the write's foreign key
    CHECK(answer.result.ops[2].status == OpStatus::kApplied);
    CHECK(answer.result.ops[3].code == ErrorCode::kUploadConstraint);  // check constraint
    CHECK(answer.result.ops[4].status == OpStatus::kApplied);
    CHECK(f.query("SELECT points FROM todos WHERE id = 't1'") == "3");
    CHECK(f.query("SELECT count(*) FROM todos WHERE id IN ('t5', 't6')") == "1");
    CHECK(f.audit_count() == 2);
}
