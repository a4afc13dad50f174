// Recursive-descent parser for the sync-rules SQL subset, SQLite operator precedence (see parser.h).
#include "config/rules/parser.h"

#include <algorithm>
#include <array>
#include <memory>

#include <fmt/format.h>

#include "config/rules/lexer.h"

namespace sluice::config::rules {
namespace {

using protocol::ErrorCode;

constexpr std::array<std::string_view, 38> kReserved{
    "select", "from",  "where",  "and",   "or",     "not",   "is",     "null",    "in",     "like",
    "glob",   "regexp", "match", "between", "case", "when",  "then",   "else",    "end",    "cast",
    "as",     "join",  "inner",  "left",  "right",  "outer", "cross",  "on",      "group",  "order",
    "by",     "limit", "having", "union", "offset", "exists", "distinct", "collate"};

bool reserved(std::string_view word) { return std::find(kReserved.begin(), kReserved.end(), word) != kReserved.end(); }

// Thrown to abandon the current query after a syntax error (caught in parse_*; never escapes).
struct Abandon {};

class Parser {
public:
    Parser(std::string_view sql, std::vector<SqlError>& errors, Dialect dialect = Dialect::kBucketDefinitions)
        : m_sql(sql), m_errors(errors), m_streams(dialect == Dialect::kStreams) {
        m_tokens = tokenize(sql, errors, dialect);
        m_lex_failed = !errors.empty() && std::any_of(errors.begin(), errors.end(), [](const SqlError& e) {
            return e.code == ErrorCode::kRulesSqlSyntax;
        });
    }

    [[nodiscard]] bool lex_failed() const { return m_lex_failed; }
    [[nodiscard]] std::vector<std::pair<Feature, Span>>& features() { return m_features; }

    SelectStatement select_statement() {
        SelectStatement stmt = select_body();
        trailing();
        return stmt;
    }

    // SELECT ... [FROM ...] [WHERE ...], without what may follow it.
    SelectStatement select_body() {
        SelectStatement stmt;
        if (!is_keyword("select")) {
            fail(fmt::format("expected SELECT at the start of the query, found {}", describe(peek())));
        }
        stmt.select_span = next().span;
        stmt.span = stmt.select_span;
        if (is_keyword("distinct")) {
            unsupported(peek().span, "SELECT DISTINCT is not supported by the sync-rules dialect; expected a plain "
                                     "SELECT");
            next();
        }
        if (!is_keyword("from") && !is_keyword("where") && !at_end()) {
            stmt.items.push_back(select_item());
            while (is_op(",")) {
                next();
                stmt.items.push_back(select_item());
            }
        }
        if (is_keyword("from")) {
            next();
            stmt.from = from_clause();
        }
        if (is_keyword("where")) {
            next();
            stmt.where = expression();
        }
        stmt.span.end = m_tokens[m_pos > 0 ? m_pos - 1 : 0].span.end;
        return stmt;
    }

    Node whole_expression() {
        Node e = expression();
        trailing();
        return e;
    }

private:
    // ---- token helpers
    const Token& peek(std::size_t ahead = 0) const {
        return m_tokens[std::min(m_pos + ahead, m_tokens.size() - 1)];
    }
    const Token& next() {
        const Token& t = m_tokens[m_pos];
        if (m_pos + 1 < m_tokens.size()) {
            ++m_pos;
        }
        return t;
    }
    bool at_end() const { return peek().kind == TokenKind::kEnd; }
    bool is_keyword(std::string_view kw, std::size_t ahead = 0) const {
        return peek(ahead).kind == TokenKind::kIdent && peek(ahead).text == kw;
    }
    bool is_op(std::string_view op, std::size_t ahead = 0) const {
        return peek(ahead).kind == TokenKind::kOperator && peek(ahead).text == op;
    }
    std::string_view raw(Span s) const { return m_sql.substr(s.begin, s.end - s.begin); }
    std::string describe(const Token& t) const {
        if (t.kind == TokenKind::kEnd) {
            return "end of the query";
        }
        std::string text(raw(t.span));
        if (text.size() > 40) {
            text.resize(37);
            text += "...";
        }
        return "'" + text + "'";
    }

