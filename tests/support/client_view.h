// What a client of a given user holds after catching up, computed from bucket storage the way a
// PowerSync client reduces its buckets: the oracle tests compare it with the rules' queries run
// directly against the source database.
#pragma once

#include <map>
#include <string>
#include <utility>

#include "config/rules/rule_set.h"
#include "server/storage/bucket_reader.h"

namespace sluice::test {

// (object_type, object_id) -> row data (JSON text), for everything in the user's buckets at the
// latest checkpoint. Fails the test when buckets disagree on a row's data.
using ClientRows = std::map<std::pair<std::string, std::string>, std::string>;

[[nodiscard]] ClientRows client_view(const config::rules::RuleSet& rules, storage::BucketReader& reader,
                                     const std::string& user_id);

}  // namespace sluice::test
