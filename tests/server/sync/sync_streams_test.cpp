// SyncSession with Sync Streams: the checkpoint's streams and each bucket's subscriptions, a
// subscription narrowing what the rules allow (never widening it), live subscribe and unsubscribe
// (update_streams) answered with a full checkpoint that sends only what the client lacks, a member
// removed from a project, override_priority, and the per-connection subscription limit. The client
// side is protocol::wire::ClientState, which verifies every checksum.
#include <catch2/catch.hpp>

#include "protocol/wire/client_state.h"
#include "server/sync/sync_session.h"
#include "tests/server/sync/memory_storage.h"
#include "tests/server/sync/session_driver.h"

namespace {

using sluice::protocol::wire::ClientState;
using sluice::protocol::wire::StreamsRequest;
using sluice::protocol::wire::StreamSubscription;
using sluice::sync::SessionLimits;
using sluice::sync::SyncSession;
using sluice::test::MemoryStorage;

const char* kRules = R"(
config:
  edition: 3
with:
  my_projects: SELECT project_id FROM members WHERE user_id = auth.user_id()
streams:
  profile:
    auto_subscribe: true
    query: SELECT * FROM users WHERE id = auth.user_id()
  project_tasks:
    priority: 2
    query: SELECT * FROM tasks WHERE project_id = subscription.parameter('project') AND project_id IN my_projects
)";

std::shared_ptr<const sluice::config::rules::RuleSet> rules() {
    auto compiled = sluice::config::rules::RuleSet::compile(kRules, "streams.yaml", {"1#"});
    for (const auto& d : compiled.diagnostics) {
        UNSCOPED_INFO(d.message);
    }
    REQUIRE(compiled.rules);
    return compiled.rules;
}

StreamSubscription project(const std::string& id, std::optional<std::int32_t> priority = std::nullopt) {
    return {"project_tasks", R"({"project":")" + id + R"("})", priority};
}

std::unique_ptr<SyncSession> session(const std::string& user, std::vector<StreamSubscription> subscriptions,
                                     SessionLimits limits = {}) {
    sluice::protocol::wire::SyncRequest request;
    request.streams = StreamsRequest{true, std::move(subscriptions)};
    auto s = SyncSession::create(rules(), {user, R"({"sub":")" + user + R"("})", 10'000}, std::move(request), limits,
                                 1000);
    REQUIRE(s);
    return std::move(s).value();
}

// Runs the session to the storage's last checkpoint; every checkpoint it completes verifies.
std::vector<std::string> drain(SyncSession& s, MemoryStorage& storage, ClientState& client) {
    auto lines = sluice::test::drain(s, storage, storage.last_op_id(), client);
    CHECK(client.last_outcome() == ClientState::Outcome::kApplied);
    return lines;
}

void seed(MemoryStorage& storage) {
    storage.put("users", R"({"id":"u1","name":"Ann"})");
    storage.put("users", R"({"id":"u2","name":"Bob"})");
    storage.put("members", R"({"id":"m1","project_id":"p1","user_id":"u1"})");
    storage.put("members", R"({"id":"m2","project_id":"p2","user_id":"u2"})");
    storage.put("members", R"({"id":"m3","project_id":"p3","user_id":"u1"})");
    storage.put("tasks", R"({"id":"t1","project_id":"p1","title":"plan"})");
    storage.put("tasks", R"({"id":"t2","project_id":"p2","title":"secret"})");
    storage.put("tasks", R"({"id":"t3","project_id":"p3","title":"ship"})");
}

std::set<std::string> tasks(const ClientState& client) {
    std::set<std::string> ids;
    if (auto it = client.tables().find("tasks"); it != client.tables().end()) {
        for (const auto& [id, row] : it->second) {
            ids.insert(id);
        }
    }
    return ids;
}

}  // namespace

