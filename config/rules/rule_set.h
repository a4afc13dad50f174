// The compiled sync rules (PowerSync's bucket_definitions dialect, see
// docs/powersync-compat.md "Sync-rules dialect") and the three operations the server needs:
//   1. a row of a source table    -> the buckets it belongs to, with its output row      (router)
//   2. a row of a parameter table -> lookup entries for the parameter index              (router)
//   3. a request + lookups        -> the bucket ids a connection may read                (sync)
// Compiled once from YAML; evaluation never re-parses. Pure: no I/O, clock or logging. A RuleSet is
// immutable after compile and safe to share between threads.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/diagnostic.h"
#include "config/rules/request.h"
#include "config/rules/value.h"
#include "protocol/status.h"

namespace sluice::config::rules {

class WriteRules;

// A source table, schema-qualified ("public" when the rules do not name a schema).
struct TableName {
    std::string schema = "public";
    std::string name;

    [[nodiscard]] std::string to_string() const { return schema + "." + name; }
    friend bool operator==(const TableName&, const TableName&) = default;
};

struct CompileOptions {
    // Prepended to every bucket id, e.g. "2#" gives 2#by_user["u1"]; a new rules version then makes
    // new bucket ids and clients re-download cleanly.
    std::string bucket_id_prefix;
};

// One output of evaluating a source row: the row as it goes to one bucket.
struct BucketRow {
    std::string bucket;        // bucket id, e.g. by_user["u1"]
    std::string table;         // output table (the FROM name or its alias)
    std::string id;            // output id: the id column as text
    std::string data;          // the output row as a JSON object
    std::string definition;    // which bucket definition
    int data_query = 0;        // index of the data query within it
};

// An evaluation problem confined to one row (or one request) and one query: reported, never thrown.
struct EvaluationError {
    std::string definition;
    std::string query;  // "data[1]" or "parameters[0]"
    std::string message;
};

struct RowEvaluation {
    std::vector<BucketRow> rows;  // no duplicates
    std::vector<EvaluationError> errors;

    // Empties rows and errors for the next row but keeps the rows' string buffers, which the next
    // evaluate_row refills: evaluating many rows into one RowEvaluation then allocates nothing once
    // warm. (rows.clear() is still correct, without the reuse.)
    void clear() {
        for (auto& r : m_spare) {  // leftovers (usually none) join the rows; the swap moves none
            rows.push_back(std::move(r));
        }
        m_spare.clear();
        m_spare.swap(rows);
        errors.clear();
    }

private:
    friend class RuleSet;
    std::vector<BucketRow> m_spare;       // cleared rows whose buffers evaluate_row reuses
    std::vector<std::string> m_buckets;   // scratch: bucket ids of one data query
    std::string m_json;                   // scratch: the output row of one data query
    std::string m_id;                     // scratch: its id
};

// One entry of the parameter lookup index, produced from a parameter-table row. The storage layer
// keeps them per source row (replacing them when the row changes) and answers LookupSource queries.
struct LookupEntry {
    std::string key;     // e.g. user_lists/1/0["u1"]: definition/query/variant then the JSON key values
    std::string values;  // JSON array of the bucket parameter values this row contributes
};

struct ParameterEvaluation {
    std::vector<LookupEntry> entries;
    std::vector<EvaluationError> errors;
};

// Lookup access used while resolving a request: for each key, the `values` of every stored entry
// with that key (in any order). Implemented by storage (live index) and by `sluice explain` (offline).
class LookupSource {
public:
    virtual ~LookupSource() = default;
    [[nodiscard]] virtual std::vector<std::vector<std::string>> lookup(std::span<const std::string> keys) = 0;
};

// One bucket a request may read, and why.
struct ResolvedBucket {
    std::string id;           // bucket id, with the prefix
    int priority = 3;         // 0..3, lower first
    std::string definition;   // bucket definition name
    int parameter_query = -1; // which parameter query produced it (-1: a bucket without parameters)
    std::string lookup_key;   // the lookup key that matched ("" when none was needed)
};

struct ResolveOptions {
    std::size_t max_buckets = 1000;            // PowerSync's default per connection
    std::size_t max_parameter_results = 1000;  // lookup results per request
};

struct Resolution {
    std::vector<ResolvedBucket> buckets;  // sorted by id, no duplicates
    std::vector<EvaluationError> errors;  // e.g. json_each over a claim that is not an array
};

class RuleSet;

struct CompileResult {
    std::shared_ptr<const RuleSet> rules;  // null when there are errors
    std::vector<Diagnostic> diagnostics;   // every error and warning, in file order
};

class RuleSet {
public:
    struct Impl;

    // Compiles a sync-rules YAML file (bucket_definitions and write_rules). `file` is used in positions.
    [[nodiscard]] static CompileResult compile(std::string_view yaml, const std::string& file,
                                               const CompileOptions& options = {});

    // Tables the rules read (data queries and parameter queries): what the publication must contain.
    [[nodiscard]] std::vector<TableName> source_tables() const;
    // Tables whose rows feed the parameter lookup index.
    [[nodiscard]] std::vector<TableName> parameter_tables() const;
    // Names of the bucket definitions, in file order.
    [[nodiscard]] std::vector<std::string> definitions() const;

    struct DataQueryInfo {
        std::string definition;
        int index = 0;
        TableName source;          // the table it reads
        std::string output_table;  // the table name clients see
        std::string sql;
    };
    [[nodiscard]] std::vector<DataQueryInfo> data_queries() const;

    // (1) Buckets and output rows of one row of `table`. Appends to out (clear it between rows; out.clear()
    // keeps the rows' buffers, so a RowEvaluation reused for every row allocates nothing once warm).
    void evaluate_row(const TableName& table, const Row& row, RowEvaluation& out) const;
    // (2) Lookup entries of one row of a parameter table.
    void evaluate_parameter_row(const TableName& table, const Row& row, ParameterEvaluation& out) const;
    // (3) The buckets a request may read. Calls lookups.lookup() at most once. Fails with SL2018 /
    // SL2019 when a limit is exceeded (never silently truncated).
    [[nodiscard]] protocol::Result<Resolution> resolve_buckets(const Request& request, LookupSource& lookups,
                                                               const ResolveOptions& options = {}) const;

    // The write_rules section (empty when the file has none).
    [[nodiscard]] const WriteRules& write_rules() const;

    ~RuleSet();
    RuleSet(const RuleSet&) = delete;
    RuleSet& operator=(const RuleSet&) = delete;
    explicit RuleSet(std::unique_ptr<Impl> impl);

private:
    std::unique_ptr<Impl> m_impl;
};

}  // namespace sluice::config::rules
