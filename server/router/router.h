// Router: applies the compiled sync rules to decoded pgoutput changes. For each Insert, Update and
// Delete it produces the source row's new placements and lookup entries (core::EvaluatedChange),
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

    // Remembers a relation's columns (sent before its first change and after schema changes).
    void on_relation(const protocol::pgoutput::Relation& relation);

    // The row keys a change touches (for prefetching stored rows in one query); empty for others.
    [[nodiscard]] std::vector<core::RowKey> keys_of(const protocol::pgoutput::Message& message) const;

    // Appends the evaluated changes of one Insert, Update or Delete message to `out`.
    [[nodiscard]] protocol::Status route(const protocol::pgoutput::Message& message, const StoredRowLookup& stored,
                                         std::vector<core::EvaluatedChange>& out);

    // "schema.table" names of a Truncate's relations.
    [[nodiscard]] protocol::Result<std::vector<std::string>> truncated_tables(
        const protocol::pgoutput::Truncate& truncate) const;

    // Evaluates one full row given as column values (the initial snapshot's path).
    [[nodiscard]] protocol::Result<core::EvaluatedChange> evaluate_snapshot_row(
        const protocol::pgoutput::Relation& relation, const protocol::pgoutput::Tuple& tuple);

    [[nodiscard]] const RouterStats& stats() const { return m_stats; }

private:
    [[nodiscard]] const protocol::pgoutput::Relation* relation(protocol::pgoutput::Oid id) const;
    [[nodiscard]] protocol::Result<core::EvaluatedChange> upsert(const protocol::pgoutput::Relation& relation,
                                                                 const protocol::pgoutput::Tuple& tuple);

    std::shared_ptr<const config::rules::RuleSet> m_rules;
    protocol::pgoutput::TypeResolver m_resolver;
    std::unordered_map<protocol::pgoutput::Oid, protocol::pgoutput::Relation> m_relations;
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