TEST_CASE("streams: the checkpoint lists the streams, each bucket says which subscription it serves") {
    MemoryStorage storage(rules());
    seed(storage);
    // p2 is Bob's project: Ann's subscription to it yields nothing of it. "nope" is no stream.
    auto s = session("u1", {project("p1"), project("p2"), {"nope", "{}", std::nullopt}});
    ClientState client;
    auto lines = drain(*s, storage, client);
    REQUIRE(!lines.empty());
    const auto& checkpoint = lines[0];
    INFO(checkpoint);
    CHECK(checkpoint.find(R"("streams":[{"name":"profile","is_default":true,"errors":[]},)"
                          R"({"name":"project_tasks","is_default":false,"errors":[]},)"
                          R"({"name":"nope","is_default":false,"errors":[{"subscription":2,)") != std::string::npos);
    CHECK(checkpoint.find(R"({"bucket":"1#profile|0[\"u1\"]",)") != std::string::npos);
    CHECK(checkpoint.find(R"("priority":3,"subscriptions":[{"default":0}]})") != std::string::npos);
    CHECK(checkpoint.find(R"({"bucket":"1#project_tasks|0[\"p1\"]",)") != std::string::npos);
    CHECK(checkpoint.find(R"("priority":2,"subscriptions":[{"sub":0}]})") != std::string::npos);
    CHECK(checkpoint.find("p2") == std::string::npos);
    CHECK(tasks(client) == std::set<std::string>{"t1"});
    CHECK(client.row("users", "u1"));
    CHECK_FALSE(client.row("users", "u2"));
}

TEST_CASE("streams: subscribe and unsubscribe live, only what the client lacks is sent") {
    MemoryStorage storage(rules());
    seed(storage);
    auto s = session("u1", {project("p1")});
    ClientState client;
    (void)drain(*s, storage, client);
    CHECK(tasks(client) == std::set<std::string>{"t1"});

    // Subscribe to p3 as well: a full checkpoint at the same op_id, then data for p3 alone.
    s->update_streams({true, {project("p1"), project("p3", 0)}});
    auto lines = drain(*s, storage, client);
    REQUIRE(lines.size() == 3);
    CHECK(lines[0].rfind(R"({"checkpoint":{"last_op_id":")" + std::to_string(storage.last_op_id()) + "\"", 0) == 0);
    CHECK(lines[0].find(R"("priority":0,"subscriptions":[{"sub":1}])") != std::string::npos);  // override_priority
    CHECK(lines[1].rfind(R"({"data":{"bucket":"1#project_tasks|0[\"p3\"]","after":"0")", 0) == 0);
    CHECK(lines[2].find("checkpoint_complete") != std::string::npos);
    CHECK(tasks(client) == std::set<std::string>{"t1", "t3"});

    // A change to p1 while subscribed to both: a diff as usual.
    storage.put("tasks", R"({"id":"t4","project_id":"p1","title":"review"})");
    (void)drain(*s, storage, client);
    CHECK(tasks(client) == std::set<std::string>{"t1", "t3", "t4"});

    // Unsubscribe from p1: the next full checkpoint leaves its bucket out; the client drops its rows.
    s->update_streams({true, {project("p3")}});
    lines = drain(*s, storage, client);
    REQUIRE(lines.size() == 2);  // the checkpoint and checkpoint_complete: nothing to download
    CHECK(lines[0].find("p1") == std::string::npos);
    CHECK(tasks(client) == std::set<std::string>{"t3"});
    CHECK(client.row("users", "u1"));  // the default stream stays

    // Without the defaults, only the subscriptions.
    s->update_streams({false, {project("p3")}});
    (void)drain(*s, storage, client);
    CHECK_FALSE(client.row("users", "u1"));
    CHECK(tasks(client) == std::set<std::string>{"t3"});
}

TEST_CASE("streams: a subscription change in the middle of a download abandons it and resumes per bucket") {
    MemoryStorage storage(rules());
    seed(storage);
    for (int i = 0; i < 50; ++i) {
        storage.put("tasks", R"({"id":"big)" + std::to_string(i) + R"(","project_id":"p1","title":"x"})");
    }
    SessionLimits limits;
    limits.ops_per_line = 10;
    limits.step_bytes = 1;  // one line per step
    auto s = session("u1", {project("p1")}, limits);
    ClientState client;
    for (int i = 0; i < 3; ++i) {  // the checkpoint, then two data lines of p1
        std::vector<std::string> out;
        REQUIRE(s->step(storage, storage.last_op_id(), out).is_ok());
        REQUIRE(out.size() == 1);
        REQUIRE(client.apply_line(out[0]).is_ok());
    }
    s->update_streams({true, {project("p1"), project("p3")}});
    auto lines = drain(*s, storage, client);
    // p1 continues after the ops already sent (no op is sent twice), p3 starts from 0.
    CHECK(std::count_if(lines.begin(), lines.end(), [](const std::string& l) {
              return l.find(R"("bucket":"1#project_tasks|0[\"p1\"]","after":"0")") != std::string::npos;
          }) == 0);
    CHECK(tasks(client).size() == 52);  // t1, big0..49, t3
}

TEST_CASE("streams: a member removed from a project loses its bucket at the next checkpoint") {
    MemoryStorage storage(rules());
    seed(storage);
    auto s = session("u1", {project("p1"), project("p3")});
    ClientState client;
    (void)drain(*s, storage, client);
    CHECK(tasks(client) == std::set<std::string>{"t1", "t3"});
    storage.remove("members", "m3");
    auto lines = drain(*s, storage, client);
    REQUIRE(!lines.empty());
    CHECK(lines[0].find(R"("removed_buckets":["1#project_tasks|0[\"p3\"]"])") != std::string::npos);
    CHECK(tasks(client) == std::set<std::string>{"t1"});
    // Added back: the bucket returns with its rows.
    storage.put("members", R"({"id":"m3","project_id":"p3","user_id":"u1"})");
    (void)drain(*s, storage, client);
    CHECK(tasks(client) == std::set<std::string>{"t1", "t3"});
}

TEST_CASE("streams: subscriptions past limits.max_subscriptions_per_connection are reported, not resolved") {
    MemoryStorage storage(rules());
    seed(storage);
    SessionLimits limits;
    limits.max_subscriptions = 1;
    auto s = session("u1", {project("p1"), project("p3")}, limits);
    ClientState client;
    auto lines = drain(*s, storage, client);
    INFO(lines[0]);
    CHECK(lines[0].find(R"({"name":"project_tasks","is_default":false,"errors":[{"subscription":1,"message":"SL5016: )") !=
          std::string::npos);
    CHECK(tasks(client) == std::set<std::string>{"t1"});
}
