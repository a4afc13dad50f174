// SyncSession without sockets: exact lines for an initial sync, live diffs, resume, buckets added
// and removed by grants and revokes, priorities, batching, limits, keepalive and token expiry. The
// client side is protocol::wire::ClientState, which verifies every checksum.
#include <algorithm>

#include <catch2/catch.hpp>

#include "protocol/wire/client_state.h"
#include "protocol/wire/line_decoder.h"
#include "server/sync/sync_session.h"
#include "tests/server/sync/memory_storage.h"
#include "tests/server/sync/session_driver.h"

namespace {

using sluice::protocol::ErrorCode;
using sluice::protocol::wire::ClientState;
using sluice::sync::SessionLimits;
using sluice::sync::SessionState;
using sluice::sync::SyncSession;
using sluice::test::drain;

const char* kRules = R"(
bucket_definitions:
  settings:
    priority: 1
    data:
      - SELECT * FROM settings
  user_lists:
    parameters:
      - SELECT id AS list_id FROM lists WHERE lists.owner_id = request.user_id()
      - SELECT list_id FROM shares WHERE shares.user_id = request.user_id()
    data:
      - SELECT * FROM lists WHERE lists.id = bucket.list_id
      - SELECT * FROM todos WHERE todos.list_id = bucket.list_id
)";

std::shared_ptr<const sluice::config::rules::RuleSet> rules() {
    auto compiled = sluice::config::rules::RuleSet::compile(kRules, "rules.yaml", {"1#"});
    REQUIRE(compiled.rules);
    return compiled.rules;
}

sluice::auth::VerifiedToken token(const std::string& user, std::int64_t expires_at = 10'000) {
    return {user, R"({"sub":")" + user + R"("})", expires_at};
}

std::unique_ptr<SyncSession> session(const std::string& user, sluice::protocol::wire::SyncRequest request = {},
                                     SessionLimits limits = {}) {
    auto s = SyncSession::create(rules(), token(user), std::move(request), limits, 1000);
    REQUIRE(s);
    return std::move(s).value();
}

void seed(sluice::test::MemoryStorage& storage) {
    storage.put("settings", R"({"id":"s1","theme":"dark"})");
    storage.put("lists", R"({"id":"l1","owner_id":"u1","name":"Groceries"})");
    storage.put("lists", R"({"id":"l2","owner_id":"u2","name":"Work"})");
    storage.put("todos", R"({"id":"t1","list_id":"l1","description":"Milk"})");
    storage.put("todos", R"({"id":"t2","list_id":"l2","description":"Report"})");
}

}  // namespace

