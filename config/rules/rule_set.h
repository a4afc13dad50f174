// The compiled sync rules (PowerSync's bucket_definitions dialect and its Sync Streams dialect, see
// docs/powersync-compat.md "Sync-rules dialect" and "Sync Streams dialect"; docs/sync-streams.md for
// how streams compile) and the three operations the server needs:
//   1. a row of a source table    -> the buckets it belongs to, with its output row      (router)
//   2. a row of a parameter table -> lookup entries for the parameter index              (router)
//      (parameter queries of bucket_definitions, and the subqueries/joins of streams)
//   3. a request + its stream subscriptions + lookups -> the bucket ids it may read, and
//      which subscription each serves                                                  (sync)
// Compiled once from YAML; evaluation never re-parses. Pure: no I/O, clock or logging. A RuleSet is
// immutable after compile and safe to share between threads.
#pragma once

#include <cstdint>
#include <compare>
#include <memory>
#include <optional>
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
    std::string bucket;        // bucket id, e.g. by_user["u1"] or project_tasks|0["p1"]
    std::string table;         // output table (the FROM name or its alias)
    std::string id;            // output id: the id column as text
    std::string data;          // the output row as a JSON object
    std::string definition;    // which bucket definition (streams: "<stream>|<variant>")
    int data_query = 0;        // index of the data query within it (streams: of the stream's queries)
};

// An evaluation problem confined to one row (or one request) and one query: reported, never thrown.
struct EvaluationError {
    std::string definition;
    std::string query;  // "data[1]" or "parameters[0]"; streams: "query", "queries[1]" or "subquery <id>"
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
    // bucket_definitions: e.g. user_lists/1/0["u1"]: definition/query/variant then the JSON key values.
    // streams: e.g. my_projects/0["u1"]: subquery id/OR alternative then the JSON key values (one '/'
    // before the '[', so the two kinds never collide).
    std::string key;
    // JSON array of the bucket parameter values this row contributes (streams: the one value the
    // subquery selects, e.g. ["p1"]).
    std::string values;
};

struct ParameterEvaluation {
    std::vector<LookupEntry> entries;
    std::vector<EvaluationError> errors;
};

// Lookup access used while resolving a request: for each key, the `values` of every stored entry
// with that key (in any order). Implemented by storage (live index) and by `sluice explain` (offline).
// resolve_buckets calls it once per round: one round for bucket_definitions and streams whose
// subqueries are not nested, one more per level of nesting (keys of a level need the values of the
// level below).
class LookupSource {
public:
    virtual ~LookupSource() = default;
    [[nodiscard]] virtual std::vector<std::vector<std::string>> lookup(std::span<const std::string> keys) = 0;
};

// What a bucket is read for, as the checkpoint's `subscriptions` says it: {"default": index into
// Resolution::streams} or {"sub": index into Request::subscriptions()}.
struct BucketSource {
    enum class Kind : std::uint8_t { kDefault, kSubscription };
    Kind kind = Kind::kDefault;
    std::size_t index = 0;
    friend bool operator==(const BucketSource&, const BucketSource&) = default;
    friend auto operator<=>(const BucketSource&, const BucketSource&) = default;
};

// One bucket a request may read, and why.
struct ResolvedBucket {
    std::string id;           // bucket id, with the prefix
    int priority = 3;         // 0..3, lower first (streams: the lowest of the stream's priority and the
                              // override_priority of the subscriptions it serves)
    std::string definition;   // bucket definition name (streams: "<stream>|<variant>")
    int parameter_query = -1; // which parameter query produced it (-1: a bucket without parameters, or a stream's)
    std::string lookup_key;   // the lookup key that matched ("" when none was needed, and for streams)
    std::string stream;       // the stream it belongs to ("" for bucket_definitions)
    std::vector<BucketSource> sources;  // sorted; never empty
};

struct ResolveOptions {
    std::size_t max_buckets = 1000;            // PowerSync's default per connection
    std::size_t max_parameter_results = 1000;  // lookup results per request
};

// A problem with one subscription of a stream, for the checkpoint's streams[].errors.
struct StreamError {
    std::optional<std::size_t> subscription;  // index into Request::subscriptions(); none = "default"
    std::string message;
    friend bool operator==(const StreamError&, const StreamError&) = default;
};

// One entry of the checkpoint's `streams`: every bucket definition (a default stream), then each
// Sync Stream the request reads (its defaults, when include_defaults, and the subscribed ones) in
// file order, then each unknown stream a subscription named.
struct StreamStatus {
    std::string name;
    bool is_default = false;  // bucket definitions, and streams read through auto_subscribe
    std::vector<StreamError> errors;
};

struct Resolution {
    std::vector<ResolvedBucket> buckets;  // sorted by id, no duplicates
    std::vector<EvaluationError> errors;  // e.g. json_each over a claim that is not an array (bucket_definitions)
    std::vector<StreamStatus> streams;    // see StreamStatus; stream evaluation errors are in its errors
    int lookup_rounds = 0;                // calls made to LookupSource::lookup
};

// A Sync Stream of the rules.
struct StreamDefinition {
    std::string name;
    bool auto_subscribe = false;
    int priority = 3;
    std::vector<std::string> definitions;  // its bucket definitions, "<name>|<n>", one per query variant
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
    // Names of the bucket definitions (bucket_definitions only), in file order.
    [[nodiscard]] std::vector<std::string> definitions() const;
    // The Sync Streams, in file order.
    [[nodiscard]] std::vector<StreamDefinition> streams() const;

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
    // (3) The buckets a request may read: every bucket definition's, and the buckets of the streams
    // it reads (request.subscriptions(), and the auto_subscribe streams when include_defaults), each
    // with the subscriptions it serves. A subscription only narrows: it yields the buckets of its
    // stream whose parameters its values select, among those the token's auth values allow. Calls
    // lookups.lookup() once per round (see LookupSource). Fails with SL2018 / SL2019 when a limit is
    // exceeded (never silently truncated).
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
