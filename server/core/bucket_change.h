// The hand-off between the router (which applies the rules to a source row) and bucket storage
// (which keeps the op log): a source row's new placements and lookup entries. Defined here so that
// neither stage includes the other; app/ wires them together.
#pragma once

#include <string>
#include <vector>

namespace sluice::core {

// A source row's identity: its table and its replica-identity values.
struct RowKey {
    std::string table;  // "schema.table"
    std::string key;    // JSON array of the replica identity column values, in column order

    friend bool operator==(const RowKey&, const RowKey&) = default;
};

struct RowKeyHash {
    std::size_t operator()(const RowKey& k) const noexcept {
        return std::hash<std::string>{}(k.table) * 31U ^ std::hash<std::string>{}(k.key);
    }
};

// The row as it goes to one bucket.
struct Placement {
    std::string bucket;       // bucket id, e.g. 1#by_user["u1"]
    std::string object_type;  // output table
    std::string object_id;    // output id
    std::string data;         // output row, JSON object text

    friend bool operator==(const Placement&, const Placement&) = default;
};

// One entry of the parameter lookup index that a parameter-table row contributes.
struct LookupValue {
    std::string key;     // lookup key
    std::string values;  // JSON array of bucket parameter values

    friend bool operator==(const LookupValue&, const LookupValue&) = default;
};

enum class ChangeKind {
    kUpsert,  // the row exists with these contents now (insert, update, snapshot copy)
    kDelete,  // the row is gone
};

// A source row after the rules were applied to its new contents.
struct EvaluatedChange {
    RowKey row;
    ChangeKind kind = ChangeKind::kUpsert;
    std::string stored;                   // kUpsert: the row's column values to keep (see storage row_codec)
    std::vector<Placement> placements;    // kUpsert: every bucket the row is in now
    std::vector<LookupValue> lookups;     // kUpsert: its lookup entries now
};

}  // namespace sluice::core
