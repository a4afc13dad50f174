// The replication layer against a real Postgres: publication and slot setup, and the stream end to
// end: changes arrive as whole transactions in order, the slot's confirmed_flush_lsn advances only
// to what the consumer reported durable, and a restart resumes without loss.
#include <chrono>
#include <thread>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <pqxx/pqxx>

#include "protocol/pgoutput/text_value.h"
#include "server/replication/replication_setup.h"
#include "server/replication/replication_stream.h"
#include "tests/support/pg.h"

namespace pg = sluice::protocol::pgoutput;
using sluice::protocol::ErrorCode;
using sluice::protocol::Lsn;
using namespace sluice::replication;  // NOLINT(google-build-using-namespace): the layer under test
using namespace std::chrono_literals;

namespace {

std::string scalar(const std::string& uri, const std::string& sql) {
    pqxx::connection c(uri);
    pqxx::nontransaction tx(c);
    auto r = tx.exec1(sql);
    return r[0].is_null() ? std::string() : r[0].c_str();
}

void drop_slot(const std::string& slot) {
    sluice::test::exec_sql(sluice::test::pg_uri(),
                           "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '" +
                               slot + "'");
}

Lsn confirmed_flush(const std::string& slot) {
    return Lsn::parse(scalar(sluice::test::pg_uri(),
                             "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '" + slot + "'"))
        .value();
}

// A database with a published table `items` and a slot; returns its URI.
struct Fixture {
    std::string slot;
    std::string uri;
    Lsn start;

    explicit Fixture(const std::string& name) : slot("t_" + name) {
        drop_slot(slot);
        uri = sluice::test::fresh_database("repl_" + name);
        sluice::test::exec_sql(uri, "CREATE TABLE items (id int PRIMARY KEY, name text, price numeric, tags text[])");
        sluice::test::exec_sql(uri, "CREATE TABLE other (k text PRIMARY KEY, n int8)");
        auto sql = PgConnection::open(uri, ConnectionKind::kRegular, 5);
        REQUIRE(sql.is_ok());
        REQUIRE(ensure_publication(*sql, {"sluice", {"items", "public.other"}, PublicationMode::kManaged}).is_ok());
        auto repl = PgConnection::open(uri, ConnectionKind::kReplication, 5);
        REQUIRE(repl.is_ok());
        auto info = ensure_slot(*repl, slot);
        INFO(info.status().to_string());
        REQUIRE(info.is_ok());
        start = info->consistent_point;
    }
    ~Fixture() {
        try {
            drop_slot(slot);
        } catch (...) {  // NOLINT(bugprone-empty-catch): best effort in a destructor
        }
    }
    Fixture(const Fixture&) = delete;
    Fixture& operator=(const Fixture&) = delete;

    [[nodiscard]] StreamConfig config(Lsn resume_from = {}) const {
        StreamConfig c;
        c.conninfo = uri;
        c.slot = slot;
        c.publications = {"sluice"};
        c.resume_from = resume_from;
        c.status_interval = 200ms;
        c.poll_interval = 20ms;
        return c;
    }
};

std::vector<SourceTransaction> take(TransactionQueue& queue, std::size_t n) {
    std::vector<SourceTransaction> out;
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
        if (auto t = queue.pop(100ms)) {
            out.push_back(std::move(*t));
        }
    }
    REQUIRE(out.size() == n);
    return out;
}

// Waits (bounded) until the slot's confirmed_flush_lsn equals `lsn`.
bool wait_confirmed(const std::string& slot, Lsn lsn) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
        if (confirmed_flush(slot) == lsn) {
            return true;
        }
        std::this_thread::sleep_for(20ms);  // polling an external system, not synchronising threads
    }
    return false;
}

std::string text_of(const pg::Datum& d) { return d.kind == pg::DatumKind::kText ? d.data : "<" + std::string(1, static_cast<char>(d.kind)) + ">"; }

const RowChange& row(const SourceTransaction& t, std::size_t i) { return std::get<RowChange>(t.changes.at(i)); }

}  // namespace

