// The bucket op log against a real Postgres: PUT/REMOVE on inserts, moves and deletes, lookups kept
// per source row, truncate, checkpoints and checksums (also at an older checkpoint), mid-batch flushes,
// rollback, and a writer reopened after a restart continuing the op ids.
#include <map>
#include <set>
#include <thread>
#include <atomic>
#include <algorithm>
#include <random>

#include <catch2/catch.hpp>
#include <pqxx/pqxx>

#include "migrations/migrations.h"
#include "protocol/wire/checksum.h"
#include "server/storage/bucket_reader.h"
#include "server/storage/bucket_writer.h"
#include "server/storage/compactor.h"
#include "server/storage/migrator.h"
#include "server/storage/rules_versions.h"
#include "server/storage/write_checkpoints.h"
#include "tests/support/pg.h"

using sluice::core::ChangeKind;
using sluice::core::EvaluatedChange;
using sluice::core::LookupValue;
using sluice::core::Placement;
using sluice::core::RowKey;
using sluice::protocol::Lsn;
using sluice::storage::BucketReader;
using sluice::storage::BucketWriter;
using sluice::storage::StoredOp;

namespace {

std::string migrated_database(const std::string& name) {
    const auto uri = sluice::test::fresh_database(name);
    pqxx::connection c(uri);
    REQUIRE(sluice::storage::migrate(c, sluice::migrations::embedded()).is_ok());
    return uri;
}

struct Store {
    std::unique_ptr<BucketWriter> writer;
    std::unique_ptr<BucketReader> reader;

    explicit Store(const std::string& uri, std::size_t flush_ops = 20000)
        : Store(uri, sluice::storage::WriterOptions{"test_slot", flush_ops}) {}
    Store(const std::string& uri, sluice::storage::WriterOptions options) {
        auto w = BucketWriter::open(uri, std::move(options));
        REQUIRE(w.is_ok());
        writer = std::move(w).value();
        auto r = BucketReader::open(uri);
        REQUIRE(r.is_ok());
        reader = std::move(r).value();
    }

    void put(const std::string& id, std::vector<std::string> buckets, std::vector<LookupValue> lookups = {}) {
        EvaluatedChange change{{"public.todos", "[\"" + id + "\"]"}, ChangeKind::kUpsert, "stored:" + id, {}, lookups};
        for (auto& b : buckets) {
            change.placements.push_back({b, "todos", id, R"({"id":")" + id + R"("})"});
        }
        auto status = writer->apply(change);
        REQUIRE(status.is_ok());
    }
    void remove(const std::string& id) {
        auto status = writer->apply({{"public.todos", "[\"" + id + "\"]"}, ChangeKind::kDelete, {}, {}, {}});
        REQUIRE(status.is_ok());
    }
    std::int64_t commit(std::uint64_t lsn) {
        auto cp = writer->commit(Lsn(lsn));
        INFO(cp.status().to_string());
        REQUIRE(cp.is_ok());
        return cp->op_id;
    }
    std::vector<StoredOp> ops(const std::string& bucket, std::int64_t after = 0) {
        auto r = reader->read_ops(bucket, after, INT64_MAX, 1000);
        REQUIRE(r.is_ok());
        return r.value();
    }
    // The checksum a client computes from every op it received.
    std::uint32_t client_sum(const std::string& bucket, std::int64_t up_to) {
        std::uint32_t sum = 0;
        for (const auto& op : ops(bucket)) {
            if (op.op_id <= up_to) {
                sum += op.checksum;
            }
        }
        return sum;
    }
};

std::string ops_text(const std::vector<StoredOp>& ops) {
    std::string out;
    for (const auto& op : ops) {
        out += std::to_string(op.op_id) + (op.op == 1 ? " PUT " : " REMOVE ") + op.object_type + "/" + op.object_id +
               (op.data ? " " + *op.data : "") + "\n";
    }
    return out;
}

}  // namespace

TEST_CASE("inserts, moves and deletes become PUT and REMOVE ops with checksums") {
    Store s(migrated_database("bucket_moves"));
    s.put("t1", {"global[]", R"(by_owner["a"])"});
    s.put("t2", {"global[]", R"(by_owner["a"])"});
    const auto cp1 = s.commit(100);
    CHECK(cp1 == 4);

    s.put("t1", {"global[]", R"(by_owner["b"])"});  // moves from owner a to b
    s.remove("t2");
    const auto cp2 = s.commit(200);

    CHECK(ops_text(s.ops(R"(by_owner["a"])")) ==
          "2 PUT todos/t1 {\"id\":\"t1\"}\n4 PUT todos/t2 {\"id\":\"t2\"}\n7 REMOVE todos/t1\n9 REMOVE todos/t2\n");
    CHECK(ops_text(s.ops(R"(by_owner["b"])")) == "6 PUT todos/t1 {\"id\":\"t1\"}\n");
    CHECK(ops_text(s.ops("global[]")) ==
          "1 PUT todos/t1 {\"id\":\"t1\"}\n3 PUT todos/t2 {\"id\":\"t2\"}\n5 PUT todos/t1 {\"id\":\"t1\"}\n"
          "8 REMOVE todos/t2\n");
    const auto put = s.ops("global[]")[0];
    CHECK(put.checksum == sluice::protocol::wire::put_checksum("todos", "t1", R"({"id":"t1"})"));
    CHECK(put.subkey == "public.todos/[\"t1\"]");
    const auto remove = s.ops("global[]")[3];
    CHECK(remove.checksum == sluice::protocol::wire::remove_checksum("public.todos/[\"t2\"]"));
    CHECK_FALSE(remove.data.has_value());

    const std::vector<std::string> buckets{"global[]", R"(by_owner["a"])", R"(by_owner["b"])", "nothing[]"};
    auto now = s.reader->checksums(buckets, cp2);
    REQUIRE(now.is_ok());
    CHECK(now->size() == 3);
    for (const auto& b : {"global[]", R"(by_owner["a"])", R"(by_owner["b"])"}) {
        INFO(b);
        CHECK(now->at(b).checksum == s.client_sum(b, cp2));
    }
    CHECK(now->at("global[]").count == 4);
    // At the older checkpoint the later ops do not count, and a bucket born later does not exist.
    auto then = s.reader->checksums(buckets, cp1);
    REQUIRE(then.is_ok());
    CHECK(then->size() == 2);
    CHECK(then->at(R"(by_owner["a"])").checksum == s.client_sum(R"(by_owner["a"])", cp1));
    CHECK(then->at(R"(by_owner["a"])").count == 2);

    auto latest = s.reader->latest_checkpoint();
    REQUIRE(latest.is_ok());
    REQUIRE(latest.value().has_value());
    CHECK(latest.value()->op_id == cp2);
    CHECK(latest.value()->lsn == Lsn(200));
}

