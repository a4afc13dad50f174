// Resolves names in an AST expression for one kind of query (data, parameter, write rule) and
// produces its compiled form, reporting unknown names, wrong contexts and bad calls. Internal.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/rules/ast.h"
#include "config/rules/detail/expr.h"

namespace sluice::config::rules::detail {

enum Uses : unsigned {
    kUsesRow = 1,       // a column of the FROM table
    kUsesBucket = 2,    // bucket.<param>
    kUsesRequest = 4,   // any request value
    kUsesEach = 8,      // json_each value/key
    kUsesClient = 16,   // request.parameters() / user_parameters (client-supplied)
    kUsesAuth = 32,     // request.user_id() / request.jwt() / token_parameters (from the verified token)
    kUsesOld = 64,      // old.<col> (write rules)
    kUsesNew = 128,     // new.<col> (write rules)
    kUsesSubscription = 256,  // streams: subscription.parameter() / subscription.parameters()
};

struct NameScope {
    enum class Kind { kData, kParameterTable, kParameterRequest, kParameterEach, kWrite };
    Kind kind = Kind::kData;
    std::string table;      // FROM table name
    std::string schema;     // its schema as written ("" when not written)
    std::string alias;      // FROM alias ("" when none)
    std::string each_name;  // json_each's alias, or "json_each"
    const std::vector<std::string>* bucket_params = nullptr;  // data queries
    bool lenient_bucket = false;  // parameters unknown (their queries failed): accept any bucket.<name>
    std::string definition;
    bool allow_old = false;  // write rules
    bool allow_new = false;
    std::string write_op;  // "insert", "update", "delete" (messages)
    // Sync Streams: auth.*, connection.*, subscription.* instead of request.*, token_parameters,
    // user_parameters and bucket.* (kParameterTable/Each/Request scopes are used for stream queries
    // and their subqueries).
    bool streams = false;
};

// '<text>' of a span, shortened to 60 characters.
[[nodiscard]] std::string quote(std::string_view sql, Span span);

class ExprCompiler {
public:
    ExprCompiler(std::string_view sql, const NameScope& scope, std::vector<SqlError>& errors)
        : m_sql(sql), m_scope(scope), m_errors(errors) {}

    // Compiles n; uses receives the Uses bits of everything it reads.
    [[nodiscard]] CExpr compile(const Node& n, unsigned& uses);
    // Span of the first client-supplied value compiled so far (for the SL2015 warning).
    [[nodiscard]] const Span* first_client_use() const { return m_has_client ? &m_client_span : nullptr; }

private:
    CExpr name(const Node& n, unsigned& uses);
    CExpr call(const Node& n, unsigned& uses);
    CExpr stream_call(const Node& n, unsigned& uses);
    void error(Span span, protocol::ErrorCode code, std::string message);

    std::string_view m_sql;
    const NameScope& m_scope;
    std::vector<SqlError>& m_errors;
    Span m_client_span;
    bool m_has_client = false;
};

}  // namespace sluice::config::rules::detail