TEST_CASE("initial sync: exact lines, priority 1 first with partial_checkpoint_complete") {
    auto r = rules();
    sluice::test::MemoryStorage storage(r);
    seed(storage);
    auto s = session("u1");
    ClientState client;
    auto lines = drain(*s, storage, storage.last_op_id(), client);
    std::vector<std::string> expected{
        R"({"checkpoint":{"last_op_id":"5","buckets":[{"bucket":"1#settings[]","checksum":)" +
            std::to_string(static_cast<std::int32_t>(sluice::protocol::wire::put_checksum("settings", "s1", R"({"id":"s1","theme":"dark"})"))) +
            R"(,"count":1,"priority":1,"subscriptions":[{"default":0}]},{"bucket":"1#user_lists[\"l1\"]","checksum":)",
    };
    REQUIRE(lines.size() == 5);
    CHECK(lines[0].rfind(expected[0], 0) == 0);
    CHECK(lines[0].find(R"("streams":[{"name":"settings","is_default":true,"errors":[]},{"name":"user_lists","is_default":true,"errors":[]}])") != std::string::npos);
    CHECK(lines[1].rfind(R"({"data":{"bucket":"1#settings[]","after":"0","has_more":false,"data":[{"op_id":"1","op":"PUT","object_type":"settings","object_id":"s1","checksum":)", 0) == 0);
    CHECK(lines[2] == R"({"partial_checkpoint_complete":{"last_op_id":"5","priority":1}})");
    CHECK(lines[3].rfind(R"({"data":{"bucket":"1#user_lists[\"l1\"]","after":"0","has_more":false,"data":[{"op_id":"2",)", 0) == 0);
    CHECK(lines[3].find(R"("op_id":"4")") != std::string::npos);
    CHECK(lines[4] == R"({"checkpoint_complete":{"last_op_id":"5"}})");
    CHECK(client.last_outcome() == ClientState::Outcome::kApplied);
    CHECK(client.row_count() == 3);
    CHECK_FALSE(client.row("todos", "t2"));  // u2's list: never sent
    CHECK(s->state() == SessionState::kWaiting);
    CHECK_FALSE(s->has_work(storage.last_op_id()));
}

TEST_CASE("live changes arrive as checkpoint_diff + data, other users' changes send nothing") {
    auto r = rules();
    sluice::test::MemoryStorage storage(r);
    seed(storage);
    auto s = session("u1");
    ClientState client;
    (void)drain(*s, storage, storage.last_op_id(), client);

    storage.put("todos", R"({"id":"t3","list_id":"l1","description":"Eggs"})");
    auto lines = drain(*s, storage, storage.last_op_id(), client);
    REQUIRE(lines.size() == 3);
    CHECK(lines[0].rfind(R"({"checkpoint_diff":{"last_op_id":"6","removed_buckets":[],"updated_buckets":[{"bucket":"1#user_lists[\"l1\"]")", 0) == 0);
    CHECK(lines[1].rfind(R"({"data":{"bucket":"1#user_lists[\"l1\"]","after":"4","has_more":false,"data":[{"op_id":"6")", 0) == 0);
    CHECK(lines[2] == R"({"checkpoint_complete":{"last_op_id":"6"}})");
    CHECK(client.row("todos", "t3"));

    storage.put("todos", R"({"id":"t2","list_id":"l2","description":"Report v2"})");  // u2's list
    CHECK(drain(*s, storage, storage.last_op_id(), client).empty());
    CHECK(s->sent_checkpoint() == storage.last_op_id());

    storage.put("todos", R"({"id":"t1","list_id":"l1","description":"Oat milk"})");  // update
    storage.remove("todos", "t3");                                                    // delete
    lines = drain(*s, storage, storage.last_op_id(), client);
    REQUIRE(lines.size() == 3);
    CHECK(client.last_outcome() == ClientState::Outcome::kApplied);
    CHECK(client.row("todos", "t1")->find("Oat milk") != std::string::npos);
    CHECK_FALSE(client.row("todos", "t3"));
}

TEST_CASE("a resume sends only the ops the client is missing") {
    auto r = rules();
    sluice::test::MemoryStorage storage(r);
    seed(storage);
    ClientState client;
    {
        auto s = session("u1");
        (void)drain(*s, storage, storage.last_op_id(), client);
    }
    storage.put("todos", R"({"id":"t3","list_id":"l1","description":"Eggs"})");
    storage.put("settings", R"({"id":"s2","theme":"light"})");
    sluice::protocol::wire::SyncRequest request;
    request.buckets = client.bucket_requests();
    auto s = session("u1", request);
    auto lines = drain(*s, storage, storage.last_op_id(), client);
    REQUIRE(lines.size() == 5);
    CHECK(lines[0].rfind(R"({"checkpoint":{"last_op_id":"7")", 0) == 0);
    CHECK(lines[1].rfind(R"({"data":{"bucket":"1#settings[]","after":"1","has_more":false,"data":[{"op_id":"7")", 0) == 0);
    CHECK(lines[3].rfind(R"({"data":{"bucket":"1#user_lists[\"l1\"]","after":"4","has_more":false,"data":[{"op_id":"6")", 0) == 0);
    CHECK(client.last_outcome() == ClientState::Outcome::kApplied);
    CHECK(client.row_count() == 5);

    // Up to date: the checkpoint and its completion, no data.
    ClientState again = client;
    request.buckets = client.bucket_requests();
    auto s2 = session("u1", request);
    lines = drain(*s2, storage, storage.last_op_id(), again);
    CHECK(lines.size() == 2);
    CHECK(again.last_outcome() == ClientState::Outcome::kApplied);
}

TEST_CASE("grants and revokes add and remove buckets live") {
    auto r = rules();
    sluice::test::MemoryStorage storage(r);
    seed(storage);
    auto s = session("u1");
    ClientState client;
    (void)drain(*s, storage, storage.last_op_id(), client);
    CHECK_FALSE(client.row("lists", "l2"));

    storage.put("shares", R"({"id":"sh1","list_id":"l2","user_id":"u1"})");
    auto lines = drain(*s, storage, storage.last_op_id(), client);
    REQUIRE_FALSE(lines.empty());
    CHECK(lines[0].find(R"("updated_buckets":[{"bucket":"1#user_lists[\"l2\"]")") != std::string::npos);
    CHECK(client.row("lists", "l2"));
    CHECK(client.row("todos", "t2"));

    storage.remove("shares", "sh1");
    lines = drain(*s, storage, storage.last_op_id(), client);
    REQUIRE(lines.size() == 2);
    CHECK(lines[0].find(R"("removed_buckets":["1#user_lists[\"l2\"]"],"updated_buckets":[])") != std::string::npos);
    CHECK(lines[1] == R"({"checkpoint_complete":{"last_op_id":")" + std::to_string(storage.last_op_id()) + R"("}})");
    CHECK_FALSE(client.row("lists", "l2"));
    CHECK_FALSE(client.row("todos", "t2"));
    CHECK(client.row("lists", "l1"));
}

TEST_CASE("a bucket the client holds but may no longer read is left out of the first checkpoint") {
    auto r = rules();
    sluice::test::MemoryStorage storage(r);
    seed(storage);
    sluice::protocol::wire::SyncRequest request;
    request.buckets = {{"1#user_lists[\"l2\"]", 3}};
    auto s = session("u1", request);
    ClientState client;
    client.restore_bucket("1#user_lists[\"l2\"]", 3, 0);
    auto lines = drain(*s, storage, storage.last_op_id(), client);
    CHECK(lines[0].find("l2") == std::string::npos);
    CHECK(client.buckets().count("1#user_lists[\"l2\"]") == 0);
}

TEST_CASE("data comes in bounded batches with has_more") {
    auto r = rules();
    sluice::test::MemoryStorage storage(r);
    for (int i = 0; i < 5; ++i) {
        storage.put("settings", R"({"id":"s)" + std::to_string(i) + R"(","v":1})");
    }
    SessionLimits limits;
    limits.ops_per_line = 2;
    limits.step_bytes = 1;  // one data line per step
    auto s = session("u9", {}, limits);
    ClientState client;
    std::vector<std::string> out;
    REQUIRE(s->step(storage, storage.last_op_id(), out).is_ok());
    REQUIRE(out.size() == 1);  // the checkpoint is over the step's budget: the step stops there
    REQUIRE(client.apply_line(out[0]).is_ok());
    auto rest = drain(*s, storage, storage.last_op_id(), client);
    REQUIRE(rest.size() == 4);
    CHECK(rest[0].find(R"("after":"0","has_more":true)") != std::string::npos);
    CHECK(rest[0].find(R"("next_after":"2")") != std::string::npos);
    CHECK(rest[1].find(R"("after":"2","has_more":true)") != std::string::npos);
    CHECK(rest[2].find(R"("after":"4","has_more":false)") != std::string::npos);
    CHECK(client.row_count() == 5);
    CHECK(client.last_outcome() == ClientState::Outcome::kApplied);
}

TEST_CASE("a data line stops growing at limits.line_bytes, so large rows come a few per line") {
    auto r = rules();
    sluice::test::MemoryStorage storage(r);
    const std::string big(40'000, 'x');
    for (int i = 0; i < 10; ++i) {
        storage.put("settings", R"({"id":"s)" + std::to_string(i) + R"(","v":")" + big + R"("})");
    }
    SessionLimits limits;
    limits.line_bytes = 100'000;  // 3 rows of 40 KB pass it
    auto s = session("u9", {}, limits);
    ClientState client;
    auto lines = drain(*s, storage, storage.last_op_id(), client);
    std::vector<std::size_t> ops_per_line;
    for (const auto& line : lines) {
        if (line.starts_with(R"({"data":)")) {
            std::size_t n = 0;
            for (auto at = line.find(R"("op_id")"); at != std::string::npos; at = line.find(R"("op_id")", at + 1)) {
                ++n;
            }
            ops_per_line.push_back(n);
            CHECK(line.size() < 200'000);
        }
    }
    CHECK(ops_per_line == std::vector<std::size_t>{3, 3, 3, 1});
    CHECK(client.row_count() == 10);
    CHECK(client.last_outcome() == ClientState::Outcome::kApplied);

    // A single row over the limit still goes, alone.
    limits.line_bytes = 10;
    auto one = session("u8", {}, limits);
    ClientState other;
    lines = drain(*one, storage, storage.last_op_id(), other);
    CHECK(other.row_count() == 10);
    CHECK(std::count_if(lines.begin(), lines.end(), [](const std::string& l) { return l.starts_with(R"({"data":)"); }) == 10);
}

TEST_CASE("more buckets than limits.max_buckets_per_connection is a clear error") {
    auto r = rules();
    sluice::test::MemoryStorage storage(r);
    seed(storage);
    storage.put("shares", R"({"id":"sh1","list_id":"l2","user_id":"u1"})");
    SessionLimits limits;
    limits.max_buckets = 2;
    auto s = session("u1", {}, limits);
    std::vector<std::string> out;
    auto status = s->step(storage, storage.last_op_id(), out);
    CHECK(status.code() == ErrorCode::kRulesTooManyBuckets);
    CHECK(out.empty());
}

TEST_CASE("keepalive every 20 s, token_expires_in 0 at expiry, and a token refresh") {
    auto s = SyncSession::create(rules(), token("u1", 1050), {}, {}, 1000).value();
    std::vector<std::string> out;
    CHECK(s->on_clock(1000, out) == 20);
    CHECK(out.empty());
    CHECK(s->on_clock(1020, out) == 20);
    REQUIRE(out.size() == 1);
    CHECK(out[0] == R"({"token_expires_in":30})");
    out.clear();
    REQUIRE(s->replace_token(token("u1", 2000), 1030, out).is_ok());
    CHECK(out.back() == R"({"token_expires_in":970})");
    CHECK(s->replace_token(token("u2", 3000), 1030, out).code() == ErrorCode::kAuthInvalid);
    out.clear();
    (void)s->on_clock(2000, out);
    REQUIRE(out.size() == 1);
    CHECK(out[0] == R"({"token_expires_in":0})");
    CHECK(s->state() == SessionState::kEnded);
    CHECK_FALSE(s->has_work(1'000'000));
}

TEST_CASE("write checkpoints: the client's newest one rides on each checkpoint, alone as an empty diff") {
    sluice::test::MemoryStorage storage(rules());
    seed(storage);
    sluice::protocol::wire::SyncRequest request;
    request.client_id = "c1";
    auto s = session("u1", request);
    ClientState client;
    auto lines = drain(*s, storage, storage.last_op_id(), client);
    REQUIRE_FALSE(lines.empty());
    CHECK(lines.front().find("write_checkpoint") == std::string::npos);  // none yet

    // Another client's and another user's write checkpoints are not this client's.
    (void)storage.pass_write_checkpoint("u1", "c2", 3);
    (void)storage.pass_write_checkpoint("u2", "c1", 4);
    const auto passed = storage.pass_write_checkpoint("u1", "c1", 7);
    lines = drain(*s, storage, passed, client);
    REQUIRE(lines.size() == 2);
    CHECK(lines[0] == R"({"checkpoint_diff":{"last_op_id":")" + std::to_string(passed) +
                          R"(","write_checkpoint":"7","removed_buckets":[],"updated_buckets":[]}})");
    CHECK(lines[1] == R"({"checkpoint_complete":{"last_op_id":")" + std::to_string(passed) + R"("}})");
    CHECK(client.write_checkpoint() == 7u);

    // A data change keeps carrying it; an unchanged checkpoint with nothing new sends nothing.
    // Neither reads this client's write checkpoint again: none was delivered since.
    const auto reads = storage.write_checkpoint_reads;
    const auto changed = storage.put("todos", R"({"id":"t3","list_id":"l1","description":"Eggs"})");
    lines = drain(*s, storage, changed, client);
    REQUIRE_FALSE(lines.empty());
    CHECK(lines[0].find(R"("write_checkpoint":"7")") != std::string::npos);
    const auto other = storage.put("todos", R"({"id":"t9","list_id":"l2","description":"not mine"})");
    CHECK(drain(*s, storage, other, client).empty());
    CHECK(storage.write_checkpoint_reads == reads);
    // Another client's delivery makes it look again (and find its own unchanged).
    const auto elsewhere = storage.pass_write_checkpoint("u2", "c9", 1);
    CHECK(drain(*s, storage, elsewhere, client).empty());
    CHECK(storage.write_checkpoint_reads == reads + 1);

    // A new full checkpoint (reconnect) carries the newest one at once.
    auto fresh = session("u1", request);
    ClientState again;
    lines = drain(*fresh, storage, storage.last_op_id(), again);
    CHECK(lines.front().find(R"("write_checkpoint":"7")") != std::string::npos);
}