TEST_CASE("lookup entries follow their source row") {
    Store s(migrated_database("bucket_lookups"));
    s.put("share1", {}, {{"lists/0[\"alice\"]", "[\"l1\"]"}});
    s.put("share2", {}, {{"lists/0[\"alice\"]", "[\"l2\"]"}, {"lists/0[\"bob\"]", "[\"l2\"]"}});
    s.commit(10);
    const std::vector<std::string> keys{"lists/0[\"alice\"]", "lists/0[\"bob\"]", "lists/0[\"carol\"]"};
    auto before = s.reader->lookup(keys);
    REQUIRE(before.is_ok());
    auto alice = before.value()[0];
    std::sort(alice.begin(), alice.end());
    CHECK(alice == std::vector<std::string>{"[\"l1\"]", "[\"l2\"]"});
    CHECK(before.value()[1] == std::vector<std::string>{"[\"l2\"]"});
    CHECK(before.value()[2].empty());

    s.put("share2", {}, {{"lists/0[\"carol\"]", "[\"l2\"]"}});  // re-shared to carol only
    s.remove("share1");
    const auto before_revoke = s.reader->latest_checkpoint().value()->op_id;
    const auto after_revoke = s.commit(20);
    // No op was written, but bucket sets changed: clients need a new checkpoint to see it.
    CHECK(after_revoke > before_revoke);
    CHECK(s.reader->latest_checkpoint().value()->op_id == after_revoke);
    // Rewriting the same lookups changes nothing, and needs no checkpoint.
    s.put("share2", {}, {{"lists/0[\"carol\"]", "[\"l2\"]"}});
    CHECK(s.commit(30) == after_revoke);
    auto after = s.reader->lookup(keys);
    REQUIRE(after.is_ok());
    CHECK(after.value()[0].empty());
    CHECK(after.value()[1].empty());
    CHECK(after.value()[2] == std::vector<std::string>{"[\"l2\"]"});
}

TEST_CASE("the lookup index as of a checkpoint: a session resolving there sees neither later grants nor later revokes") {
    const auto uri = migrated_database("bucket_lookup_history");
    Store s(uri, 2);  // tiny flushes: entries change mid-batch too
    const std::vector<std::string> keys{"lists/0[\"alice\"]"};
    auto at = [&](std::optional<std::int64_t> checkpoint) {
        auto found = s.reader->lookup(keys, sluice::storage::kActiveRulesVersion, checkpoint);
        REQUIRE(found.is_ok());
        auto values = found.value()[0];
        std::sort(values.begin(), values.end());
        return values;
    };
    using V = std::vector<std::string>;
    s.put("t0", {"global[]"});
    const auto before = s.commit(5);
    // A grant written in the same batch as ops: the batch's checkpoint sees it, the one before not.
    s.put("t1", {"global[]"});
    s.put("share1", {}, {{keys[0], "[\"l1\"]"}});
    s.put("t2", {"global[]"});
    const auto granted = s.commit(10);
    CHECK(at(before) == V{});
    CHECK(at(granted) == V{"[\"l1\"]"});
    // A second grant, a revoke of the first; in between, the share changes twice within one batch.
    s.put("share2", {}, {{keys[0], "[\"l2\"]"}});
    s.put("t3", {"global[]"});
    s.put("share2", {}, {{keys[0], "[\"l3\"]"}});
    s.put("t4", {"global[]"});
    s.put("share2", {}, {{keys[0], "[\"l2\"]"}});
    s.remove("share1");
    const auto changed = s.commit(20);
    CHECK(at(granted) == V{"[\"l1\"]"});  // a session still resolving at the older checkpoint
    CHECK(at(changed) == V{"[\"l2\"]"});
    CHECK(at(std::nullopt) == V{"[\"l2\"]"});
    // Flushed after `changed` (two ops force it), not yet a checkpoint: no checkpoint sees it.
    s.remove("share2");
    s.put("t5", {"global[]"});
    s.put("t6", {"global[]"});
    CHECK(at(changed) == V{"[\"l2\"]"});
    const auto revoked = s.commit(30);
    CHECK(revoked > changed);
    CHECK(at(changed) == V{"[\"l2\"]"});
    CHECK(at(revoked) == V{});
    // Entries no checkpoint ever saw (l3 within the second batch) were not kept.
    pqxx::connection c(uri);
    pqxx::nontransaction tx(c);
    CHECK(tx.exec1("SELECT count(*) FROM sluice.parameter_lookups WHERE bucket_params = '[\"l3\"]'")[0].as<int>() == 0);
}