    [[noreturn]] void fail(std::string message) {
        m_errors.push_back({peek().span, ErrorCode::kRulesSqlSyntax, std::move(message)});
        throw Abandon{};
    }
    void unsupported(Span span, std::string message) {
        m_errors.push_back({span, ErrorCode::kRulesUnsupported, std::move(message)});
    }
    void expect_op(std::string_view op, std::string_view what) {
        if (!is_op(op)) {
            fail(fmt::format("unexpected {}; expected {}", describe(peek()), what));
        }
        next();
    }

    void trailing() {
        if (is_op(";")) {
            next();
        }
        if (at_end()) {
            return;
        }
        const Token& t = peek();
        if (t.kind == TokenKind::kIdent) {
            static constexpr std::array<std::pair<std::string_view, std::string_view>, 8> kClauses{{
                {"group", "GROUP BY"}, {"order", "ORDER BY"}, {"limit", "LIMIT"}, {"having", "HAVING"},
                {"union", "UNION"}, {"offset", "OFFSET"}, {"window", "WINDOW"}, {"returning", "RETURNING"},
            }};
            for (const auto& [kw, name] : kClauses) {
                if (t.text == kw) {
                    unsupported(t.span, fmt::format("{} is not supported by the sync-rules dialect; expected the end "
                                                    "of the query after WHERE",
                                                    name));
                    throw Abandon{};
                }
            }
        }
        fail(fmt::format("unexpected {}; expected the end of the query", describe(t)));
    }

    // ---- SELECT parts
    SelectItem select_item() {
        SelectItem item;
        const Span start = peek().span;
        if (is_op("*")) {
            item.star = true;
            item.span = next().span;
            return item;
        }
        if ((peek().kind == TokenKind::kIdent || peek().kind == TokenKind::kQuotedIdent) && is_op(".", 1) &&
            is_op("*", 2)) {
            item.star = true;
            item.star_qualifier = next().text;
            next();
            item.span = {start.begin, next().span.end};
            return item;
        }
        item.expr = expression();
        item.span = {start.begin, item.expr.span.end};
        if (is_keyword("as")) {
            next();
            if (peek().kind != TokenKind::kIdent && peek().kind != TokenKind::kQuotedIdent) {
                fail(fmt::format("unexpected {}; expected a name after AS", describe(peek())));
            }
            item.alias = peek().text;
            item.span.end = next().span.end;
        } else if (peek().kind == TokenKind::kQuotedIdent ||
                   (peek().kind == TokenKind::kIdent && !reserved(peek().text))) {
            item.alias = peek().text;
            item.span.end = next().span.end;
        }
        return item;
    }

