// The SQL tokenizer (see lexer.h).
#include "config/rules/lexer.h"

#include <charconv>
#include <cstdlib>

#include <fmt/format.h>

namespace sluice::config::rules {
namespace {

using protocol::ErrorCode;

bool ident_start(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || static_cast<unsigned char>(c) >= 0x80;
}
bool ident_char(char c) { return ident_start(c) || (c >= '0' && c <= '9') || c == '$'; }
bool digit(char c) { return c >= '0' && c <= '9'; }

Span span_of(std::size_t b, std::size_t e) { return {static_cast<std::uint32_t>(b), static_cast<std::uint32_t>(e)}; }

}  // namespace

std::vector<Token> tokenize(std::string_view sql, std::vector<SqlError>& errors, Dialect dialect) {
    std::vector<Token> out;
    std::size_t i = 0;
    const std::size_t n = sql.size();
    while (i < n) {
        const char c = sql[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f') {
            ++i;
            continue;
        }
        if (c == '-' && i + 1 < n && sql[i + 1] == '-') {
            while (i < n && sql[i] != '\n') {
                ++i;
            }
            continue;
        }
        if (c == '/' && i + 1 < n && sql[i + 1] == '*') {
            const auto close = sql.find("*/", i + 2);
            if (close == std::string_view::npos) {
                errors.push_back({span_of(i, n), ErrorCode::kRulesSqlSyntax, "unterminated comment '/*'; expected '*/'"});
                break;
            }
            i = close + 2;
            continue;
        }
        Token tok;
        const std::size_t start = i;
        if ((c == 'x' || c == 'X') && i + 1 < n && sql[i + 1] == '\'') {
            const auto close = sql.find('\'', i + 2);
            if (close == std::string_view::npos) {
                errors.push_back({span_of(i, n), ErrorCode::kRulesSqlSyntax,
                                  fmt::format("unterminated blob literal {}; expected a closing quote", sql.substr(i))});
                break;
            }
            const auto hex = sql.substr(i + 2, close - i - 2);
            std::string bytes;
            bool ok = hex.size() % 2 == 0;
            for (std::size_t k = 0; ok && k < hex.size(); k += 2) {
                unsigned b = 0;
                auto res = std::from_chars(hex.data() + k, hex.data() + k + 2, b, 16);
                ok = res.ec == std::errc() && res.ptr == hex.data() + k + 2;
                bytes += static_cast<char>(b);
            }
            i = close + 1;
            if (!ok) {
                errors.push_back({span_of(start, i), ErrorCode::kRulesSqlSyntax,
                                  fmt::format("invalid blob literal {}; expected an even number of hex digits",
                                              sql.substr(start, i - start))});
            }
            tok.kind = TokenKind::kBlob;
            tok.value = Value::blob(std::move(bytes));
        } else if (ident_start(c)) {
            while (i < n && ident_char(sql[i])) {
                ++i;
            }
            tok.kind = TokenKind::kIdent;
            tok.text = std::string(sql.substr(start, i - start));
            for (auto& ch : tok.text) {
                ch = static_cast<char>(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
            }
        } else if (c == '"') {
            std::string name;
            ++i;
            bool closed = false;
            while (i < n) {
                if (sql[i] == '"') {
                    if (i + 1 < n && sql[i + 1] == '"') {
                        name += '"';
                        i += 2;
                        continue;
                    }
                    ++i;
                    closed = true;
                    break;
                }
                name += sql[i++];
            }
            if (!closed) {
                errors.push_back({span_of(start, n), ErrorCode::kRulesSqlSyntax,
                                  fmt::format("unterminated quoted name {}; expected a closing '\"'", sql.substr(start))});
                break;
            }
            tok.kind = TokenKind::kQuotedIdent;
            tok.text = std::move(name);
        } else if (c == '\'') {
            std::string text;
            ++i;
            bool closed = false;
            while (i < n) {
                if (sql[i] == '\'') {
                    if (i + 1 < n && sql[i + 1] == '\'') {
                        text += '\'';
                        i += 2;
                        continue;
                    }
                    ++i;
                    closed = true;
                    break;
                }
                text += sql[i++];
            }
            if (!closed) {
                errors.push_back({span_of(start, n), ErrorCode::kRulesSqlSyntax,
                                  fmt::format("unterminated string {}; expected a closing \"'\"", sql.substr(start))});
                break;
            }
            tok.kind = TokenKind::kString;
            tok.value = Value::text(std::move(text));
        } else if (digit(c) || (c == '.' && i + 1 < n && digit(sql[i + 1]))) {
            if (c == '0' && i + 1 < n && (sql[i + 1] == 'x' || sql[i + 1] == 'X')) {
                i += 2;
                while (i < n && ident_char(sql[i])) {
                    ++i;
                }
                errors.push_back({span_of(start, i), ErrorCode::kRulesUnsupported,
                                  fmt::format("hexadecimal literal {} is not supported by the sync-rules dialect; "
                                              "expected a decimal number",
                                              sql.substr(start, i - start))});
                tok.kind = TokenKind::kInteger;
                tok.value = Value::integer(0);
            } else {
                bool is_real = false;
                while (i < n && digit(sql[i])) {
                    ++i;
                }
                if (i < n && sql[i] == '.') {
                    is_real = true;
                    ++i;
                    while (i < n && digit(sql[i])) {
                        ++i;
                    }
                }
                const std::size_t mantissa_end = i;
                if (i < n && (sql[i] == 'e' || sql[i] == 'E')) {
                    std::size_t j = i + 1;
                    if (j < n && (sql[j] == '+' || sql[j] == '-')) {
                        ++j;
                    }
                    if (j < n && digit(sql[j])) {
                        while (j < n && digit(sql[j])) {
                            ++j;
                        }
                        i = j;
                        is_real = true;
                        errors.push_back({span_of(start, i), ErrorCode::kRulesUnsupported,
                                          fmt::format("number literal {} with an exponent is not supported by the "
                                                      "sync-rules dialect; expected digits with an optional '.' "
                                                      "(write {} in full)",
                                                      sql.substr(start, i - start), sql.substr(start, mantissa_end - start))});
                    }
                }
                if (i < n && ident_char(sql[i])) {
                    std::size_t j = i;
                    while (j < n && ident_char(sql[j])) {
                        ++j;
                    }
                    errors.push_back({span_of(start, j), ErrorCode::kRulesSqlSyntax,
                                      fmt::format("invalid number {}; expected digits", sql.substr(start, j - start))});
                    i = j;
                }
                const std::string text(sql.substr(start, i - start));
                if (!is_real) {
                    std::int64_t v = 0;
                    auto res = std::from_chars(text.data(), text.data() + text.size(), v);
                    if (res.ec == std::errc() && res.ptr == text.data() + text.size()) {
                        tok.kind = TokenKind::kInteger;
                        tok.value = Value::integer(v);
                    } else {
                        is_real = true;  // beyond 64 bits: a real, as SQLite reads it
                    }
                }
                if (is_real) {
                    tok.kind = TokenKind::kReal;
                    tok.value = Value::real(std::strtod(text.c_str(), nullptr));
                }
            }
        } else {
            static constexpr std::string_view kThree[] = {"->>"};
            static constexpr std::string_view kTwo[] = {"==", "!=", "<>", "<=", ">=", "||", "->", "::"};
            static constexpr std::string_view kOne = "=<>+-*/%(),.;";
            std::string_view op;
            for (auto candidate : kThree) {
                if (sql.substr(i, 3) == candidate) {
                    op = candidate;
                }
            }
            if (op.empty()) {
                for (auto candidate : kTwo) {
                    if (sql.substr(i, 2) == candidate) {
                        op = candidate;
                    }
                }
            }
            if (op.empty() && kOne.find(c) != std::string_view::npos) {
                op = sql.substr(i, 1);
            }
            if (op.empty() && dialect == Dialect::kStreams && (c == '[' || c == ']')) {
                op = sql.substr(i, 1);
            }
            if (op.empty()) {
                // Skip one UTF-8 character.
                std::size_t len = 1;
                const auto b = static_cast<unsigned char>(c);
                if (b >= 0xF0) {
                    len = 4;
                } else if (b >= 0xE0) {
                    len = 3;
                } else if (b >= 0xC0) {
                    len = 2;
                }
                len = std::min(len, n - i);
                errors.push_back({span_of(i, i + len), ErrorCode::kRulesSqlSyntax,
                                  fmt::format("unexpected character '{}'; expected a name, a literal or an operator",
                                              sql.substr(i, len))});
                i += len;
                continue;
            }
            i += op.size();
            tok.kind = TokenKind::kOperator;
            tok.text = std::string(op);
        }
        tok.span = span_of(start, i);
        out.push_back(std::move(tok));
    }
    Token end;
    end.kind = TokenKind::kEnd;
    end.span = span_of(n, n);
    out.push_back(std::move(end));
    return out;
}

}  // namespace sluice::config::rules