TEST_CASE("truncate removes every stored row of the table") {
    Store s(migrated_database("bucket_truncate"));
    for (int i = 0; i < 30; ++i) {
        s.put("r" + std::to_string(i), {"global[]"}, {{"k", "[" + std::to_string(i) + "]"}});
    }
    s.commit(10);
    REQUIRE(s.writer->truncate("public.todos").is_ok());
    const auto cp = s.commit(20);
    auto sums = s.reader->checksums(std::vector<std::string>{"global[]"}, cp);
    REQUIRE(sums.is_ok());
    CHECK(sums->at("global[]").count == 60);
    CHECK(s.ops("global[]", 30).size() == 30);
    for (const auto& op : s.ops("global[]", 30)) {
        CHECK(op.op == 2);
    }
    auto lookups = s.reader->lookup(std::vector<std::string>{"k"});
    REQUIRE(lookups.is_ok());
    CHECK(lookups.value()[0].empty());
}

TEST_CASE("a batch flushed many times gives the same result as one flush") {
    const auto uri = migrated_database("bucket_flushes");
    Store s(uri, 3);
    for (int round = 0; round < 5; ++round) {
        for (int i = 0; i < 10; ++i) {
            const auto id = "r" + std::to_string(i);
            s.put(id, {"global[]", "owner[\"" + std::to_string((i + round) % 3) + "\"]"});
        }
    }
    auto stored = s.writer->stored_row({"public.todos", "[\"r4\"]"});
    REQUIRE(stored.is_ok());
    CHECK(stored.value() == std::optional<std::string>("stored:r4"));
    const auto cp = s.commit(1);
    // Each row ends in exactly global[] and owner[(i+4)%3]: reduce every bucket like a client does.
    for (int owner = 0; owner < 3; ++owner) {
        std::map<std::string, bool> present;
        const std::string bucket = "owner[\"" + std::to_string(owner) + "\"]";
        for (const auto& op : s.ops(bucket)) {
            present[op.object_id] = op.op == 1;
        }
        for (int i = 0; i < 10; ++i) {
            INFO(bucket << " r" << i);
            CHECK(present["r" + std::to_string(i)] == ((i + 4) % 3 == owner));
        }
        auto sums = s.reader->checksums(std::vector<std::string>{bucket}, cp);
        REQUIRE(sums.is_ok());
        CHECK(sums->at(bucket).checksum == s.client_sum(bucket, cp));
    }
    pqxx::connection c(uri);
    pqxx::nontransaction tx(c);
    CHECK(tx.exec1("SELECT count(*) FROM sluice.current_rows").front().as<int>() == 10);
}

TEST_CASE("the op log in chunks: every page across chunk boundaries, data that JSON escapes, consistent chunk rows") {
    const auto uri = migrated_database("bucket_chunks");
    Store s(uri, 150);  // several flushes per storage write
    // ~200-byte outputs with everything JSON escapes: about eight ops fill a chunk.
    const std::string odd = "quote\" backslash\\ tab\t newline\n control\x01 \u00fc \u2603 ";
    std::vector<std::string> written;
    std::vector<std::int64_t> checkpoints;
    for (int write = 0; write < 3; ++write) {
        for (int i = 0; i < 200; ++i) {
            const auto id = odd + std::to_string(write * 200 + i);
            EvaluatedChange change{{"public.todos", "[\"" + std::to_string(write * 200 + i) + "\"]"},
                                   ChangeKind::kUpsert, "stored", {}, {}};
            const auto data = R"({"id":")" + id + R"(","text":")" + std::string(120, 'x') + odd + R"("})";
            change.placements.push_back({"all[]", "todos", id, data});
            written.push_back(data);
            REQUIRE(s.writer->apply(change).is_ok());
        }
        checkpoints.push_back(s.commit(static_cast<std::uint64_t>(write + 1)));
    }
    auto whole = s.reader->read_ops("all[]", 0, INT64_MAX, 100000);
    REQUIRE(whole.is_ok());
    REQUIRE(whole->size() == written.size());
    for (std::size_t i = 0; i < written.size(); ++i) {
        CHECK(whole->at(i).data == std::optional<std::string>(written[i]));
        CHECK(whole->at(i).object_id == odd + std::to_string(i));
        CHECK(whole->at(i).checksum == sluice::protocol::wire::put_checksum("todos", whole->at(i).object_id, written[i]));
    }
    // Every page of 7 after every op, up to the latest checkpoint and up to the first.
    for (const auto up_to : {checkpoints.back(), checkpoints.front()}) {
        for (std::size_t start = 0; start < whole->size(); ++start) {
            const auto after = start == 0 ? 0 : whole->at(start - 1).op_id;
            auto page = s.reader->read_ops("all[]", after, up_to, 7);
            REQUIRE(page.is_ok());
            std::vector<std::int64_t> expected;
            for (std::size_t i = start; i < whole->size() && expected.size() < 7 && whole->at(i).op_id <= up_to; ++i) {
                expected.push_back(whole->at(i).op_id);
            }
            std::vector<std::int64_t> got;
            for (const auto& op : page.value()) {
                got.push_back(op.op_id);
            }
            INFO("after " << after << " up to " << up_to);
            CHECK(got == expected);
        }
    }
    // The chunk rows agree with their ops, stay under the size Postgres would compress, and none
    // spans two storage writes (so none spans a checkpoint).
    pqxx::connection c(uri);
    pqxx::nontransaction tx(c);
    const auto chunks = tx.exec(
        "SELECT c.first_op_id, c.last_op_id, c.op_count, c.checksum, octet_length(c.ops), "
        "       (SELECT min((e->>0)::bigint) FROM json_array_elements(c.ops::json) e), "
        "       (SELECT max((e->>0)::bigint) FROM json_array_elements(c.ops::json) e), "
        "       (SELECT count(*) FROM json_array_elements(c.ops::json) e), "
        "       (SELECT sum((e->>6)::bigint) FROM json_array_elements(c.ops::json) e) "
        "FROM sluice.op_chunks c WHERE bucket = 'all[]'");
    CHECK(chunks.size() > 60);
    for (const auto& r : chunks) {
        CHECK(r[0].as<std::int64_t>() == r[5].as<std::int64_t>());
        CHECK(r[1].as<std::int64_t>() == r[6].as<std::int64_t>());
        CHECK(r[2].as<std::int64_t>() == r[7].as<std::int64_t>());
        CHECK(r[3].as<std::int64_t>() == r[8].as<std::int64_t>());
        CHECK(r[4].as<std::size_t>() <= sluice::storage::kOpChunkBytes);
        const auto write_of = [&](std::int64_t op_id) {
            return std::lower_bound(checkpoints.begin(), checkpoints.end(), op_id) - checkpoints.begin();
        };
        CHECK(write_of(r[0].as<std::int64_t>()) == write_of(r[1].as<std::int64_t>()));
    }
    CHECK(tx.exec1("SELECT count(*) FROM sluice.ops WHERE bucket = 'all[]'")[0].as<std::size_t>() == written.size());
}