    FromClause from_clause() {
        FromClause from;
        const Span start = peek().span;
        if (is_op("(")) {
            unsupported(peek().span, "subqueries are not supported by the sync-rules dialect; expected a table name "
                                     "or json_each(...) after FROM");
            throw Abandon{};
        }
        if (peek().kind != TokenKind::kIdent && peek().kind != TokenKind::kQuotedIdent) {
            fail(fmt::format("unexpected {}; expected a table name or json_each(...) after FROM", describe(peek())));
        }
        if (peek().kind == TokenKind::kIdent && reserved(peek().text)) {
            fail(fmt::format("unexpected {}; expected a table name or json_each(...) after FROM", describe(peek())));
        }
        if (is_op("(", 1)) {
            from.is_function = true;
            from.call = primary();
        } else {
            from.table.push_back(next().text);
            if (is_op(".")) {
                next();
                if (peek().kind != TokenKind::kIdent && peek().kind != TokenKind::kQuotedIdent) {
                    fail(fmt::format("unexpected {}; expected a table name after the schema", describe(peek())));
                }
                from.table.push_back(next().text);
            }
        }
        from.span = {start.begin, m_tokens[m_pos - 1].span.end};
        if (is_keyword("as")) {
            next();
            if (peek().kind != TokenKind::kIdent && peek().kind != TokenKind::kQuotedIdent) {
                fail(fmt::format("unexpected {}; expected an alias after AS", describe(peek())));
            }
            from.alias = next().text;
        } else if (peek().kind == TokenKind::kQuotedIdent ||
                   (peek().kind == TokenKind::kIdent && !reserved(peek().text) && peek().text != "natural")) {
            from.alias = next().text;
        }
        while (m_streams && !from.is_function && (is_keyword("join") || (is_keyword("inner") && is_keyword("join", 1)))) {
            from.joins.push_back(join_clause());
        }
        if (is_op(",") || is_keyword("join") || is_keyword("inner") || is_keyword("left") || is_keyword("right") ||
            is_keyword("cross") || is_keyword("natural") || is_keyword("full")) {
            if (m_streams) {
                unsupported(peek().span, fmt::format("only INNER JOIN <table> ON <a.x = b.y> is supported in Sync "
                                                     "Streams (found {}); expected INNER JOIN",
                                                     describe(peek())));
                throw Abandon{};
            }
            unsupported(peek().span, fmt::format("joins are not supported by the sync-rules dialect (found {}); "
                                                 "expected one table per query",
                                                 describe(peek())));
            throw Abandon{};
        }
        return from;
    }

    JoinClause join_clause() {
        JoinClause join;
        const Span start = peek().span;
        m_features.emplace_back(Feature::kJoin, start);
        if (is_keyword("inner")) {
            next();
        }
        next();  // JOIN
        if (peek().kind != TokenKind::kIdent && peek().kind != TokenKind::kQuotedIdent) {
            fail(fmt::format("unexpected {}; expected a table name after JOIN", describe(peek())));
        }
        if (peek().kind == TokenKind::kIdent && reserved(peek().text)) {
            fail(fmt::format("unexpected {}; expected a table name after JOIN", describe(peek())));
        }
        if (is_op("(", 1)) {
            unsupported(peek().span, fmt::format("{} cannot be joined; expected INNER JOIN <table>", describe(peek())));
            throw Abandon{};
        }
        join.table.push_back(next().text);
        if (is_op(".")) {
            next();
            if (peek().kind != TokenKind::kIdent && peek().kind != TokenKind::kQuotedIdent) {
                fail(fmt::format("unexpected {}; expected a table name after the schema", describe(peek())));
            }
            join.table.push_back(next().text);
        }
        if (is_keyword("as")) {
            next();
            if (peek().kind != TokenKind::kIdent && peek().kind != TokenKind::kQuotedIdent) {
                fail(fmt::format("unexpected {}; expected an alias after AS", describe(peek())));
            }
            join.alias = next().text;
        } else if (peek().kind == TokenKind::kQuotedIdent || (peek().kind == TokenKind::kIdent && !reserved(peek().text))) {
            join.alias = next().text;
        }
        join.span = {start.begin, m_tokens[m_pos - 1].span.end};
        if (!is_keyword("on")) {
            fail(fmt::format("unexpected {}; expected ON <a.x = b.y> after INNER JOIN {}", describe(peek()),
                             raw(join.span).substr(raw(join.span).rfind(' ') + 1)));
        }
        next();
        join.on = expression();
        return join;
    }

    // ---- expressions, lowest precedence first
    Node make_binary(BinaryOp op, Node lhs, Node rhs) {
        Node n;
        n.kind = NodeKind::kBinary;
        n.op = op;
        n.span = {lhs.span.begin, rhs.span.end};
        n.args.push_back(std::move(lhs));
        n.args.push_back(std::move(rhs));
        return n;
    }

    Node expression() {
        if (++m_depth > 200) {
            fail("expression nested too deeply; expected at most 200 levels");
        }
        Node n = or_expr();
        --m_depth;
        return n;
    }

