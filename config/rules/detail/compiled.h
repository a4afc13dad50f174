// The compiled form of a rule set: bucket definitions, their parameter and data queries split into
// OR-free match terms, indexed by source table; Sync Streams compile into the same bucket
// definitions and data queries (one definition per stream variant) plus stream subqueries, the
// lookups their IN (SELECT ...) conditions read. Built by compiler.cpp and stream_compiler.cpp, read
// by evaluator.cpp and stream_resolver.cpp. Internal.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "config/rules/detail/expr.h"
#include "config/rules/rule_set.h"
#include "config/rules/write_rules.h"

namespace sluice::config::rules::detail {

// One `<expr> = bucket.p` (in_array false) or `bucket.p IN <expr>` (in_array true).
struct Binding {
    int param = 0;
    CExpr expr;
    bool in_array = false;
};

// One alternative of a data query's WHERE (its disjunctive normal form): all filters true and every
// parameter bound.
struct DataTerm {
    std::vector<CExpr> filters;
    std::vector<Binding> bindings;
};

struct OutputColumn {
    bool star = false;
    std::string name;
    CExpr expr;
};

struct DataQuery {
    int definition = 0;
    int index = 0;
    TableName table;
    std::string output_table;
    std::string sql;
    std::vector<OutputColumn> columns;
    bool star_only = false;  // SELECT * alone: the row is the output
    std::vector<DataTerm> terms;
    bool simple = false;  // one term, only = bindings, each parameter once: the fast path
    std::string label;    // streams: "query" or "queries[i]" in errors ("" gives "data[<index>]")
};

enum class KeyKind : std::uint8_t {
    kEqual,         // <row expr> = <request expr>
    kRowArray,      // <request expr> IN <row array expr>
    kRequestArray,  // <row expr> IN <request array expr>
};

struct KeyPart {
    KeyKind kind = KeyKind::kEqual;
    CExpr row;
    CExpr request;
};

// One alternative of a table parameter query's WHERE, with its own lookup key prefix.
struct LookupTerm {
    std::vector<CExpr> row_filters;
    std::vector<CExpr> request_filters;
    std::vector<KeyPart> keys;
    std::string key_prefix;  // "<definition>/<query>/<term>"
};

struct ParameterOutput {
    int param = 0;
    CExpr expr;
    bool row_side = false;  // computed from the parameter-table row (stored in the lookup entry)
};

enum class ParameterKind : std::uint8_t { kRequest, kJsonEach, kTable };

struct ParameterQuery {
    int definition = 0;
    int index = 0;
    ParameterKind kind = ParameterKind::kRequest;
    TableName table;
    CExpr each_source;  // kJsonEach
    bool has_where = false;
    CExpr where;  // kRequest / kJsonEach
    std::vector<ParameterOutput> outputs;
    std::vector<LookupTerm> terms;  // kTable
    bool stored_in_order = false;   // kTable: every output is row-side, in parameter order
    std::string sql;
};

struct Definition {
    std::string name;
    int priority = 3;
    std::vector<std::string> params;
    std::vector<ParameterQuery> parameter_queries;
    std::vector<int> data_queries;  // indexes into Compiled::data
    bool has_parameters_key = false;
    int stream = -1;  // a Sync Streams variant: index into Compiled::streams (resolved by its resolvers)
};

// ---- Sync Streams

// The values a row expression is matched against, known when a request is resolved.
enum class SetKind : std::uint8_t {
    kScalar,    // one request value (NULL: none)
    kArray,     // the elements of a request value holding a JSON array
    kSubquery,  // the values of a stream subquery
};

struct ValueSet {
    SetKind kind = SetKind::kScalar;
    CExpr expr;         // kScalar, kArray
    int subquery = -1;  // kSubquery: index into Compiled::subqueries
};

// One key column of a subquery's lookup: `<row> = <set>`, `<row> IN <set>` or `<set> IN <row array>`.
struct StreamKey {
    CExpr row;               // the subquery table's side
    bool row_array = false;  // the row side is a JSON array: one entry per element
    ValueSet values;         // the request side
};

// `<request value> IN <set>`: a condition on the request alone, checked when resolving.
struct Membership {
    CExpr needle;
    ValueSet set;
};

// One OR alternative of a subquery's WHERE.
struct SubqueryTerm {
    std::vector<CExpr> row_filters;      // replication time (kTable)
    std::vector<CExpr> request_filters;  // resolve time (kJsonEach: per element)
    std::vector<Membership> memberships;
    std::vector<StreamKey> keys;  // kTable
    std::string key_prefix;       // kTable: "<subquery id>/<term>"
};

enum class SubqueryKind : std::uint8_t {
    kTable,     // SELECT <column expr> FROM <table> WHERE ...: a lookup maintained at replication time
    kJsonEach,  // SELECT value FROM json_each(<request value>) [WHERE ...]: computed when resolving
    kRequest,   // SELECT <request expr> [WHERE ...]: computed when resolving
};

// A subquery of a stream (`IN (SELECT ...)`, a `with:` query, or an INNER JOIN turned into one):
// the set of values it selects for a request. Identical subqueries are compiled once.
struct StreamSubquery {
    std::string id;  // stable: "<with name>", "<stream>.with.<name>" or "<stream>.<n>"; prefixes lookup keys
    SubqueryKind kind = SubqueryKind::kTable;
    TableName table;    // kTable
    CExpr each_source;  // kJsonEach
    CExpr output;       // the selected value (row side for kTable)
    std::vector<SubqueryTerm> terms;
    int level = 0;                  // lookup round that knows its values: 0 request-only, 1 + nested levels
    bool per_subscription = false;  // reads subscription.* (itself or through nested subqueries)
    unsigned uses = 0;              // request values it reads (expr_compiler.h Uses: auth, client, subscription)
    bool used = false;              // read by some stream (unused with: queries are checked, not indexed)
};

// One way a request reaches a stream variant's buckets (an OR alternative of its query).
struct StreamResolver {
    std::vector<CExpr> request_filters;
    std::vector<Membership> memberships;
    std::vector<std::vector<ValueSet>> params;  // per bucket parameter: the sets it must be in (intersected)
    std::string query;                          // "query" or "queries[i]", for errors
};

// A stream variant: one bucket definition (name "<stream>|<n>") whose data query holds the rows of
// one OR alternative (or several alternatives with the same row conditions and parameters).
struct StreamVariant {
    int definition = 0;
    std::vector<StreamResolver> resolvers;
};

struct Stream {
    std::string name;
    int priority = 3;
    bool auto_subscribe = false;
    std::vector<StreamVariant> variants;
};

struct TableIndex {
    std::vector<int> data;                          // data query indexes
    std::vector<std::pair<int, int>> parameters;  // (definition, parameter query)
    std::vector<int> subqueries;                    // stream subqueries (kTable) reading this table
};

// Hash of a table key "schema.name" (FNV-1a), computed from the parts without joining them.
[[nodiscard]] inline std::uint64_t table_hash(std::string_view schema, std::string_view name) {
    std::uint64_t h = 14695981039346656037ULL;
    auto mix = [&h](std::string_view s) {
        for (const char c : s) {
            h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
        }
    };
    mix(schema);
    mix(".");
    mix(name);
    return h;
}

struct Compiled {
    CompileOptions options;
    std::vector<Definition> definitions;
    std::vector<DataQuery> data;
    std::map<std::string, TableIndex, std::less<>> tables;  // key: schema + '.' + name
    WriteRules write_rules;
    std::vector<Stream> streams;
    std::vector<StreamSubquery> subqueries;
    int max_level = 0;  // deepest subquery level any stream reads