TEST_CASE("a rolled-back batch leaves nothing, and a reopened writer continues the op ids") {
    const auto uri = migrated_database("bucket_rollback");
    {
        Store s(uri);
        s.put("a", {"global[]"});
        s.commit(5);
        s.put("b", {"global[]"});
        s.writer->rollback();
        s.put("c", {"global[]"});
        CHECK(s.commit(6) == 2);
        CHECK(ops_text(s.ops("global[]")) == "1 PUT todos/a {\"id\":\"a\"}\n2 PUT todos/c {\"id\":\"c\"}\n");
    }
    Store again(uri);
    CHECK(again.writer->last_op_id() == 2);
    CHECK(again.writer->durable_lsn() == Lsn(6));
    again.put("a", {});  // leaves global[]
    CHECK(again.commit(7) == 3);
    CHECK(again.ops("global[]", 2).front().op == 2);
}

TEST_CASE("ops committed by a storage write whose main commit failed are never served and are removed") {
    // The writer commits sluice.ops on its own connection just before the main transaction (the
    // totals, the checkpoint). A trigger makes the main transaction fail right after that.
    const auto uri = migrated_database("bucket_ops_in_flight");
    sluice::test::exec_sql(uri, "CREATE FUNCTION fail() RETURNS trigger LANGUAGE plpgsql AS "
                                "$$ BEGIN RAISE EXCEPTION 'the main commit fails'; END $$");
    auto stored_ops = [&] {
        pqxx::connection c(uri);
        return pqxx::nontransaction(c).exec1("SELECT count(*) FROM sluice.ops")[0].as<int>();
    };
    {
        Store s(uri);
        s.put("a", {"global[]", "by_user[\"u1\"]"});
        CHECK(s.commit(5) == 2);
        s.put("a2", {"global[]"});
        CHECK(s.commit(6) == 3);
        sluice::test::exec_sql(uri, "CREATE TRIGGER fail BEFORE DELETE ON sluice.ops_in_flight "
                                    "FOR EACH ROW EXECUTE FUNCTION fail()");
        s.put("b", {"global[]", "by_user[\"u2\"]"});  // by_user["u2"] has no total yet
        auto failed = s.writer->commit(Lsn(7));
        REQUIRE_FALSE(failed.is_ok());
        CHECK_THAT(failed.status().message(), Catch::Contains("the main commit fails"));
        REQUIRE(stored_ops() == 5);  // b's ops are there, committed
        // ... but past every checkpoint and every total: a reader at checkpoint 2 sees a's op, and
        // the checksum at 2 is the total minus a2's op alone.
        auto read = s.reader->read_ops("global[]", 0, 2, 100);
        REQUIRE(read.is_ok());
        CHECK(ops_text(read.value()) == "1 PUT todos/a {\"id\":\"a\"}\n");
        const std::vector<std::string> buckets{"global[]"};
        auto sums = s.reader->checksums(buckets, 2);
        REQUIRE(sums.is_ok());
        CHECK(sums->at("global[]").checksum == s.client_sum("global[]", 2));
        CHECK(sums->at("global[]").count == 1);
    }
    sluice::test::exec_sql(uri, "DROP TRIGGER fail ON sluice.ops_in_flight");
    Store again(uri);  // opening the writer removes them
    CHECK(stored_ops() == 3);
    CHECK(again.writer->last_op_id() == 3);
    again.put("c", {"global[]"});
    CHECK(again.commit(8) == 4);
    CHECK(ops_text(again.ops("global[]")) ==
          "1 PUT todos/a {\"id\":\"a\"}\n3 PUT todos/a2 {\"id\":\"a2\"}\n4 PUT todos/c {\"id\":\"c\"}\n");
    CHECK(again.ops("by_user[\"u2\"]").empty());
    pqxx::connection c(uri);
    CHECK(pqxx::nontransaction(c).exec1("SELECT count(*) FROM sluice.ops_in_flight")[0].as<int>() == 0);
}