    Node or_expr() {
        Node lhs = and_expr();
        while (is_keyword("or")) {
            next();
            lhs = make_binary(BinaryOp::kOr, std::move(lhs), and_expr());
        }
        return lhs;
    }

    Node and_expr() {
        Node lhs = not_expr();
        while (is_keyword("and")) {
            next();
            lhs = make_binary(BinaryOp::kAnd, std::move(lhs), not_expr());
        }
        return lhs;
    }

    Node not_expr() {
        if (is_keyword("not")) {
            const Span s = next().span;
            if (++m_depth > 200) {
                fail("expression nested too deeply; expected at most 200 levels");
            }
            Node operand = not_expr();
            --m_depth;
            Node n;
            n.kind = NodeKind::kNot;
            n.span = {s.begin, operand.span.end};
            n.args.push_back(std::move(operand));
            return n;
        }
        return equality();
    }

    Node equality() {
        Node lhs = comparison();
        for (;;) {
            if (is_op("=") || is_op("==") || is_op("!=") || is_op("<>")) {
                const bool eq = peek().text == "=" || peek().text == "==";
                next();
                lhs = make_binary(eq ? BinaryOp::kEq : BinaryOp::kNe, std::move(lhs), comparison());
                continue;
            }
            if (is_keyword("is")) {
                const Span is_span = next().span;
                bool negated = false;
                if (is_keyword("not")) {
                    negated = true;
                    next();
                }
                if (!is_keyword("null")) {
                    if (is_keyword("distinct")) {
                        unsupported(peek().span, "IS [NOT] DISTINCT FROM is not supported by the sync-rules dialect; "
                                                 "expected IS NULL or IS NOT NULL");
                        throw Abandon{};
                    }
                    fail(fmt::format("unexpected {}; expected NULL after IS{} (only IS NULL and IS NOT NULL are "
                                     "supported)",
                                     describe(peek()), negated ? " NOT" : ""));
                }
                Node n;
                n.kind = negated ? NodeKind::kIsNotNull : NodeKind::kIsNull;
                n.span = {lhs.span.begin, next().span.end};
                (void)is_span;
                n.args.push_back(std::move(lhs));
                lhs = std::move(n);
                continue;
            }
            bool negated = false;
            Span not_span{};
            if (is_keyword("not") && (is_keyword("in", 1) || is_keyword("like", 1) || is_keyword("glob", 1) ||
                                      is_keyword("regexp", 1) || is_keyword("match", 1) || is_keyword("between", 1))) {
                negated = true;
                not_span = next().span;
            }
            if (is_keyword("in")) {
                next();
                Node rhs;
                if (is_op("(")) {
                    if (is_keyword("select", 1) && m_streams) {
                        rhs = subquery();
                    } else if (is_keyword("select", 1)) {
                        unsupported(peek(1).span, "subqueries are not supported by the sync-rules dialect; expected "
                                                  "IN <JSON array expression>");
                        throw Abandon{};
                    }
                }
                if (rhs.kind == NodeKind::kSubquery) {
                    // parsed above
                } else if (is_op("(")) {
                    const Span open = peek().span;
                    next();
                    std::vector<Node> list;
                    if (!is_op(")")) {
                        list.push_back(expression());
                        while (is_op(",")) {
                            next();
                            list.push_back(expression());
                        }
                    }
                    const Span close = peek().span;
                    expect_op(")", "')' to close the IN list");
                    if (list.size() == 1) {
                        rhs = std::move(list[0]);
                    } else if (m_streams) {
                        const Span whole{open.begin, close.end};
                        unsupported(whole, fmt::format("a parenthesised list {} is not supported in Sync Streams; "
                                                       "expected ARRAY[...] (or ROW(...)) for a literal list, or a "
                                                       "JSON array expression",
                                                       raw(whole)));
                        rhs.kind = NodeKind::kInvalid;
                        rhs.span = whole;
                    } else {
                        const Span whole{open.begin, close.end};
                        unsupported(whole, fmt::format("IN with a literal list {} is not supported by the sync-rules "
                                                       "dialect; expected IN <JSON array expression> (e.g. IN "
                                                       "table.array_column or IN request.jwt() -> 'ids')",
                                                       raw(whole)));
                        rhs.kind = NodeKind::kInvalid;
                        rhs.span = whole;
                    }
                } else {
                    rhs = comparison();
                }
                Node n;
                n.kind = NodeKind::kIn;
                n.span = {lhs.span.begin, rhs.span.end};
                n.args.push_back(std::move(lhs));
                n.args.push_back(std::move(rhs));
                lhs = std::move(n);
                if (negated) {
                    Node wrap;
                    wrap.kind = NodeKind::kNot;
                    wrap.span = lhs.span;
                    (void)not_span;
                    wrap.args.push_back(std::move(lhs));
                    lhs = std::move(wrap);
                }
                continue;
            }
            if (is_keyword("like") || is_keyword("glob") || is_keyword("regexp") || is_keyword("match")) {
                const Token& op = next();
                std::string name = op.text;
                for (auto& c : name) {
                    c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c);
                }
                unsupported(op.span, fmt::format("{}{} is not supported by the sync-rules dialect; expected =, !=, "
                                                 "<, >, <=, >=, IS [NOT] NULL or IN",
                                                 negated ? "NOT " : "", name));
                Node rhs = comparison();
                if (is_keyword("escape")) {
                    next();
                    rhs = comparison();
                }
                Node n;
                n.kind = NodeKind::kInvalid;
                n.span = {lhs.span.begin, rhs.span.end};
                lhs = std::move(n);
                continue;
            }
            if (is_keyword("between") && m_streams) {
                m_features.emplace_back(Feature::kBetween, peek().span);
                next();
                Node low = comparison();
                if (!is_keyword("and")) {
                    fail(fmt::format("unexpected {}; expected AND in BETWEEN", describe(peek())));
                }
                next();
                Node high = comparison();
                const Span whole{lhs.span.begin, high.span.end};
                Node ge = make_binary(BinaryOp::kGe, lhs, std::move(low));
                Node le = make_binary(BinaryOp::kLe, std::move(lhs), std::move(high));
                ge.span = whole;
                le.span = whole;
                Node both = make_binary(BinaryOp::kAnd, std::move(ge), std::move(le));
                both.span = whole;
                if (negated) {
                    Node wrap;
                    wrap.kind = NodeKind::kNot;
                    wrap.span = whole;
                    wrap.args.push_back(std::move(both));
                    both = std::move(wrap);
                }
                lhs = std::move(both);
                continue;
            }
            if (is_keyword("between")) {
                const Span s = next().span;
                unsupported(s, fmt::format("{}BETWEEN is not supported by the sync-rules dialect; expected "
                                           "x >= a AND x <= b",
                                           negated ? "NOT " : ""));
                Node low = comparison();
                if (!is_keyword("and")) {
                    fail(fmt::format("unexpected {}; expected AND in BETWEEN", describe(peek())));
                }
                next();
                Node high = comparison();
                Node n;
                n.kind = NodeKind::kInvalid;
                n.span = {lhs.span.begin, high.span.end};
                lhs = std::move(n);
                continue;
            }
            if (negated) {
                fail(fmt::format("unexpected {}; expected IN after NOT", describe(peek())));
            }
            return lhs;
        }
    }

