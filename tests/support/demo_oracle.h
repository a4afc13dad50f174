// The demo schema's oracle (deploy/demo: users, lists, todos, list_shares): a seeded random workload
// that moves rows between buckets and grants and revokes access, and the comparison of every user's
// client view (reduced from bucket storage) with the demo rules' queries run on the source.
#pragma once

#include <map>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <pqxx/connection>
#include <pqxx/transaction>

#include "config/rules/rule_set.h"
#include "protocol/wire/client_state.h"
#include "tests/support/client_view.h"

namespace sluice::test {

// The users the workload writes for.
extern const std::vector<std::string> kDemoUsers;

// deploy/demo/schema.sql plus the workload's users, applied to `source_uri`.
void create_demo_schema(const std::string& source_uri);
// deploy/demo/sync-rules.yaml compiled with the "1#" prefix storage uses.
[[nodiscard]] std::shared_ptr<const config::rules::RuleSet> demo_rules();

// Random writes to the demo schema; every statement is valid whatever state the tables are in.
class DemoWorkload {
public:
    DemoWorkload(const std::string& uri, unsigned seed);
    // The same over other users (they must exist in the users table).
    DemoWorkload(const std::string& uri, unsigned seed, std::vector<std::string> users);
    // `transactions` transactions of 1 to 4 statements each.
    void run(int transactions);
    // A user whose profile bucket marks "everything before this is replicated".
    void insert_user(const std::string& id);

private:
    int pick(int lo, int hi);
    std::string user();
    void one(pqxx::work& tx);

    pqxx::connection m_connection;
    std::mt19937 m_random;
    std::vector<std::string> m_users;
    int m_counter = 0;
};

// Waits (polling, up to `seconds`) until storage has a checkpoint covering `marker`'s profile, in
// bucket `<profile_bucket>["<marker>"]` (the rules version's prefix and the profile definition).
[[nodiscard]] bool wait_for_marker(const std::string& storage_uri, const std::string& marker, int seconds = 120,
                                   const std::string& profile_bucket = "1#own_profile");

// (table, id) -> the fields the oracle compares ("name|owner_id" for lists, "description|list_id" for
// todos, "name" for users).
using OracleRows = std::map<std::pair<std::string, std::string>, std::string>;
// The demo rules' queries run directly against the source: what user `user` must hold.
[[nodiscard]] OracleRows rules_rows(pqxx::connection& source, const std::string& user);
// The same fields from rows a client holds (object_type, object_id) -> row JSON.
[[nodiscard]] OracleRows project_rows(const ClientRows& client);
// "" when they are equal; otherwise what differs, one line each, prefixed with `user`.
[[nodiscard]] std::string compare_rows(const std::string& user, const OracleRows& expected, const OracleRows& actual);

// "" when every demo user's client view equals the rules' queries on the source; otherwise what differs.
[[nodiscard]] std::string compare_every_user(const config::rules::RuleSet& rules, const std::string& storage_uri,
                                             const std::string& source_uri);

// "" when the rows a client model shows equal the rules' queries on the source for `user`.
[[nodiscard]] std::string compare_client(const protocol::wire::ClientState& client, const std::string& source_uri,
                                         const std::string& user);

}  // namespace sluice::test