TEST_CASE("rules-version clean-up removes the ops its failed storage write left even in buckets with no total") {
    // A version-2 write commits its ops, then its main commit fails (a trigger, as above): the ops
    // and their in-flight record stay, some in a bucket with no sluice.buckets row, which the
    // bucket-by-bucket removal does not find. Removing version 2's storage removes them all, and
    // none of version 1's ops (also those with op_ids inside the failed write's range).
    const auto uri = migrated_database("bucket_clean_in_flight");
    sluice::test::exec_sql(uri, "CREATE FUNCTION fail() RETURNS trigger LANGUAGE plpgsql AS "
                                "$$ BEGIN RAISE EXCEPTION 'the main commit fails'; END $$");
    pqxx::connection c(uri);
    auto count = [&](const std::string& sql) { return pqxx::nontransaction(c).exec1(sql)[0].as<int>(); };
    const sluice::storage::StoredRulesVersion v1{1, "v1", sluice::storage::VersionState::kActive, "v1_slot", "v1_pub"};
    sluice::storage::StoredRulesVersion v2{2, "v2", sluice::storage::VersionState::kBuilding, "v2_slot", "v2_pub"};
    REQUIRE(sluice::storage::add_rules_version(c, v1).is_ok());
    REQUIRE(sluice::storage::add_rules_version(c, v2).is_ok());

    Store active(uri, {.slot_name = "v1_slot", .rules_version = 1});
    active.put("a", {"1#global[]"});
    active.commit(5);
    {
        Store building(uri, {.slot_name = "v2_slot", .rules_version = 2});
        building.put("a", {"2#global[]"});
        building.commit(5);
        sluice::test::exec_sql(uri, "CREATE TRIGGER fail BEFORE DELETE ON sluice.ops_in_flight "
                                    "FOR EACH ROW EXECUTE FUNCTION fail()");
        building.put("b", {"2#global[]", "2#by_user[\"u2\"]"});  // 2#by_user["u2"] has no total yet
        auto failed = building.writer->commit(Lsn(6));
        REQUIRE_FALSE(failed.is_ok());
        CHECK_THAT(failed.status().message(), Catch::Contains("the main commit fails"));
    }
    sluice::test::exec_sql(uri, "DROP TRIGGER fail ON sluice.ops_in_flight");
    // Left behind: version 2's in-flight record and its ops (op_ids 3 and 4), one bucket without a row.
    REQUIRE(count("SELECT count(*) FROM sluice.ops_in_flight WHERE rules_version = 2 "
                  "AND first_op_id = 3 AND last_op_id = 4") == 1);
    REQUIRE(count("SELECT count(*) FROM sluice.op_chunks WHERE bucket = '2#by_user[\"u2\"]'") == 1);
    REQUIRE(count("SELECT count(*) FROM sluice.buckets WHERE bucket = '2#by_user[\"u2\"]'") == 0);
    REQUIRE(count("SELECT count(*) FROM sluice.ops WHERE left(bucket, 2) = '2#'") == 3);

    // Version 1 carries on: its op ids 2..4 overlap the failed write's range.
    active.put("b", {"1#global[]", "1#by_user[\"u2\"]"});
    active.put("c", {"1#global[]"});
    CHECK(active.commit(7) == 4);
    const auto v1_global = ops_text(active.ops("1#global[]"));
    const auto v1_user = ops_text(active.ops("1#by_user[\"u2\"]"));
    CHECK(v1_global == "1 PUT todos/a {\"id\":\"a\"}\n2 PUT todos/b {\"id\":\"b\"}\n4 PUT todos/c {\"id\":\"c\"}\n");
    CHECK(v1_user == "3 PUT todos/b {\"id\":\"b\"}\n");

    REQUIRE(sluice::storage::retire_rules_version(c, 2).is_ok());
    v2.state = sluice::storage::VersionState::kRetired;
    {
        auto removed = sluice::storage::remove_rules_version_storage(c, v2);
        INFO(removed.status().to_string());
        REQUIRE(removed.is_ok());
    }
    CHECK(count("SELECT count(*) FROM sluice.op_chunks WHERE left(bucket, 2) = '2#'") == 0);
    CHECK(count("SELECT count(*) FROM sluice.ops_in_flight WHERE rules_version = 2") == 0);
    CHECK(count("SELECT count(*) FROM sluice.buckets WHERE left(bucket, 2) = '2#'") == 0);
    CHECK(count("SELECT count(*) FROM sluice.rules_versions WHERE id = 2 AND cleaned_at IS NOT NULL") == 1);
    // Version 1 untouched: its ops, its totals.
    CHECK(ops_text(active.ops("1#global[]")) == v1_global);
    CHECK(ops_text(active.ops("1#by_user[\"u2\"]")) == v1_user);
    CHECK(count("SELECT count(*) FROM sluice.ops WHERE left(bucket, 2) = '1#'") == 4);
    const std::vector<std::string> buckets{"1#global[]", "1#by_user[\"u2\"]"};
    auto sums = active.reader->checksums(buckets, 4);
    REQUIRE(sums.is_ok());
    REQUIRE(sums->size() == 2);
    for (const auto& b : buckets) {
        INFO(b);
        CHECK(sums->at(b).checksum == active.client_sum(b, 4));
    }
    CHECK(count("SELECT count(*) FROM sluice.rules_versions WHERE id = 1 AND cleaned_at IS NULL") == 1);
}