    Node comparison() {
        Node lhs = additive();
        for (;;) {
            BinaryOp op;
            if (is_op("<")) {
                op = BinaryOp::kLt;
            } else if (is_op("<=")) {
                op = BinaryOp::kLe;
            } else if (is_op(">")) {
                op = BinaryOp::kGt;
            } else if (is_op(">=")) {
                op = BinaryOp::kGe;
            } else {
                return lhs;
            }
            next();
            lhs = make_binary(op, std::move(lhs), additive());
        }
    }

    Node additive() {
        Node lhs = multiplicative();
        for (;;) {
            if (is_op("+") || is_op("-")) {
                const BinaryOp op = peek().text == "+" ? BinaryOp::kAdd : BinaryOp::kSub;
                next();
                lhs = make_binary(op, std::move(lhs), multiplicative());
                continue;
            }
            return lhs;
        }
    }

    Node multiplicative() {
        Node lhs = concat();
        for (;;) {
            if (is_op("*") || is_op("/")) {
                const BinaryOp op = peek().text == "*" ? BinaryOp::kMul : BinaryOp::kDiv;
                next();
                lhs = make_binary(op, std::move(lhs), concat());
                continue;
            }
            if (is_op("%")) {
                unsupported(next().span, "the % operator is not supported by the sync-rules dialect; expected "
                                         "+, -, * or /");
                Node rhs = concat();
                Node n;
                n.kind = NodeKind::kInvalid;
                n.span = {lhs.span.begin, rhs.span.end};
                lhs = std::move(n);
                continue;
            }
            return lhs;
        }
    }