    // Per-row dispatch on the table: an open-addressed hash table over `tables` (power-of-two size,
    // at most half full), so evaluating a row neither joins nor re-compares the table key.
    struct TableSlot {
        std::uint64_t hash = 0;
        const std::string* key = nullptr;  // null: free slot
        const TableIndex* index = nullptr;
    };
    std::vector<TableSlot> table_slots;

    // Builds table_slots from tables; called once `tables` is final.
    void index_tables() {
        std::size_t size = 8;
        while (size < tables.size() * 2) {
            size *= 2;
        }
        table_slots.assign(size, {});
        for (const auto& [key, index] : tables) {
            const auto dot = key.find('.');  // any split gives the same hash of the joined key
            const std::uint64_t h = table_hash(std::string_view(key).substr(0, dot),
                                               std::string_view(key).substr(dot + 1));
            std::size_t i = h & (size - 1);
            while (table_slots[i].key != nullptr) {
                i = (i + 1) & (size - 1);
            }
            table_slots[i] = {h, &key, &index};
        }
    }

    // The index of a table, or null when no query reads it. Same match as tables.find(schema + '.' + name).
    [[nodiscard]] const TableIndex* find_table(const TableName& table) const {
        const std::uint64_t h = table_hash(table.schema, table.name);
        const std::size_t mask = table_slots.size() - 1;
        for (std::size_t i = h & mask;; i = (i + 1) & mask) {
            const TableSlot& slot = table_slots[i];
            if (slot.key == nullptr) {
                return nullptr;
            }
            if (slot.hash == h) {
                const std::string& key = *slot.key;
                if (key.size() == table.schema.size() + 1 + table.name.size() &&
                    key.compare(0, table.schema.size(), table.schema) == 0 && key[table.schema.size()] == '.' &&
                    key.compare(table.schema.size() + 1, std::string::npos, table.name) == 0) {
                    return slot.index;
                }
            }
        }
    }
};

}  // namespace sluice::config::rules::detail

namespace sluice::config::rules {
struct RuleSet::Impl : detail::Compiled {};
}  // namespace sluice::config::rules