namespace {

// A client that applied the ops of `first` up to op_id `to`, then the ops of `second` above it: its
// reduced rows ("type/id/subkey" -> data) and its checksum, computed the way a PowerSync client does
// (a CLEAR drops the bucket's rows and sets the checksum to its own).
struct Reduced {
    std::map<std::string, std::string> rows;
    std::uint32_t checksum = 0;
    bool operator==(const Reduced&) const = default;
};

Reduced reduce_bucket(const std::vector<StoredOp>& first, const std::vector<StoredOp>& second, std::int64_t to) {
    Reduced state;
    auto apply = [&](const StoredOp& op) {
        const auto key = op.object_type + "/" + op.object_id + "/" + op.subkey;
        state.checksum += op.checksum;
        if (op.op == 1) {
            state.rows[key] = *op.data;
        } else if (op.op == 2) {
            state.rows.erase(key);
        } else if (op.op == 4) {
            state.rows.clear();
            state.checksum = op.checksum;
        }
    };
    for (const auto& op : first) {
        if (op.op_id <= to) {
            apply(op);
        }
    }
    for (const auto& op : second) {
        if (op.op_id > to) {
            apply(op);
        }
    }
    return state;
}

}  // namespace

TEST_CASE("compaction keeps every bucket's checksums and every client's reduced state, for random op logs") {
    const auto uri = migrated_database("bucket_compaction");
    Store s(uri);
    pqxx::connection c(uri);
    std::mt19937 random(77);
    auto pick = [&](int n) { return std::uniform_int_distribution<int>(0, n - 1)(random); };
    const std::vector<std::string> buckets{"b[0]", "b[1]", "b[2]", "global[]"};
    // Per bucket: every op as written (never compacted), and the log as the last compaction left it.
    std::map<std::string, std::vector<StoredOp>> history;
    std::map<std::string, std::vector<StoredOp>> compacted;
    std::int64_t moved = 0;
    std::int64_t cleared = 0;
    for (int round = 0; round < 4; ++round) {
        INFO("round " << round);
        const std::int64_t written_before = s.writer->last_op_id();
        for (int step = 0; step < 300; ++step) {
            const auto id = "r" + std::to_string(pick(25));
            if (pick(4) == 0) {
                s.remove(id);
            } else {
                std::vector<std::string> in;
                if (round % 2 == 0 || pick(3) == 0) {  // odd rounds empty global[] mostly: long removable prefixes
                    in.push_back("global[]");
                }
                in.push_back(buckets[static_cast<std::size_t>(pick(3))]);  // moves between b[*]
                s.put(id, in);
            }
            if (pick(7) == 0) {
                s.commit(static_cast<std::uint64_t>(round * 1000 + step + 1));
            }
        }
        if (round % 2 == 1) {  // everything leaves b[0]: the whole bucket is removable
            for (int r = 0; r < 25; ++r) {
                s.put("r" + std::to_string(r), {"b[1]"});
            }
        }
        const auto checkpoint = s.commit(static_cast<std::uint64_t>(round * 1000 + 999));
        for (const auto& b : buckets) {
            for (const auto& op : s.ops(b, written_before)) {
                history[b].push_back(op);
                compacted[b].push_back(op);
            }
        }
        auto sums_before = s.reader->checksums(buckets, checkpoint);
        REQUIRE(sums_before.is_ok());

        auto report = sluice::storage::compact(c);
        REQUIRE(report.is_ok());
        moved += report->moved;
        cleared += report->cleared;

        auto sums_after = s.reader->checksums(buckets, checkpoint);
        REQUIRE(sums_after.is_ok());
        CHECK(sums_after.value().size() == sums_before.value().size());
        for (const auto& b : buckets) {
            INFO(b);
            const auto after = s.ops(b);
            std::uint32_t sum = 0;
            for (const auto& op : after) {
                sum += op.checksum;
            }
            CHECK(sum == sums_before.value().at(b).checksum);
            CHECK(sums_after.value().at(b).checksum == sums_before.value().at(b).checksum);
            CHECK(sums_after.value().at(b).count == static_cast<std::int64_t>(after.size()));
            // A client that synced up to any op (of the original log, or of the log as the previous
            // compaction left it), then downloads the rest after this compaction, ends where a client
            // that never saw compaction ends: same rows, same checksum.
            const auto expected = reduce_bucket(history[b], {}, INT64_MAX);
            CHECK(expected.checksum == sums_before.value().at(b).checksum);
            CHECK(reduce_bucket(after, {}, INT64_MAX) == expected);
            CHECK(reduce_bucket(history[b], after, 0) == expected);
            for (const auto& op : history[b]) {
                CHECK(reduce_bucket(history[b], after, op.op_id) == expected);
                CHECK(reduce_bucket(compacted[b], after, op.op_id) == expected);
            }
            compacted[b] = after;
        }
        // Compacting again finds nothing new.
        auto again = sluice::storage::compact(c);
        REQUIRE(again.is_ok());
        CHECK(again->moved == 0);
        CHECK(again->cleared == 0);
    }
    CHECK(moved > 0);
    CHECK(cleared > 0);
    // b[0] was emptied last: it is one CLEAR op now.
    const auto b0 = s.ops("b[0]");
    REQUIRE(b0.size() == 1);
    CHECK(b0.front().op == 4);
}