    Node concat() {
        Node lhs = unary();
        for (;;) {
            BinaryOp op;
            if (is_op("||")) {
                op = BinaryOp::kConcat;
            } else if (is_op("->")) {
                op = BinaryOp::kArrow;
            } else if (is_op("->>")) {
                op = BinaryOp::kArrow2;
            } else {
                return lhs;
            }
            next();
            lhs = make_binary(op, std::move(lhs), unary());
        }
    }

    Node unary() {
        if (is_op("-") || is_op("+")) {
            const Token& op = next();
            if (++m_depth > 200) {
                fail("expression nested too deeply; expected at most 200 levels");
            }
            Node operand = unary();
            --m_depth;
            const Span whole{op.span.begin, operand.span.end};
            unsupported(whole, fmt::format("unary {} in {} is not supported by the sync-rules dialect; expected "
                                           "{}(write 0 {} x)",
                                           op.text, raw(whole), op.text == "-" ? "a subtraction " : "",
                                           op.text));
            Node n;
            n.kind = NodeKind::kInvalid;
            n.span = whole;
            return n;
        }
        return postfix();
    }

    Node postfix() {
        Node n = primary();
        for (;;) {
            if (is_op("::")) {
                next();
                if (peek().kind != TokenKind::kIdent) {
                    fail(fmt::format("unexpected {}; expected a type name after ::", describe(peek())));
                }
                Node cast;
                cast.kind = NodeKind::kCast;
                cast.cast_type = peek().text;
                cast.type_span = peek().span;
                cast.span = {n.span.begin, next().span.end};
                cast.args.push_back(std::move(n));
                n = std::move(cast);
                continue;
            }
            if (is_keyword("collate")) {
                unsupported(peek().span, "COLLATE is not supported by the sync-rules dialect; expected an "
                                         "operator or the end of the expression");
                throw Abandon{};
            }
            return n;
        }
    }

