// The serving stack for HTTP tests (see stack.h).
#include "tests/server/http/stack.h"

#include <fstream>
#include <sstream>

#include <pqxx/pqxx>

#include "migrations/migrations.h"
#include "protocol/wire/request.h"
#include "server/auth/token_verifier.h"
#include "server/storage/migrator.h"
#include "tests/support/pg.h"

namespace sluice::test {
namespace {

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

}  // namespace

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

const TestKey& stack_key() {
    static const auto k = TestKey::hmac("HS256", "test-secret-0123456789abcdef", "k1");
    return k;
}

std::string token_for(const std::string& user, std::int64_t lifetime) {
    return mint_token(stack_key(), user, unix_now(), lifetime, "sluice-test");
}

Stack::Stack(const std::string& name, http::ServerOptions options, const std::string& rules_yaml) {
    source = fresh_database(name + "_src");
    storage = fresh_database(name + "_sto");
    const auto dir = std::string(SLUICE_SOURCE_DIR) + "/deploy/demo/";
    exec_sql(source, read_file(dir + "schema.sql"));
    exec_sql(source,
             "DELETE FROM list_shares; DELETE FROM todos; DELETE FROM lists; DELETE FROM users;"
             "INSERT INTO users VALUES ('u1','User 1'),('u2','User 2');"
             "INSERT INTO lists (id, owner_id, name) VALUES ('l1','u1','Groceries'),('l2','u2','Work');"
             "INSERT INTO todos (id, list_id, description) VALUES ('t1','l1','Milk'),('t2','l2','Report')");
    {
        pqxx::connection c(storage);
        REQUIRE(storage::migrate(c, migrations::embedded()).is_ok());
    }
    auto compiled = config::rules::RuleSet::compile(rules_yaml.empty() ? read_file(dir + "sync-rules.yaml") : rules_yaml,
                                                    "sync-rules.yaml", {"1#"});
    for (const auto& d : compiled.diagnostics) {
        UNSCOPED_INFO(d.message);
    }
    REQUIRE(compiled.rules);
    rules = compiled.rules;
    app::ReplicatorConfig rc;
    rc.source_conninfo = source;
    rc.storage_conninfo = storage;
    rc.slot = name + "_slot";
    m_slot = rc.slot;
    rc.publication = name + "_pub";
    rc.rules = rules;
    replicator = std::make_unique<app::Replicator>(rc);
    replicator_thread = std::thread([this] { (void)replicator->run(stop); });
    listener = std::make_unique<storage::CheckpointListener>(
        storage, [hub = hub](const storage::ActiveCheckpoint& c) { hub->publish(c.op_id); });

    config::AuthConfig auth;
    auth.audience = {"sluice-test"};
    auth.keys = {{"k1", "HS256", stack_key().secret(), ""}};
    auth.leeway_seconds = 60;
    auth.max_lifetime_seconds = 86400;
    auto verifier = auth::TokenVerifier::create(auth, unix_now);
    REQUIRE(verifier);
    http::ServerDeps deps;
    deps.rules = std::make_shared<const sync::RulesSource>(rules);
    deps.verifier = std::move(verifier).value();
    deps.storage = sync::StoragePool::for_conninfo(storage);
    deps.hub = hub;
    options.port = 0;
    auto started = http::Server::start(options, deps);
    REQUIRE(started);
    server = std::move(started).value();
    wait_until([&] { return hub->latest() > 0; }, "the first checkpoint");
}

Stack::~Stack() {
    server.reset();
    listener.reset();
    stop = true;
    replicator_thread.join();
    // Free the replication slot (the suite's cluster has max_replication_slots for its tests at once,
    // not for every slot ever made); its WAL sender may take a moment to exit.
    for (int attempt = 0; attempt < 100; ++attempt) {
        try {
            exec_sql(source, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '" +
                                 m_slot + "'");
            return;
        } catch (const std::exception&) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the slot is still active: retry, bounded
        }
    }
}

std::string request_body(const protocol::wire::ClientState& client) {
    protocol::wire::SyncRequest request;
    request.buckets = client.bucket_requests();
    request.raw_data = true;
    request.client_id = "c1";
    std::string out;
    protocol::wire::encode_sync_request(out, request);
    return out;
}

}  // namespace sluice::test