TEST_CASE("publication: created, kept in step with the tables, never the storage schema") {
    const auto uri = sluice::test::fresh_database("repl_publication");
    sluice::test::exec_sql(uri, "CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY); "
                                "CREATE SCHEMA sluice; CREATE TABLE sluice.ops (id int PRIMARY KEY)");
    auto sql = PgConnection::open(uri, ConnectionKind::kRegular, 5);
    REQUIRE(sql.is_ok());
    const auto tables = [&] {
        return scalar(uri, "SELECT string_agg(schemaname || '.' || tablename, ',' ORDER BY tablename) FROM "
                           "pg_publication_tables WHERE pubname = 'sluice'");
    };
    REQUIRE(ensure_publication(*sql, {"sluice", {"a"}, PublicationMode::kManaged}).is_ok());
    CHECK(tables() == "public.a");
    REQUIRE(ensure_publication(*sql, {"sluice", {"b"}, PublicationMode::kManaged}).is_ok());
    CHECK(tables() == "public.b");

    auto storage = ensure_publication(*sql, {"sluice", {"sluice.ops"}, PublicationMode::kManaged});
    CHECK(storage.code() == ErrorCode::kPublicationStorageSchema);

    auto missing = ensure_publication(*sql, {"sluice", {"a", "b"}, PublicationMode::kUserManaged});
    CHECK(missing.code() == ErrorCode::kPublicationSetupFailed);
    CHECK(missing.message().find("ALTER PUBLICATION \"sluice\" ADD TABLE \"public\".\"a\"") != std::string::npos);
    CHECK(ensure_publication(*sql, {"nope", {"a"}, PublicationMode::kUserManaged}).code() ==
          ErrorCode::kPublicationSetupFailed);

    sluice::test::exec_sql(uri, "CREATE PUBLICATION everything FOR ALL TABLES");
    auto all = ensure_publication(*sql, {"everything", {"a"}, PublicationMode::kUserManaged});
    CHECK(all.code() == ErrorCode::kPublicationStorageSchema);
}

TEST_CASE("slot: created with its consistent point, then verified, a wrong slot is refused") {
    drop_slot("t_slot_check");
    drop_slot("t_slot_physical");
    const auto uri = sluice::test::fresh_database("repl_slot");
    auto repl = PgConnection::open(uri, ConnectionKind::kReplication, 5);
    REQUIRE(repl.is_ok());
    auto created = ensure_slot(*repl, "t_slot_check");
    REQUIRE(created.is_ok());
    CHECK(created->created);
    CHECK(created->consistent_point.value() > 0);
    auto again = ensure_slot(*repl, "t_slot_check");
    REQUIRE(again.is_ok());
    CHECK_FALSE(again->created);
    CHECK(again->consistent_point == created->consistent_point);

    sluice::test::exec_sql(uri, "SELECT pg_create_physical_replication_slot('t_slot_physical')");
    CHECK(ensure_slot(*repl, "t_slot_physical").status().code() == ErrorCode::kSlotWrongPlugin);
    CHECK(ensure_slot(*repl, "Bad-Name").status().code() == ErrorCode::kSlotSetupFailed);
    drop_slot("t_slot_check");
    drop_slot("t_slot_physical");
}