    Node primary() {
        const Token& t = peek();
        Node n;
        n.span = t.span;
        switch (t.kind) {
            case TokenKind::kInteger:
            case TokenKind::kReal:
            case TokenKind::kString:
            case TokenKind::kBlob:
                n.kind = NodeKind::kLiteral;
                n.literal = t.value;
                next();
                return n;
            case TokenKind::kEnd: fail("unexpected end of the query; expected an expression");
            case TokenKind::kOperator:
                if (t.text == "(") {
                    next();
                    if (is_keyword("select")) {
                        unsupported(peek().span, "subqueries are not supported by the sync-rules dialect; expected "
                                                 "an expression");
                        throw Abandon{};
                    }
                    Node inner = expression();
                    if (is_op(",")) {
                        unsupported(peek().span, "row values (a, b) are not supported by the sync-rules dialect; "
                                                 "expected ')'");
                        throw Abandon{};
                    }
                    const Span close = peek().span;
                    expect_op(")", "')'");
                    inner.span = {t.span.begin, close.end};
                    return inner;
                }
                fail(fmt::format("unexpected {}; expected an expression", describe(t)));
            case TokenKind::kIdent:
                if (t.text == "null" || t.text == "true" || t.text == "false") {
                    n.kind = NodeKind::kLiteral;
                    n.literal = t.text == "null" ? Value::null() : Value::integer(t.text == "true" ? 1 : 0);
                    next();
                    return n;
                }
                if (t.text == "cast" && is_op("(", 1)) {
                    next();
                    next();
                    Node operand = expression();
                    if (!is_keyword("as")) {
                        fail(fmt::format("unexpected {}; expected AS in CAST(x AS type)", describe(peek())));
                    }
                    next();
                    if (peek().kind != TokenKind::kIdent) {
                        fail(fmt::format("unexpected {}; expected a type name (text, integer, real, numeric, blob)",
                                         describe(peek())));
                    }
                    n.kind = NodeKind::kCast;
                    n.cast_type = peek().text;
                    n.type_span = next().span;
                    const Span close = peek().span;
                    expect_op(")", "')' to close CAST");
                    n.span.end = close.end;
                    n.args.push_back(std::move(operand));
                    return n;
                }
                if (t.text == "case" && m_streams) {
                    return case_expression();
                }
                if (m_streams && ((t.text == "array" && is_op("[", 1)) || (t.text == "row" && is_op("(", 1)))) {
                    return list_expression();
                }
                if (t.text == "case") {
                    skip_case();
                    n.kind = NodeKind::kInvalid;
                    return n;
                }
                if (t.text == "exists") {
                    unsupported(t.span, "EXISTS subqueries are not supported by the sync-rules dialect; expected an "
                                        "expression");
                    throw Abandon{};
                }
                if (reserved(t.text)) {
                    fail(fmt::format("unexpected {}; expected an expression", describe(t)));
                }
                [[fallthrough]];
            case TokenKind::kQuotedIdent: return name_or_call();
        }
        fail("unexpected token; expected an expression");
    }

    // (SELECT ...) after IN; the caller saw '(' SELECT.
    Node subquery() {
        const Span open = next().span;
        if (m_subquery_depth > 0) {
            m_features.emplace_back(Feature::kNestedSubquery, peek().span);
        }
        if (++m_depth > 200 || m_subquery_depth >= 16) {
            fail("subqueries nested too deeply; expected at most 16 levels");
        }
        ++m_subquery_depth;
        auto stmt = std::make_shared<SelectStatement>(select_body());
        --m_subquery_depth;
        --m_depth;
        const Span close = peek().span;
        expect_op(")", "')' to close the subquery");
        Node n;
        n.kind = NodeKind::kSubquery;
        n.span = {open.begin, close.end};
        n.subquery = std::move(stmt);
        return n;
    }

    Node case_expression() {
        Node n;
        n.kind = NodeKind::kCase;
        n.span = peek().span;
        m_features.emplace_back(Feature::kCase, n.span);
        next();
        if (!is_keyword("when")) {
            n.has_operand = true;
            n.args.push_back(expression());
        }
        if (!is_keyword("when")) {
            fail(fmt::format("unexpected {}; expected WHEN in CASE", describe(peek())));
        }
        while (is_keyword("when")) {
            next();
            n.args.push_back(expression());
            if (!is_keyword("then")) {
                fail(fmt::format("unexpected {}; expected THEN after CASE ... WHEN <condition>", describe(peek())));
            }
            next();
            n.args.push_back(expression());
        }
        if (is_keyword("else")) {
            next();
            n.has_else = true;
            n.args.push_back(expression());
        }
        if (!is_keyword("end")) {
            fail(fmt::format("unexpected {}; expected WHEN, ELSE or END in CASE", describe(peek())));
        }
        n.span.end = next().span.end;
        return n;
    }

