// A small tokenizer for PostgreSQL and MySQL statement text.
//
// It does not build a syntax tree: the classifier only needs to know which
// words are real keywords (not inside a string, a comment or a quoted
// identifier) and where statements end. Tokens are string_views into the
// input, so lexing allocates nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "router/statement.h"

namespace shardgate::router {

enum class TokenKind : std::uint8_t {
  Word,         // identifier or keyword, unquoted
  QuotedIdent,  // "x" (PostgreSQL) or `x` (MySQL), quotes included in text
  String,       // '..', E'..', $$..$$, $tag$..$tag$, MySQL "..", quotes included
  Number,
  Param,     // $1 (PostgreSQL) or ? (MySQL)
  Operator,  // an operator run (::, <=, @@ ...) or a stray character
  LParen,
  RParen,
  Comma,
  Dot,
  Semicolon,
  Comment,  // -- .., /* .. */, # .. (MySQL); text includes the delimiters
  End,
  Error,  // unterminated string / comment / quoted identifier, or a NUL byte
};

struct Token {
  TokenKind kind = TokenKind::End;
  std::string_view text;
};

// Where a string literal ends depends on server settings the proxy may not
// know: standard_conforming_strings (PostgreSQL), NO_BACKSLASH_ESCAPES and
// ANSI_QUOTES (MySQL). The classifier lexes with the dialect's default first and
// again with the other rules when the difference could matter.
struct LexerMode {
  bool backslash_in_single_quotes = false;  // '..' treats \ as an escape
  bool backslash_in_double_quotes = false;  // MySQL ".." strings treat \ as an escape
};

// The server defaults: PostgreSQL has standard_conforming_strings on, MySQL
// honours backslash escapes in both kinds of string.
LexerMode default_lexer_mode(Dialect dialect);

class SqlLexer {
 public:
  SqlLexer(std::string_view sql, Dialect dialect, LexerMode mode);
  SqlLexer(std::string_view sql, Dialect dialect)
      : SqlLexer(sql, dialect, default_lexer_mode(dialect)) {}

  // The next token; End at the end of input. After an Error every call
  // returns Error again, so callers cannot read past text they did not
  // understand.
  Token next();

  // True when a backslash appeared inside a string whose extent depends on
  // the escape mode ('..' in PostgreSQL, '..' or ".." in MySQL).
  bool backslash_in_single_quotes() const { return backslash_in_single_; }
  bool backslash_in_double_quotes() const { return backslash_in_double_; }

 private:
  Token make(TokenKind kind, std::size_t begin);
  Token fail();
  Token lex_at(char c);
  Token lex_punctuation(char c);
  Token lex_word();
  Token lex_number();
  Token lex_quoted(char quote, bool backslash, TokenKind kind);
  Token lex_dollar();
  Token lex_operator();
  Token lex_line_comment();
  Token lex_block_comment();
  Token enter_executable_comment();
  bool comment_starts_at(std::size_t p) const;
  void skip_whitespace();

  std::string_view sql_;
  std::size_t pos_ = 0;
  Dialect dialect_;
  LexerMode mode_;
  bool failed_ = false;
  // Inside a MySQL /*! ... */ comment, whose content the server executes.
  bool in_executable_comment_ = false;
  bool backslash_in_single_ = false;
  bool backslash_in_double_ = false;
};

inline char ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}

// Case-insensitive comparison against a lower-case ASCII word.
inline bool iequals(std::string_view text, std::string_view lower) {
  if (text.size() != lower.size()) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (ascii_lower(text[i]) != lower[i]) return false;
  }
  return true;
}

inline bool istarts_with(std::string_view text, std::string_view lower_prefix) {
  return text.size() >= lower_prefix.size() &&
         iequals(text.substr(0, lower_prefix.size()), lower_prefix);
}

// True when the token is the unquoted keyword `lower` (any case).
inline bool is_keyword(const Token& token, std::string_view lower) {
  return token.kind == TokenKind::Word && iequals(token.text, lower);
}

}  // namespace shardgate::router
