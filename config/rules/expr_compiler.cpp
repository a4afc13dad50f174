// Name resolution and compilation of expressions (see detail/expr_compiler.h).
#include "config/rules/detail/expr_compiler.h"

#include <fmt/format.h>

namespace sluice::config::rules::detail {
namespace {

using protocol::ErrorCode;

bool is_request_scope(NameScope::Kind k) {
    return k == NameScope::Kind::kParameterTable || k == NameScope::Kind::kParameterRequest ||
           k == NameScope::Kind::kParameterEach || k == NameScope::Kind::kWrite;
}

bool has_table(NameScope::Kind k) { return k == NameScope::Kind::kData || k == NameScope::Kind::kParameterTable; }

std::string join(const std::vector<std::string>& names) {
    std::string out;
    for (const auto& n : names) {
        if (!out.empty()) {
            out += ", ";
        }
        out += "bucket." + n;
    }
    return out;
}

}  // namespace

std::string quote(std::string_view sql, Span span) {
    std::string text(sql.substr(span.begin, span.end - span.begin));
    for (auto& c : text) {
        if (c == '\n' || c == '\r' || c == '\t') {
            c = ' ';
        }
    }
    if (text.size() > 60) {
        text.resize(57);
            text += "...";
    }
    return "'" + text + "'";
}

void ExprCompiler::error(Span span, ErrorCode code, std::string message) {
    m_errors.push_back({span, code, std::move(message)});
}

CExpr ExprCompiler::compile(const Node& n, unsigned& uses) {
    CExpr out;
    switch (n.kind) {
        case NodeKind::kInvalid: return out;
        case NodeKind::kLiteral: out.literal = n.literal; return out;
        case NodeKind::kName: return name(n, uses);
        case NodeKind::kCall: return call(n, uses);
        case NodeKind::kNot:
            out.op = Op::kNot;
            out.args.push_back(compile(n.args[0], uses));
            return out;
        case NodeKind::kIsNull:
        case NodeKind::kIsNotNull:
            out.op = n.kind == NodeKind::kIsNull ? Op::kIsNull : Op::kIsNotNull;
            out.args.push_back(compile(n.args[0], uses));
            return out;
        case NodeKind::kIn:
            out.op = Op::kIn;
            out.args.push_back(compile(n.args[0], uses));
            out.args.push_back(compile(n.args[1], uses));
            return out;
        case NodeKind::kBinary:
            out.op = n.op == BinaryOp::kAnd ? Op::kAnd : n.op == BinaryOp::kOr ? Op::kOr : Op::kBinary;
            out.bop = n.op;
            out.args.push_back(compile(n.args[0], uses));
            out.args.push_back(compile(n.args[1], uses));
            return out;
        case NodeKind::kCase:
            out.op = Op::kCase;
            out.case_operand = n.has_operand;
            out.case_else = n.has_else;
            for (const auto& a : n.args) {
                out.args.push_back(compile(a, uses));
            }
            return out;
        case NodeKind::kList: {
            out.op = Op::kList;
            bool constant = true;
            for (const auto& a : n.args) {
                out.args.push_back(compile(a, uses));
                constant = constant && out.args.back().op == Op::kLiteral;
            }
            if (constant) {  // a literal list: its JSON text once, not per row
                EvalContext ctx;
                CExpr folded;
                folded.literal = eval(out, ctx);
                return folded;
            }
            return out;
        }
        case NodeKind::kSubquery:
            error(n.span, ErrorCode::kRulesWrongContext,
                  fmt::format("a subquery can only be used as <expression> IN (SELECT ...) in WHERE, combined with "
                              "AND or OR (not under NOT nor inside another expression); found {}",
                              quote(m_sql, n.span)));
            return out;
        case NodeKind::kCast: {
            out.op = Op::kCast;
            const auto& t = n.cast_type;
            if (t == "text") {
                out.cast = CastType::kText;
            } else if (t == "integer" || t == "int") {
                out.cast = CastType::kInteger;
            } else if (t == "real") {
                out.cast = CastType::kReal;
            } else if (t == "numeric") {
                out.cast = CastType::kNumeric;
            } else if (t == "blob") {
                out.cast = CastType::kBlob;
            } else {
                error(n.type_span, ErrorCode::kRulesUnsupported,
                      fmt::format("unknown type {} in a cast; expected text, integer, real, numeric or blob",
                                  quote(m_sql, n.type_span)));
            }
            out.args.push_back(compile(n.args[0], uses));
            return out;
        }
    }
    return out;
}

CExpr ExprCompiler::name(const Node& n, unsigned& uses) {
    CExpr out;
    const auto& parts = n.names;
    const std::string shown = quote(m_sql, n.span);
    const auto kind = m_scope.kind;
    auto column = [&](const std::string& col, RowSource source) {
        out.op = Op::kColumn;
        out.source = source;
        out.name = col;
        uses |= source == RowSource::kRow ? kUsesRow : source == RowSource::kOld ? kUsesOld : kUsesNew;
        return out;
    };
    if (parts.size() == 1) {
        if (has_table(kind)) {
            return column(parts[0], RowSource::kRow);
        }
        if (kind == NameScope::Kind::kParameterEach && (parts[0] == "value" || parts[0] == "key")) {
            out.op = parts[0] == "value" ? Op::kEachValue : Op::kEachKey;
            uses |= kUsesEach;
            return out;
        }
        if (m_scope.streams && kind == NameScope::Kind::kParameterRequest) {
            error(n.span, ErrorCode::kRulesUnknownName,
                  fmt::format("unknown name {} in a query without FROM; expected auth.user_id(), "
                              "auth.parameter('<name>'), connection.parameter('<name>') or "
                              "subscription.parameter('<name>')",
                              shown));
        } else if (kind == NameScope::Kind::kWrite) {
            error(n.span, ErrorCode::kRulesUnknownName,
                  fmt::format("unqualified column {}; expected new.{} or old.{} in a write rule", shown, parts[0],
                              parts[0]));
        } else if (kind == NameScope::Kind::kParameterEach) {
            error(n.span, ErrorCode::kRulesUnknownName,
                  fmt::format("unknown column {}; json_each has the columns value and key", shown));
        } else {
            error(n.span, ErrorCode::kRulesUnknownName,
                  fmt::format("unknown name {} in a parameter query without FROM; expected request.user_id(), "
                              "request.jwt(), request.parameters() or token_parameters.<name>",
                              shown));
        }
        return out;
    }
    const std::string& q = parts[0];
    if (parts.size() == 2) {
        const std::string& col = parts[1];
        const bool own_table = has_table(kind) && q == (m_scope.alias.empty() ? m_scope.table : m_scope.alias);
        if (m_scope.streams && !own_table &&
            (q == "bucket" || q == "token_parameters" || q == "user_parameters")) {
            error(n.span, ErrorCode::kRulesWrongContext,
                  fmt::format("{} belongs to bucket_definitions; in Sync Streams expected auth.user_id(), "
                              "auth.parameter('<name>'), connection.parameter('<name>') or "
                              "subscription.parameter('<name>')",
                              shown));
            return out;
        }
        if (q == "bucket") {
            if (kind != NameScope::Kind::kData) {
                error(n.span, ErrorCode::kRulesWrongContext,
                      fmt::format("{} can only be used in data queries; parameter queries define the bucket "
                                  "parameters",
                                  shown));
                return out;
            }
            const auto& params = *m_scope.bucket_params;
            for (std::size_t i = 0; i < params.size(); ++i) {
                if (params[i] == col) {
                    out.op = Op::kBucketParam;
                    out.index = static_cast<int>(i);
                    out.name = col;
                    uses |= kUsesBucket;
                    return out;
                }
            }
            if (m_scope.lenient_bucket) {
                out.op = Op::kBucketParam;
                uses |= kUsesBucket;
                return out;
            }
            error(n.span, ErrorCode::kRulesUnknownName,
                  params.empty()
                      ? fmt::format("{}: bucket '{}' has no parameters; expected no bucket.<name> references",
                                    shown, m_scope.definition)
                      : fmt::format("{} is not a parameter of bucket '{}'; expected one of: {}", shown,
                                    m_scope.definition, join(params)));
            out.op = Op::kBucketParam;  // index -1: reported, matches nothing
            uses |= kUsesBucket;
            return out;
        }
        if (q == "token_parameters" || q == "user_parameters") {
            if (!is_request_scope(kind)) {
                error(n.span, ErrorCode::kRulesWrongContext,
                      fmt::format("request value {} cannot be used in a data query; expected a column or "
                                  "bucket.<parameter> (filter by request values in a parameter query)",
                                  shown));
                return out;
            }
            out.op = q == "token_parameters" ? Op::kTokenParam : Op::kUserParam;
            out.name = col;
            uses |= kUsesRequest | (q == "token_parameters" ? kUsesAuth : kUsesClient);
            if (q == "user_parameters" && !m_has_client) {
                m_has_client = true;
                m_client_span = n.span;
            }
            return out;
        }
        if (q == "request") {
            error(n.span, ErrorCode::kRulesUnknownName,
                  fmt::format("{} is not a value; expected a call: request.user_id(), request.jwt() or "
                              "request.parameters()",
                              shown));
            return out;
        }
        if (has_table(kind) && (q == (m_scope.alias.empty() ? m_scope.table : m_scope.alias))) {
            return column(col, RowSource::kRow);
        }
        if (kind == NameScope::Kind::kParameterEach && q == m_scope.each_name) {
            if (col == "value" || col == "key") {
                out.op = col == "value" ? Op::kEachValue : Op::kEachKey;
                uses |= kUsesEach;
                return out;
            }
            error(n.span, ErrorCode::kRulesUnknownName,
                  fmt::format("unknown column {}; json_each has the columns value and key", shown));
            return out;
        }
        if (kind == NameScope::Kind::kWrite && (q == "new" || q == "old")) {
            const bool allowed = q == "new" ? m_scope.allow_new : m_scope.allow_old;
            if (!allowed) {
                error(n.span, ErrorCode::kRulesWrongContext,
                      fmt::format("{} is not available in {} {} rule; expected {}", shown,
                                  m_scope.write_op == "delete" ? "a" : "an", m_scope.write_op,
                                  m_scope.write_op == "insert" ? "new.<column> (an insert has no old row)"
                                                               : "old.<column> (a delete has no new row)"));
                return out;
            }
            return column(col, q == "new" ? RowSource::kNew : RowSource::kOld);
        }
        std::string expected;
        if (m_scope.streams) {
            error(n.span, ErrorCode::kRulesUnknownName,
                  has_table(kind)
                      ? fmt::format("unknown table or alias '{}' in {}; expected '{}'{}", q, shown,
                                    m_scope.alias.empty() ? m_scope.table : m_scope.alias,
                                    !m_scope.alias.empty() && q == m_scope.table ? " (the table is aliased)" : "")
                  : kind == NameScope::Kind::kParameterEach
                      ? fmt::format("unknown table or alias '{}' in {}; expected '{}'", q, shown, m_scope.each_name)
                      : fmt::format("unknown name {}; expected auth.user_id(), auth.parameter('<name>'), "
                                    "connection.parameter('<name>') or subscription.parameter('<name>')",
                                    shown));
            return out;
        }
        if (has_table(kind)) {
            expected = fmt::format("'{}'", m_scope.alias.empty() ? m_scope.table : m_scope.alias);
            if (!m_scope.alias.empty() && q == m_scope.table) {
                expected += " (the table is aliased)";
            }
        } else if (kind == NameScope::Kind::kParameterEach) {
            expected = fmt::format("'{}'", m_scope.each_name);
        } else if (kind == NameScope::Kind::kWrite) {
            expected = "new, old";
        } else {
            expected = "request or token_parameters";
        }
        if (kind == NameScope::Kind::kData) {
            expected += " or bucket";
        } else if (kind != NameScope::Kind::kWrite) {
            if (kind != NameScope::Kind::kParameterRequest) {
                expected += ", request or token_parameters";
            }
        } else {
            expected += ", request or token_parameters";
        }
        error(n.span, ErrorCode::kRulesUnknownName,
              fmt::format("unknown table or alias '{}' in {}; expected {}", q, shown, expected));
        return out;
    }
    // schema.table.column
    if (has_table(kind) && m_scope.alias.empty() && parts[1] == m_scope.table &&
        parts[0] == (m_scope.schema.empty() ? "public" : m_scope.schema)) {
        return column(parts[2], RowSource::kRow);
    }
    error(n.span, ErrorCode::kRulesUnknownName,
          fmt::format("unknown table '{}.{}' in {}; expected the FROM table", parts[0], parts[1], shown));
    return out;
}

CExpr ExprCompiler::call(const Node& n, unsigned& uses) {
    CExpr out;
    const auto& parts = n.names;
    const std::string shown = quote(m_sql, n.span);
    if (m_scope.streams && parts.size() == 2 && parts[0] == "request") {
        error(n.span, ErrorCode::kRulesUnknownFunction,
              fmt::format("{} belongs to bucket_definitions; in Sync Streams expected auth.user_id(), "
                          "auth.parameters(), auth.parameter('<name>'), connection.parameter('<name>') or "
                          "subscription.parameter('<name>')",
                          shown));
        return out;
    }
    if (m_scope.streams && parts.size() == 2 &&
        (parts[0] == "auth" || parts[0] == "connection" || parts[0] == "subscription")) {
        return stream_call(n, uses);
    }
    if (parts.size() == 2 && parts[0] == "request") {
        const std::string& fn = parts[1];
        if (fn != "user_id" && fn != "jwt" && fn != "parameters") {
            error(n.span, ErrorCode::kRulesUnknownFunction,
                  fmt::format("unknown request function {}; expected request.user_id(), request.jwt() or "
                              "request.parameters()",
                              shown));
            return out;
        }
        if (!n.args.empty()) {
            error(n.span, ErrorCode::kRulesWrongArguments,
                  fmt::format("request.{}() takes no arguments; found {}", fn, shown));
        }
        if (!is_request_scope(m_scope.kind)) {
            error(n.span, ErrorCode::kRulesWrongContext,
                  fmt::format("request value {} cannot be used in a data query; expected a column or "
                              "bucket.<parameter> (filter by request values in a parameter query)",
                              shown));
            return out;
        }
        out.op = fn == "user_id" ? Op::kUserId : fn == "jwt" ? Op::kJwt : Op::kClientParams;
        uses |= kUsesRequest | (fn == "parameters" ? kUsesClient : kUsesAuth);
        if (fn == "parameters" && !m_has_client) {
            m_has_client = true;
            m_client_span = n.span;
        }
        return out;
    }
    if (parts.size() != 1) {
        error(n.span, ErrorCode::kRulesUnknownFunction,
              m_scope.streams ? fmt::format("unknown function {}; expected one of: {}, auth.user_id(), "
                                            "auth.parameters(), auth.parameter('<name>'), "
                                            "connection.parameters(), connection.parameter('<name>'), "
                                            "subscription.parameters(), subscription.parameter('<name>')",
                                            shown, function_names())
                              : fmt::format("unknown function {}; expected one of: {}, request.user_id(), "
                                            "request.jwt(), request.parameters()",
                                            shown, function_names()));
        return out;
    }
    const std::string& fn = parts[0];
    const FunctionInfo* info = find_function(fn);
    if (info == nullptr) {
        if (fn == "substr") {
            error(n.span, ErrorCode::kRulesUnknownFunction,
                  fmt::format("substr is not supported by the sync-rules dialect in {}; expected "
                              "substring(text, start[, length])",
                              shown));
        } else if (fn == "json_each") {
            error(n.span, ErrorCode::kRulesWrongContext,
                  fmt::format("json_each can only be used in the FROM of a parameter query; found {}", shown));
        } else {
            error(n.span, ErrorCode::kRulesUnknownFunction,
                  fmt::format("unknown function '{}' in {}; expected one of: {}", fn, shown, function_names()));
        }
        for (const auto& a : n.args) {
            (void)compile(a, uses);
        }
        return out;
    }
    const int argc = static_cast<int>(n.args.size());
    if (argc < info->min_args || argc > info->max_args) {
        error(n.span, ErrorCode::kRulesWrongArguments,
              fmt::format("{}() takes {} argument{}, got {} in {}; expected {}", fn,
                          info->min_args == info->max_args ? std::to_string(info->min_args)
                                                           : fmt::format("{} to {}", info->min_args, info->max_args),
                          info->max_args == 1 ? "" : "s", argc, shown, info->signature));
        return out;
    }
    if (info->fn == Fn::kUnixepoch || info->fn == Fn::kDatetime) {
        const auto& first = n.args[0];
        if (first.kind == NodeKind::kLiteral && first.literal.type() == ValueType::kText) {
            std::string lower = first.literal.bytes();
            for (auto& c : lower) {
                c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
            }
            if (lower == "now") {
                error(first.span, ErrorCode::kRulesNotDeterministic,
                      fmt::format("{}('now') is not deterministic; expected a column or a fixed time", fn));
            }
        }
    }
    out.op = Op::kCall;
    out.fn = info->fn;
    for (const auto& a : n.args) {
        out.args.push_back(compile(a, uses));
    }
    return out;
}

CExpr ExprCompiler::stream_call(const Node& n, unsigned& uses) {
    CExpr out;
    const std::string& source = n.names[0];
    const std::string& fn = n.names[1];
    const std::string shown = quote(m_sql, n.span);
    const bool is_auth = source == "auth";
    const bool is_sub = source == "subscription";
    const bool known = fn == "parameter" || fn == "parameters" || (is_auth && fn == "user_id");
    if (!known) {
        error(n.span, ErrorCode::kRulesUnknownFunction,
              fmt::format("unknown function {}; expected {}.parameter('<name>') or {}.parameters(){}", shown, source,
                          source, is_auth ? " or auth.user_id()" : ""));
        return out;
    }
    if (!is_request_scope(m_scope.kind)) {
        error(n.span, ErrorCode::kRulesWrongContext,
              fmt::format("{} cannot be used here; expected table columns", shown));
        return out;
    }
    if (fn == "parameter") {
        if (n.args.size() != 1 || n.args[0].kind != NodeKind::kLiteral || n.args[0].literal.type() != ValueType::kText) {
            error(n.span, ErrorCode::kRulesWrongArguments,
                  fmt::format("{}.parameter() takes one text literal, the parameter name; found {}", source, shown));
            return out;
        }
        out.op = is_auth ? Op::kClaim : is_sub ? Op::kSubParam : Op::kUserParam;
        out.name = n.args[0].literal.bytes();
    } else {
        if (!n.args.empty()) {
            error(n.span, ErrorCode::kRulesWrongArguments, fmt::format("{}.{}() takes no arguments; found {}", source,
                                                                       fn, shown));
        }
        out.op = is_auth ? (fn == "user_id" ? Op::kUserId : Op::kJwt) : is_sub ? Op::kSubParams : Op::kClientParams;
    }
    uses |= kUsesRequest | (is_auth ? kUsesAuth : kUsesClient) | (is_sub ? kUsesSubscription : 0U);
    if (!is_auth && !m_has_client) {
        m_has_client = true;
        m_client_span = n.span;
    }
    return out;
}

}  // namespace sluice::config::rules::detail