    // ARRAY[a, b, ...] or ROW(a, b, ...).
    Node list_expression() {
        Node n;
        n.kind = NodeKind::kList;
        n.span = next().span;
        m_features.emplace_back(Feature::kList, n.span);
        const bool bracket = is_op("[");
        next();
        const char* close_op = bracket ? "]" : ")";
        if (!is_op(close_op)) {
            n.args.push_back(expression());
            while (is_op(",")) {
                next();
                n.args.push_back(expression());
            }
        }
        const Span close = peek().span;
        expect_op(close_op, bracket ? "',' or ']' in ARRAY[...]" : "',' or ')' in ROW(...)");
        n.span.end = close.end;
        return n;
    }

    void skip_case() {
        const Span start = next().span;
        int depth = 1;
        while (!at_end() && depth > 0) {
            if (is_keyword("case")) {
                ++depth;
            } else if (is_keyword("end")) {
                --depth;
            }
            next();
        }
        const Span whole{start.begin, m_tokens[m_pos - 1].span.end};
        unsupported(start, "CASE is not supported by the sync-rules dialect; expected iif(condition, a, b) or "
                           "ifnull(a, b)");
        if (depth > 0) {
            m_errors.push_back({whole, ErrorCode::kRulesSqlSyntax, "CASE without END; expected END"});
            throw Abandon{};
        }
    }

    Node name_or_call() {
        Node n;
        n.span = peek().span;
        n.names.push_back(peek().text);
        n.quoted.push_back(peek().kind == TokenKind::kQuotedIdent);
        next();
        while (is_op(".")) {
            next();
            if (peek().kind != TokenKind::kIdent && peek().kind != TokenKind::kQuotedIdent) {
                fail(fmt::format("unexpected {}; expected a name after '.'", describe(peek())));
            }
            if (n.names.size() >= 3) {
                fail(fmt::format("too many dotted parts in {}; expected at most schema.table.column",
                                 raw({n.span.begin, peek().span.end})));
            }
            n.names.push_back(peek().text);
            n.quoted.push_back(peek().kind == TokenKind::kQuotedIdent);
            n.span.end = next().span.end;
        }
        if (!is_op("(")) {
            n.kind = NodeKind::kName;
            return n;
        }
        next();
        n.kind = NodeKind::kCall;
        if (is_keyword("distinct")) {
            unsupported(peek().span, "DISTINCT in a function call is not supported; expected plain arguments");
            next();
        }
        if (is_op("*")) {
            unsupported(peek().span, fmt::format("{}(*) is not supported by the sync-rules dialect (no aggregates); "
                                                 "expected arguments",
                                                 n.names.back()));
            next();
        } else if (!is_op(")")) {
            n.args.push_back(expression());
            while (is_op(",")) {
                next();
                n.args.push_back(expression());
            }
        }
        const Span close = peek().span;
        expect_op(")", "',' or ')' in the argument list");
        n.span.end = close.end;
        if (is_keyword("over") || is_keyword("filter")) {
            unsupported(peek().span, "window functions are not supported by the sync-rules dialect");
            throw Abandon{};
        }
        return n;
    }

    std::string_view m_sql;
    std::vector<SqlError>& m_errors;
    std::vector<Token> m_tokens;
    std::size_t m_pos = 0;
    int m_depth = 0;
    int m_subquery_depth = 0;
    bool m_lex_failed = false;
    bool m_streams = false;
    std::vector<std::pair<Feature, Span>> m_features;
};

}  // namespace

ParsedSelect parse_select(std::string_view sql, Dialect dialect) {
    ParsedSelect out;
    Parser parser(sql, out.errors, dialect);
    if (parser.lex_failed()) {
        return out;
    }
    try {
        out.statement = parser.select_statement();
    } catch (const Abandon&) {
        out.statement.reset();
    }
    out.features = std::move(parser.features());
    return out;
}

ParsedExpression parse_expression(std::string_view sql) {
    ParsedExpression out;
    Parser parser(sql, out.errors);
    if (parser.lex_failed()) {
        return out;
    }
    try {
        out.expression = parser.whole_expression();
    } catch (const Abandon&) {
        out.expression.reset();
    }
    return out;
}

}  // namespace sluice::config::rules