TEST_CASE("stream: whole transactions in order, relation changes, truncate, messages") {
    Fixture f("order");
    TransactionQueue queue(100, 10'000);
    ReplicationStream stream(f.config(), queue);
    stream.start();

    sluice::test::exec_sql(f.uri, "BEGIN; INSERT INTO items VALUES (1, 'a', 1.50, '{x,\"y z\"}'), (2, 'b', NULL, NULL); "
                                  "INSERT INTO other VALUES ('k', 9007199254740993); COMMIT");
    sluice::test::exec_sql(f.uri, "UPDATE items SET name = 'a2' WHERE id = 1");
    sluice::test::exec_sql(f.uri, "BEGIN; DELETE FROM items WHERE id = 2; "
                                  "SELECT pg_logical_emit_message(true, 'sluice', 'hello'); COMMIT");
    sluice::test::exec_sql(f.uri, "ALTER TABLE items ADD COLUMN extra bool");
    sluice::test::exec_sql(f.uri, "INSERT INTO items VALUES (3, 'c', 2, NULL, true)");
    sluice::test::exec_sql(f.uri, "TRUNCATE items, other");
    sluice::test::exec_sql(f.uri, "SELECT pg_logical_emit_message(false, 'sluice', 'alone')");

    auto txns = take(queue, 6);
    for (std::size_t i = 1; i < txns.size(); ++i) {
        CHECK(txns[i - 1].end_lsn < txns[i].end_lsn);
    }
    REQUIRE(txns[0].changes.size() == 3);
    CHECK(row(txns[0], 0).kind == RowChange::Kind::kInsert);
    CHECK(row(txns[0], 0).relation->name == "items");
    CHECK(text_of(row(txns[0], 0).new_tuple[3]) == "{x,\"y z\"}");
    CHECK(pg::to_json(pg::decode_datum(row(txns[0], 0).relation->columns[3].type_oid, row(txns[0], 0).new_tuple[3])
                          .value()) == R"("[\"x\",\"y z\"]")");
    CHECK(row(txns[0], 2).relation->name == "other");
    CHECK(pg::decode_datum(row(txns[0], 2).relation->columns[1].type_oid, row(txns[0], 2).new_tuple[1]).value() ==
          pg::Value::from_integer(9007199254740993));

    REQUIRE(txns[1].changes.size() == 1);
    CHECK(row(txns[1], 0).kind == RowChange::Kind::kUpdate);
    CHECK(text_of(row(txns[1], 0).new_tuple[1]) == "a2");

    REQUIRE(txns[2].changes.size() == 2);
    CHECK(row(txns[2], 0).kind == RowChange::Kind::kDelete);
    CHECK(text_of(row(txns[2], 0).old_tuple[0]) == "2");
    CHECK(std::get<pg::LogicalMessage>(txns[2].changes[1]).content == "hello");

    REQUIRE(txns[3].changes.size() == 1);
    CHECK(row(txns[3], 0).relation->columns.size() == 5);  // the new Relation after ALTER TABLE
    CHECK(row(txns[0], 0).relation->columns.size() == 4);  // earlier changes keep their relation

    const auto& truncate = std::get<TruncateChange>(txns[4].changes.at(0));
    CHECK(truncate.relations.size() == 2);

    CHECK(txns[5].xid == 0);
    CHECK(std::get<pg::LogicalMessage>(txns[5].changes.at(0)).content == "alone");

    stream.request_stop();
    CHECK(stream.join().is_ok());
}

TEST_CASE("stream: the slot confirms only what the consumer reported durable, restart resumes") {
    Fixture f("durable");
    std::vector<SourceTransaction> first;
    {
        TransactionQueue queue(100, 10'000);
        ReplicationStream stream(f.config(), queue);
        stream.start();
        for (int i = 1; i <= 3; ++i) {
            sluice::test::exec_sql(f.uri, fmt::format("INSERT INTO items (id, name) VALUES ({}, 'n{}')", i, i));
        }
        first = take(queue, 3);
        // Nothing durable yet: several status intervals later the slot has not moved.
        std::this_thread::sleep_for(600ms);
        CHECK(confirmed_flush(f.slot) == f.start);

        queue.mark_durable(first[0].end_lsn);
        CHECK(wait_confirmed(f.slot, first[0].end_lsn));
        CHECK(stream.confirmed() == first[0].end_lsn);
        stream.request_stop();
        REQUIRE(stream.join().is_ok());
    }
    CHECK(confirmed_flush(f.slot) == first[0].end_lsn);

    // A crash after storing transaction 1 only: resume from its end; 2 and 3 come again, then 4.
    sluice::test::exec_sql(f.uri, "INSERT INTO items (id, name) VALUES (4, 'n4')");
    TransactionQueue queue(100, 10'000);
    ReplicationStream stream(f.config(first[0].end_lsn), queue);
    stream.start();
    auto again = take(queue, 3);
    CHECK(again[0].end_lsn == first[1].end_lsn);
    CHECK(again[1].end_lsn == first[2].end_lsn);
    CHECK(text_of(row(again[2], 0).new_tuple[0]) == "4");
    queue.mark_durable(again[2].end_lsn);
    CHECK(wait_confirmed(f.slot, again[2].end_lsn));
    stream.request_stop();
    REQUIRE(stream.join().is_ok());

    // Resuming from 0/0 uses the slot's position: nothing is repeated.
    sluice::test::exec_sql(f.uri, "INSERT INTO items (id, name) VALUES (5, 'n5')");
    TransactionQueue queue2(100, 10'000);
    ReplicationStream stream2(f.config(), queue2);
    stream2.start();
    auto rest = take(queue2, 1);
    CHECK(text_of(row(rest[0], 0).new_tuple[0]) == "5");
    stream2.request_stop();
    REQUIRE(stream2.join().is_ok());
}

TEST_CASE("stream: a full queue stalls replication instead of growing memory") {
    Fixture f("bounded");
    TransactionQueue queue(2, 10'000);
    ReplicationStream stream(f.config(), queue);
    stream.start();
    for (int i = 1; i <= 6; ++i) {
        sluice::test::exec_sql(f.uri, fmt::format("INSERT INTO items (id) VALUES ({})", i));
    }
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (queue.size() < 2 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(20ms);
    }
    std::this_thread::sleep_for(300ms);
    CHECK(queue.size() == 2);  // bounded while nobody consumes
    auto all = take(queue, 6);  // and nothing is lost once the consumer catches up
    for (int i = 0; i < 6; ++i) {
        CHECK(text_of(row(all[static_cast<std::size_t>(i)], 0).new_tuple[0]) == std::to_string(i + 1));
    }
    stream.request_stop();
    REQUIRE(stream.join().is_ok());
}

TEST_CASE("stream: a missing slot is a clear error and closes the queue") {
    Fixture f("missing");
    drop_slot(f.slot);
    TransactionQueue queue(10, 100);
    ReplicationStream stream(f.config(), queue);
    auto s = stream.run();
    CHECK(s.code() == ErrorCode::kReplicationStreamFailed);
    CHECK(s.message().find("does not exist") != std::string::npos);
    CHECK(queue.closed());
}
