// Router: applies the compiled sync rules to decoded source changes. For each insert, update and
// delete it produces the source row's new placements and lookup entries (core::EvaluatedChange),
// filling unchanged TOAST values from the stored copy of the row and turning a replica-identity
// change into a delete plus an upsert. Pure apart from the stored-row callback: no database here.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/rules/rule_set.h"
#include "protocol/pgoutput/messages.h"
#include "protocol/pgoutput/pg_types.h"
#include "protocol/status.h"
#include "server/core/bucket_change.h"

namespace sluice::router {

// The stored column values of a row (as produced in EvaluatedChange::stored), or nullopt.
using StoredRowLookup = std::function<protocol::Result<std::optional<std::string>>(const core::RowKey&)>;

struct RouterStats {
    std::uint64_t rows = 0;              // source rows evaluated
    std::uint64_t evaluation_errors = 0; // rows with a per-row rules error (the row still goes to its other buckets)
    std::uint64_t missing_toast = 0;     // unchanged TOAST values with no stored copy to fill from
};

class Router {
public:
    Router(std::shared_ptr<const config::rules::RuleSet> rules, protocol::pgoutput::TypeResolver resolver = {});

    // The evaluated change of a row that now has these contents (insert, or a snapshot copy).
    [[nodiscard]] protocol::Result<core::EvaluatedChange> upsert(const protocol::pgoutput::Relation& relation,
                                                                 const protocol::pgoutput::Tuple& tuple);

    // The same for a row already decoded into rules values (`change` holds its key and stored copy):
    // fills in its placements and lookup entries. For callers that do not read pgoutput (benchmarks).
    void evaluate(const config::rules::TableName& table, const config::rules::Row& row, core::EvaluatedChange& change);

    // An update: appends a delete of the old key when the replica identity changed, then the upsert.
    // Unchanged TOAST values come from the old full tuple, else from the stored copy of the row.
    [[nodiscard]] protocol::Status update(const protocol::pgoutput::Relation& relation,
                                          protocol::pgoutput::OldTupleKind old_kind,
                                          const protocol::pgoutput::Tuple& old_tuple,
                                          const protocol::pgoutput::Tuple& new_tuple, const StoredRowLookup& stored,
                                          std::vector<core::EvaluatedChange>& out);

    // A delete, from the old key (or full old row).
    [[nodiscard]] static core::EvaluatedChange remove(const protocol::pgoutput::Relation& relation,
                                                      const protocol::pgoutput::Tuple& old_tuple);

    [[nodiscard]] const RouterStats& stats() const { return m_stats; }

private:
    std::shared_ptr<const config::rules::RuleSet> m_rules;
    protocol::pgoutput::TypeResolver m_resolver;
    RouterStats m_stats;
    // Scratch buffers reused between rows.
    config::rules::RowEvaluation m_evaluation;
    config::rules::ParameterEvaluation m_parameters;
};

// "schema.table" of a relation.
[[nodiscard]] std::string table_name(const protocol::pgoutput::Relation& relation);
// The JSON array of a tuple's replica-identity values (their text forms); the row's key in storage.
[[nodiscard]] std::string row_key(const protocol::pgoutput::Relation& relation, const protocol::pgoutput::Tuple& tuple);
// Encodes and decodes the stored copy of a tuple (column text values, nulls kept).
[[nodiscard]] std::string encode_stored(const protocol::pgoutput::Relation& relation,
                                        const protocol::pgoutput::Tuple& tuple);
[[nodiscard]] std::optional<std::unordered_map<std::string, protocol::pgoutput::Datum>> decode_stored(
    const std::string& stored);

}  // namespace sluice::router
