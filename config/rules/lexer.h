// Tokenizer of the sync-rules SQL subset: identifiers (quoted "X" or bare, bare ones lower-cased),
// numbers, 'strings', x'blobs', operators. Reports unsupported literals (1e3, 0x10) with their span.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/rules/ast.h"

namespace sluice::config::rules {

enum class TokenKind : std::uint8_t {
    kIdent,        // bare identifier or keyword; text lower-cased, raw keeps the spelling
    kQuotedIdent,  // "..."; text is the name
    kInteger,
    kReal,
    kString,
    kBlob,
    kOperator,  // text is the operator: = == != <> < <= > >= + - * / % || -> ->> :: ( ) , . ; (streams: [ ])
    kEnd,
};

struct Token {
    TokenKind kind = TokenKind::kEnd;
    Span span;
    std::string text;
    Value value;  // for number, string and blob literals
};

// Tokenizes sql; lexical errors are appended to errors and the offending characters skipped. The
// streams dialect also has the operators [ and ] (ARRAY[...]).
[[nodiscard]] std::vector<Token> tokenize(std::string_view sql, std::vector<SqlError>& errors,
                                          Dialect dialect = Dialect::kBucketDefinitions);

}  // namespace sluice::config::rules
