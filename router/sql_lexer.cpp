#include "router/sql_lexer.h"

namespace shardgate::router {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

bool is_letter(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// Bytes of multi-byte UTF-8 characters: both servers accept them in identifiers.
bool is_high(char c) {
  return static_cast<unsigned char>(c) >= 0x80;
}

bool is_ident_start(char c, Dialect dialect) {
  return is_letter(c) || c == '_' || is_high(c) || (dialect == Dialect::Mysql && c == '$');
}

bool is_ident_char(char c) {
  return is_letter(c) || is_digit(c) || c == '_' || c == '$' || is_high(c);
}

// A dollar-quote tag looks like an identifier without '$'.
bool is_tag_start(char c) {
  return is_letter(c) || c == '_' || is_high(c);
}
bool is_tag_char(char c) {
  return is_tag_start(c) || is_digit(c);
}

bool is_operator_char(char c, Dialect dialect) {
  const std::string_view chars =
      dialect == Dialect::Postgres ? "+-*/<>=~!@#%^&|`?:" : "+-*/<>=~!@%^&|:";
  return chars.find(c) != std::string_view::npos;
}

}  // namespace

LexerMode default_lexer_mode(Dialect dialect) {
  if (dialect == Dialect::Mysql) return LexerMode{true, true};
  return LexerMode{false, false};
}

SqlLexer::SqlLexer(std::string_view sql, Dialect dialect, LexerMode mode)
    : sql_(sql), dialect_(dialect), mode_(mode) {
  // PostgreSQL query text is NUL-terminated on the wire: a NUL inside means the
  // server would see different text from ours.
  if (dialect == Dialect::Postgres && sql.find('\0') != std::string_view::npos) failed_ = true;
}

Token SqlLexer::make(TokenKind kind, std::size_t begin) {
  return Token{kind, sql_.substr(begin, pos_ - begin)};
}

Token SqlLexer::fail() {
  failed_ = true;
  return Token{TokenKind::Error, {}};
}

void SqlLexer::skip_whitespace() {
  while (pos_ < sql_.size() && is_space(sql_[pos_])) ++pos_;
}

Token SqlLexer::next() {
  if (failed_) return Token{TokenKind::Error, {}};
  skip_whitespace();
  if (pos_ >= sql_.size()) {
    if (in_executable_comment_) return fail();
    return Token{TokenKind::End, {}};
  }
  return lex_at(sql_[pos_]);
}

Token SqlLexer::lex_at(char c) {
  const char following = pos_ + 1 < sql_.size() ? sql_[pos_ + 1] : '\0';
  if (c == '\0') return fail();
  if (in_executable_comment_ && c == '*' && following == '/') {
    pos_ += 2;
    in_executable_comment_ = false;
    return next();
  }
  if (comment_starts_at(pos_)) return c == '/' ? lex_block_comment() : lex_line_comment();
  if (is_digit(c) || (c == '.' && is_digit(following))) return lex_number();
  if (is_ident_start(c, dialect_)) return lex_word();
  const bool mysql = dialect_ == Dialect::Mysql;
  switch (c) {
    case '\'': {
      Token t = lex_quoted('\'', mode_.backslash_in_single_quotes, TokenKind::String);
      if (t.kind == TokenKind::String && t.text.find('\\') != std::string_view::npos) {
        backslash_in_single_ = true;
      }
      return t;
    }
    case '"': {
      if (!mysql) return lex_quoted('"', false, TokenKind::QuotedIdent);
      Token t = lex_quoted('"', mode_.backslash_in_double_quotes, TokenKind::String);
      if (t.kind == TokenKind::String && t.text.find('\\') != std::string_view::npos) {
        backslash_in_double_ = true;
      }
      return t;
    }
    case '`':
      if (mysql) return lex_quoted('`', false, TokenKind::QuotedIdent);
      break;
    case '$':
      return lex_dollar();  // MySQL '$' starts an identifier, handled above
    case '?':
      if (mysql) {
        ++pos_;
        return make(TokenKind::Param, pos_ - 1);
      }
      break;
    default:
      break;
  }
  return lex_punctuation(c);
}

Token SqlLexer::lex_punctuation(char c) {
  TokenKind kind;
  switch (c) {
    case '(':
      kind = TokenKind::LParen;
      break;
    case ')':
      kind = TokenKind::RParen;
      break;
    case ',':
      kind = TokenKind::Comma;
      break;
    case '.':
      kind = TokenKind::Dot;
      break;
    case ';':
      kind = TokenKind::Semicolon;
      break;
    default:
      return lex_operator();
  }
  ++pos_;
  return make(kind, pos_ - 1);
}

Token SqlLexer::lex_word() {
  const std::size_t begin = pos_;
  ++pos_;
  while (pos_ < sql_.size() && is_ident_char(sql_[pos_])) ++pos_;
  // E'..' is PostgreSQL's escape string: backslashes escape whatever the
  // server's standard_conforming_strings says.
  const bool e_prefix = pos_ - begin == 1 && ascii_lower(sql_[begin]) == 'e';
  if (dialect_ == Dialect::Postgres && e_prefix && pos_ < sql_.size() && sql_[pos_] == '\'') {
    Token t = lex_quoted('\'', true, TokenKind::String);
    if (t.kind == TokenKind::String) t.text = sql_.substr(begin, pos_ - begin);
    return t;
  }
  return make(TokenKind::Word, begin);
}

Token SqlLexer::lex_number() {
  const std::size_t begin = pos_;
  const char second = pos_ + 1 < sql_.size() ? ascii_lower(sql_[pos_ + 1]) : '\0';
  // 0x1F, 0b101, 0o17: their letters are digits, not exponents.
  const bool radix = sql_[pos_] == '0' && (second == 'x' || second == 'b' || second == 'o');
  while (pos_ < sql_.size()) {
    const char c = sql_[pos_];
    const bool exponent_sign =
        (c == '+' || c == '-') && !radix && ascii_lower(sql_[pos_ - 1]) == 'e';
    if (!(is_letter(c) || is_digit(c) || c == '_' || c == '.' || exponent_sign)) break;
    ++pos_;
  }
  return make(TokenKind::Number, begin);
}

// Lexes a quoted string or identifier starting at pos_ (the opening quote).
// A doubled quote stands for itself in every dialect; a backslash escapes the
// next byte only where the mode says so.
Token SqlLexer::lex_quoted(char quote, bool backslash, TokenKind kind) {
  const std::size_t begin = pos_;
  std::size_t p = pos_ + 1;
  while (p < sql_.size()) {
    const char c = sql_[p];
    if (c == '\\' && backslash) {
      p += 2;
    } else if (c != quote) {
      ++p;
    } else if (p + 1 < sql_.size() && sql_[p + 1] == quote) {
      p += 2;
    } else {
      pos_ = p + 1;
      return make(kind, begin);
    }
  }
  return fail();
}

Token SqlLexer::lex_dollar() {
  const std::size_t begin = pos_;
  std::size_t p = pos_ + 1;
  if (p < sql_.size() && is_digit(sql_[p])) {
    while (p < sql_.size() && is_digit(sql_[p])) ++p;
    pos_ = p;
    return make(TokenKind::Param, begin);
  }
  if (p < sql_.size() && is_tag_start(sql_[p])) {
    while (p < sql_.size() && is_tag_char(sql_[p])) ++p;
  }
  if (p < sql_.size() && sql_[p] == '$') {
    const std::string_view tag = sql_.substr(begin, p + 1 - begin);
    const std::size_t close = sql_.find(tag, p + 1);
    if (close == std::string_view::npos) return fail();
    pos_ = close + tag.size();
    return make(TokenKind::String, begin);
  }
  ++pos_;  // a lone '$' is not valid SQL; let the server say so
  return make(TokenKind::Operator, begin);
}

Token SqlLexer::lex_operator() {
  const std::size_t begin = pos_;
  const char first = sql_[pos_++];
  if (!is_operator_char(first, dialect_)) return make(TokenKind::Operator, begin);
  while (pos_ < sql_.size() && is_operator_char(sql_[pos_], dialect_) && !comment_starts_at(pos_)) {
    const bool closes_executable = in_executable_comment_ && sql_[pos_] == '*' &&
                                   pos_ + 1 < sql_.size() && sql_[pos_ + 1] == '/';
    if (closes_executable) break;
    ++pos_;
  }
  return make(TokenKind::Operator, begin);
}

bool SqlLexer::comment_starts_at(std::size_t p) const {
  const char c = sql_[p];
  const char d = p + 1 < sql_.size() ? sql_[p + 1] : '\0';
  if (c == '/' && d == '*') return true;
  if (dialect_ == Dialect::Postgres) return c == '-' && d == '-';
  if (c == '#') return true;
  if (c != '-' || d != '-') return false;
  // MySQL needs a space or control character after "--": 1--1 is 1 - -1.
  return p + 2 >= sql_.size() || static_cast<unsigned char>(sql_[p + 2]) <= ' ';
}

Token SqlLexer::lex_line_comment() {
  const std::size_t begin = pos_;
  while (pos_ < sql_.size() && sql_[pos_] != '\n' && sql_[pos_] != '\r') ++pos_;
  return make(TokenKind::Comment, begin);
}

Token SqlLexer::lex_block_comment() {
  const std::size_t begin = pos_;
  if (dialect_ == Dialect::Mysql) {
    const std::string_view rest = sql_.substr(pos_ + 2);
    if (rest.starts_with("!") || rest.starts_with("M!")) return enter_executable_comment();
    const std::size_t close = sql_.find("*/", pos_ + 2);
    if (close == std::string_view::npos) return fail();
    pos_ = close + 2;
    return make(TokenKind::Comment, begin);
  }
  // PostgreSQL block comments nest.
  int depth = 1;
  std::size_t p = pos_ + 2;
  while (p + 1 < sql_.size() && depth > 0) {
    if (sql_[p] == '/' && sql_[p + 1] == '*') {
      ++depth;
      p += 2;
    } else if (sql_[p] == '*' && sql_[p + 1] == '/') {
      --depth;
      p += 2;
    } else {
      ++p;
    }
  }
  if (depth > 0) return fail();
  pos_ = p;
  return make(TokenKind::Comment, begin);
}

// MySQL runs the text of /*! ... */ and /*M! ... */ (optionally after a version
// number) as ordinary SQL, so it is lexed as such; the closing */ is skipped.
Token SqlLexer::enter_executable_comment() {
  if (in_executable_comment_) return fail();  // MySQL does not nest them; do not guess
  pos_ += sql_[pos_ + 2] == '!' ? 3 : 4;
  for (int i = 0; i < 6 && pos_ < sql_.size() && is_digit(sql_[pos_]); ++i) ++pos_;
  in_executable_comment_ = true;
  return next();
}

}  // namespace shardgate::router