TEST_CASE("write checkpoints: delivered with the checkpoint of their transaction, one of their own when it wrote no op") {
    const auto uri = migrated_database("store_write_checkpoints");
    Store s(uri);
    s.put("t1", {"b1"});
    const auto first = s.commit(100);
    auto delivered = [&](const std::string& client, std::int64_t at) {
        auto r = s.reader->write_checkpoint("u1", client, at);
        REQUIRE(r.is_ok());
        return r.value();
    };
    CHECK_FALSE(delivered("c1", first).has_value());

    // A batch with ops: its checkpoint delivers its write checkpoints.
    s.put("t2", {"b1"});
    s.writer->add_write_checkpoint({"u1", "c1", 5});
    s.writer->add_write_checkpoint({"u1", "c2", 7});
    const auto second = s.commit(200);
    CHECK(second == first + 1);
    CHECK(delivered("c1", second) == 5);
    CHECK(delivered("c2", second) == 7);
    CHECK_FALSE(delivered("c1", first).has_value());

    // A batch without ops (a GET /write-checkpoint2.json's own transaction): a checkpoint of its own.
    s.writer->add_write_checkpoint({"u1", "c1", 9});
    const auto third = s.commit(400);
    CHECK(third == second + 1);
    CHECK(delivered("c1", third) == 9);
    CHECK_FALSE(delivered("c1", second).has_value());  // 5 is superseded by 9: dropped
    CHECK(delivered("c2", third) == 7);
    // Nothing new: no checkpoint, also for a number already recorded (a repeated checkpoint request).
    CHECK(s.commit(500) == third);
    s.writer->add_write_checkpoint({"u1", "c2", 7});
    CHECK(s.commit(600) == third);
    pqxx::connection c(uri);
    pqxx::nontransaction tx(c);
    CHECK(tx.exec1("SELECT count(*) FROM sluice.write_checkpoints WHERE client_id = 'c1'")[0].as<int>() == 1);
    CHECK(tx.exec1("SELECT lsn::text FROM sluice.write_checkpoints WHERE client_id = 'c1'")[0].as<std::string>() ==
          Lsn(400).to_string());

    // A failed batch records none of its write checkpoints; the stream sends them again.
    s.writer->add_write_checkpoint({"u1", "c1", 11});
    s.writer->rollback();
    CHECK(s.commit(700) == third);
    CHECK(delivered("c1", third) == 9);
}

TEST_CASE("write checkpoints pending from a hidden batch or an older Sluice: delivered past their LSN, in order per client") {
    const auto uri = migrated_database("store_write_checkpoints_pending");
    {
        // An older Sluice recorded (user, client, number, the source's WAL position after the
        // upload) and left delivery to the writer. Two concurrent uploads of c1 were numbered
        // against their commit order: 10 committed at 300, 11 at 150.
        pqxx::connection c(uri);
        pqxx::nontransaction(c).exec0(
            "INSERT INTO sluice.write_checkpoints (user_id, client_id, checkpoint, lsn) "
            "VALUES ('u1', 'c1', 10, '0/12C'), ('u1', 'c1', 11, '0/96')");
    }
    Store s(uri);
    auto delivered = [&](const std::string& user, const std::string& client, std::int64_t at) {
        auto r = s.reader->write_checkpoint(user, client, at);
        REQUIRE(r.is_ok());
        return r.value();
    };
    s.put("t1", {"b1"});
    const auto first = s.commit(200);
    // Past 150 but not 300: reporting 11 would tell a client waiting for 10 that its write is visible.
    CHECK_FALSE(delivered("u1", "c1", first).has_value());

    // A hidden batch (storage not yet in step with the source) keeps its write checkpoint pending.
    s.writer->add_write_checkpoint({"u2", "c", 3});
    auto hidden = s.writer->commit(Lsn(250), sluice::storage::Visibility::kHidden);
    REQUIRE(hidden.is_ok());
    CHECK_FALSE(delivered("u2", "c", first).has_value());

    // Past both: the highest number of c1, and u2's.
    const auto second = s.commit(400);
    CHECK(second == first + 1);
    CHECK(delivered("u1", "c1", second) == 11);
    CHECK(delivered("u2", "c", second) == 3);
    pqxx::connection c(uri);
    CHECK(pqxx::nontransaction(c).exec1("SELECT count(*) FROM sluice.write_checkpoints WHERE op_id IS NULL")[0].as<int>() ==
          0);
}

