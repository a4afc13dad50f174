// Syntax tree of the sync-rules SQL subset, with byte spans into the SQL text for error positions.
// Produced by parser.h, consumed by the compiler; never evaluated directly.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/rules/value.h"
#include "protocol/error_codes.h"

namespace sluice::config::rules {

struct Span {
    std::uint32_t begin = 0;  // byte offset of the first character
    std::uint32_t end = 0;    // byte offset one past the last character
};

// Which rules dialect a query is written in: PowerSync's bucket_definitions (parameter and data
// queries) or Sync Streams (`config: edition: 2|3`, `streams:`), which adds subqueries, INNER JOIN,
// BETWEEN, CASE and ARRAY[...]/ROW(...) lists.
enum class Dialect : std::uint8_t { kBucketDefinitions, kStreams };

struct SelectStatement;

enum class NodeKind : std::uint8_t {
    kLiteral,    // literal
    kName,       // names: 1..3 dotted parts (unquoted parts lower-cased), e.g. {"todos", "list_id"}
    kCall,       // names: qualifier parts then the function name (lower-cased); args
    kNot,        // args[0]
    kBinary,     // op; args[0], args[1]
    kIsNull,     // args[0] IS NULL
    kIsNotNull,  // args[0] IS NOT NULL
    kIn,         // args[0] IN args[1]
    kCast,       // CAST(args[0] AS type) or args[0]::type; type in cast_type (lower-case)
    kCase,       // streams: CASE [args[0] when has_operand] WHEN a THEN b ... [ELSE args.back() when has_else] END
    kList,       // streams: ARRAY[args...] or ROW(args...): a JSON array of the values
    kSubquery,   // streams: (SELECT ...) as the right side of IN; in subquery
    kInvalid,    // placeholder for a construct already reported as an error
};

enum class BinaryOp : std::uint8_t {
    kEq, kNe, kLt, kLe, kGt, kGe, kAdd, kSub, kMul, kDiv, kConcat, kArrow, kArrow2, kAnd, kOr,
};

struct Node {
    NodeKind kind = NodeKind::kInvalid;
    BinaryOp op = BinaryOp::kEq;
    Span span;
    Value literal;
    std::vector<std::string> names;
    std::vector<bool> quoted;  // per names entry: written as "quoted identifier"
    std::string cast_type;
    Span type_span;
    bool has_operand = false;  // kCase
    bool has_else = false;     // kCase
    std::vector<Node> args;
    std::shared_ptr<const SelectStatement> subquery;  // kSubquery
};

struct SelectItem {
    bool star = false;           // * or qualifier.*
    std::string star_qualifier;  // "" for a bare *
    Node expr;                   // when !star
    std::string alias;           // "" when no AS
    Span span;                   // the whole item
};

// streams: `[INNER] JOIN <table> [AS alias] ON <condition>` after the FROM table.
struct JoinClause {
    std::vector<std::string> table;  // [schema,] name
    std::string alias;
    Node on;
    Span span;  // from JOIN to the table (or its alias)
};

struct FromClause {
    bool is_function = false;  // json_each(...)
    std::vector<std::string> table;  // [schema,] name when !is_function
    Node call;                       // the call when is_function
    std::string alias;
    Span span;
    std::vector<JoinClause> joins;  // streams only
};

struct SelectStatement {
    std::vector<SelectItem> items;
    Span select_span;  // the SELECT keyword
    std::optional<FromClause> from;
    std::optional<Node> where;
    Span span;  // the whole statement
};

// Constructs of the streams dialect that edition 2 does not have (reported with their first span).
enum class Feature : std::uint8_t { kJoin, kNestedSubquery, kBetween, kCase, kList };

struct SqlError {
    Span span;
    protocol::ErrorCode code = protocol::ErrorCode::kRulesSqlSyntax;
    std::string message;
};

}  // namespace sluice::config::rules
