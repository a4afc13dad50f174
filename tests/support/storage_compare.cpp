// Storage comparison for rebuild and version-switch tests (see storage_compare.h).
#include "tests/support/storage_compare.h"

#include <map>
#include <optional>
#include <set>

#include <pqxx/pqxx>

namespace sluice::test {
namespace {

struct Snapshot {
    std::map<std::string, std::map<std::string, std::string>> buckets;  // bucket -> row -> data (non-empty only)
    std::map<std::string, std::string> rows;                            // table/key -> data + placements
    std::set<std::string> lookups;
};

std::string strip(const std::string& text, const std::string& prefix) {
    // Placements encode bucket ids among other fields: remove every occurrence of the prefix at a
    // bucket id's start, which is where "N#" appears.
    std::string out;
    std::size_t at = 0;
    while (true) {
        auto found = text.find(prefix, at);
        if (found == std::string::npos) {
            out.append(text, at);
            return out;
        }
        out.append(text, at, found - at);
        at = found + prefix.size();
    }
}

Snapshot read(const std::string& uri, std::int64_t version) {
    pqxx::connection c(uri);
    pqxx::read_transaction tx(c);
    Snapshot s;
    const std::string prefix = std::to_string(version) + "#";
    const auto up_to =
        tx.exec_params1("SELECT COALESCE(max(op_id), 0) FROM sluice.checkpoints WHERE rules_version = $1", version)[0]
            .as<std::int64_t>();
    std::map<std::string, std::map<std::string, std::optional<std::string>>> reduced;
    for (const auto& r : tx.exec_params(
             "SELECT bucket, op, COALESCE(object_type, '') || '/' || COALESCE(object_id, '') || '/' || "
             "COALESCE(subkey, ''), data FROM sluice.ops WHERE left(bucket, length($1)) = $1 AND op_id <= $2 "
             "ORDER BY bucket, op_id",
             prefix, up_to)) {
        auto& bucket = reduced[r[0].as<std::string>().substr(prefix.size())];
        const int op = r[1].as<int>();
        if (op == 4) {
            bucket.clear();
        } else if (op == 1) {
            bucket[r[2].as<std::string>()] = r[3].as<std::string>();
        } else if (op == 2) {
            bucket[r[2].as<std::string>()] = std::nullopt;
        }
    }
    for (const auto& [bucket, rows] : reduced) {
        for (const auto& [row, data] : rows) {
            if (data) {
                s.buckets[bucket][row] = *data;
            }
        }
    }
    for (const auto& r : tx.exec_params(
             "SELECT source_table || '/' || row_key, data, placements FROM sluice.current_rows "
             "WHERE rules_version = $1",
             version)) {
        s.rows[r[0].as<std::string>()] = r[1].as<std::string>() + " in " + strip(r[2].as<std::string>(), prefix);
    }
    for (const auto& r : tx.exec_params(
             "SELECT lookup_key || ' ' || source_table || ' ' || row_key || ' ' || bucket_params "
             "FROM sluice.parameter_lookups WHERE rules_version = $1 AND to_op IS NULL",
             version)) {
        s.lookups.insert(r[0].as<std::string>());
    }
    return s;
}

template <typename Map>
void diff_maps(const char* what, const Map& a, const Map& b, std::string& out, int& budget) {
    for (const auto& [key, value] : a) {
        auto it = b.find(key);
        if (it == b.end()) {
            out += std::string(what) + " only in the first: " + key + "\n";
        } else if (!(it->second == value)) {
            out += std::string(what) + " differs: " + key + "\n";
        } else {
            continue;
        }
        if (--budget == 0) {
            return;
        }
    }
    for (const auto& [key, value] : b) {
        if (!a.contains(key)) {
            out += std::string(what) + " only in the second: " + key + "\n";
            if (--budget == 0) {
                return;
            }
        }
    }
}

}  // namespace

std::string compare_storage(const std::string& storage_a, std::int64_t version_a, const std::string& storage_b,
                            std::int64_t version_b) {
    const auto a = read(storage_a, version_a);
    const auto b = read(storage_b, version_b);
    std::string out;
    int budget = 20;
    diff_maps("bucket", a.buckets, b.buckets, out, budget);
    if (budget > 0) {
        diff_maps("current row", a.rows, b.rows, out, budget);
    }
    if (budget > 0) {
        for (const auto& l : a.lookups) {
            if (!b.lookups.contains(l) && budget-- > 0) {
                out += "lookup only in the first: " + l + "\n";
            }
        }
        for (const auto& l : b.lookups) {
            if (!a.lookups.contains(l) && budget-- > 0) {
                out += "lookup only in the second: " + l + "\n";
            }
        }
    }
    if (a.buckets.empty() && b.buckets.empty()) {
        out += "both storages are empty for these versions\n";
    }
    return out;
}

}  // namespace sluice::test