TEST_CASE("write checkpoints across a rules-version switch: none is lost when the new version takes over") {
    const auto uri = migrated_database("store_write_checkpoints_versions");
    pqxx::connection c(uri);
    const sluice::storage::StoredRulesVersion v1{1, "v1", sluice::storage::VersionState::kActive, "v1_slot", "v1_pub"};
    const sluice::storage::StoredRulesVersion v2{2, "v2", sluice::storage::VersionState::kBuilding, "v2_slot", "v2_pub"};
    REQUIRE(sluice::storage::add_rules_version(c, v1).is_ok());
    REQUIRE(sluice::storage::add_rules_version(c, v2).is_ok());
    Store active(uri, {.slot_name = "v1_slot", .rules_version = 1});
    Store building(uri, {.slot_name = "v2_slot", .rules_version = 2});
    auto pending = [&] {
        return pqxx::nontransaction(c).exec1("SELECT count(*) FROM sluice.write_checkpoints WHERE op_id IS NULL")[0].as<int>();
    };
    auto delivered = [&](std::int64_t at) {
        auto r = active.reader->write_checkpoint("u1", "c1", at);
        REQUIRE(r.is_ok());
        return r.value();
    };
    active.put("a", {"1#global[]"});
    active.commit(100);
    building.put("a", {"2#global[]"});
    building.commit(100);

    // Both writers stream the same transactions. The building version's writer comes first: it
    // leaves the checkpoint pending; the active one delivers it when it gets there.
    building.writer->add_write_checkpoint({"u1", "c1", 5});
    building.commit(300);
    CHECK(pending() == 1);
    active.writer->add_write_checkpoint({"u1", "c1", 5});
    const auto first = active.commit(300);
    CHECK(pending() == 0);
    CHECK(delivered(first) == 5);

    // The building version passes a checkpoint that the active one never reaches: it takes over
    // first. Its first checkpoint as the active version delivers it.
    building.writer->add_write_checkpoint({"u1", "c1", 6});
    building.commit(400);
    CHECK(pending() == 1);
    auto switched = building.writer->activate(Lsn(400));
    REQUIRE(switched.is_ok());
    const auto next = building.commit(450);
    CHECK(next > switched->op_id);
    CHECK(pending() == 0);
    CHECK(delivered(next) == 6);
    CHECK_FALSE(delivered(switched->op_id) == std::optional<std::int64_t>(6));

    // The retired writer, still running a moment, records nothing the new one has delivered.
    building.writer->add_write_checkpoint({"u1", "c1", 7});
    const auto last = building.commit(500);
    active.writer->add_write_checkpoint({"u1", "c1", 7});
    active.commit(500);
    CHECK(pending() == 0);
    CHECK(delivered(last) == 7);
}

TEST_CASE("the snapshot's read of upload checkpoints is skipped, never failing, when it cannot work") {
    // A failing statement would abort the snapshot's transaction: the guard answers false instead.
    const auto uri = migrated_database("store_upload_checkpoints_readable");
    const auto readable = [](const std::string& conninfo) {
        pqxx::connection c(conninfo);
        return pqxx::nontransaction(c).exec1(sluice::storage::kUploadCheckpointsReadableSql)[0].as<std::string>();
    };
    CHECK(readable(uri) == "true");
    sluice::test::exec_sql(uri, "DROP ROLE IF EXISTS sluice_no_schema; CREATE ROLE sluice_no_schema LOGIN");
    CHECK(readable(uri + " user=sluice_no_schema") == "false");  // no USAGE on schema sluice
    sluice::test::exec_sql(uri, "ALTER TABLE sluice.uploads DROP COLUMN write_checkpoint");
    CHECK(readable(uri) == "false");  // made by an older Sluice
    sluice::test::exec_sql(uri, "DROP TABLE sluice.uploads");
    CHECK(readable(uri) == "false");
    {
        pqxx::connection c(uri);
        pqxx::work tx(c);
        tx.exec0("CREATE TABLE sluice.uploads (user_id text, client_id text, write_checkpoint bigint)");
        tx.exec0("INSERT INTO sluice.uploads VALUES ('u1', 'c1', 5), ('u1', 'c1', 9), ('u1', 'c2', NULL), "
                 "('u2', 'c1', 3)");
        const auto rows = tx.exec(sluice::storage::kSnapshotWriteCheckpointsSql + " ORDER BY 1, 2");
        REQUIRE(rows.size() == 2);  // each client's highest; a record without a number is no checkpoint
        CHECK(rows[0][2].as<std::string>() == "9");
        CHECK(rows[1][0].as<std::string>() == "u2");
    }
}

TEST_CASE("write-checkpoint messages: the format both sides use, and what is not one") {
    using sluice::storage::parse_write_checkpoint_message;
    using sluice::storage::WriteCheckpoint;
    CHECK(parse_write_checkpoint_message(R"(["u1", "c\"1", 42])") == WriteCheckpoint{"u1", "c\"1", 42});
    CHECK(parse_write_checkpoint_message(R"(["", "", 9223372036854775807])") ==
          WriteCheckpoint{"", "", INT64_MAX});
    for (const char* bad : {"", "[]", R"(["u", "c"])", R"(["u", "c", "5"])", R"(["u", 1, 5])", R"(["u", "c", 5, 6])",
                            R"({"u": "c"})", R"(["u", "c", 1.5])", "not json"}) {
        INFO(bad);
        CHECK_FALSE(parse_write_checkpoint_message(bad).has_value());
    }
    // What Postgres builds from the SQL emit_write_checkpoint_sql gives, parsed back.
    const auto uri = migrated_database("store_write_checkpoint_message");
    pqxx::connection c(uri);
    pqxx::work tx(c);
    CHECK(sluice::storage::emit_write_checkpoint_sql("$1", "$2", "$3")
              .starts_with("pg_logical_emit_message(true, 'sluice_write_checkpoint', "));
    const auto text =
        tx.exec_params1("SELECT " + sluice::storage::write_checkpoint_content_sql("$1", "$2", "$3"), "u\t\"1\"", "c\\é", 77)[0]
            .as<std::string>();
    CHECK(parse_write_checkpoint_message(text) == WriteCheckpoint{"u\t\"1\"", "c\\é", 77});
}
