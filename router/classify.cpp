#include "router/classify.h"

#include <algorithm>
#include <vector>

#include "router/classify_internal.h"
#include "router/sql_lexer.h"

namespace shardgate::router {
namespace {

using detail::TokenSpan;

struct Lexed {
  std::vector<Token> tokens;  // without comments
  Hints hints;
  bool error = false;
  bool backslash_single = false;
  bool backslash_double = false;
};

bool is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
  return s;
}

// Consumes `lower` (case-insensitive) at the front of `s`, then blanks.
bool consume(std::string_view& s, std::string_view lower) {
  if (!istarts_with(s, lower)) return false;
  s = trim(s.substr(lower.size()));
  return true;
}

// "/* shardgate:primary */", "/*ShardGate : replica*/", "-- shardgate:primary",
// "/* shardgate:cache */", "/* shardgate:cache ttl_ms=500 */".
Hints parse_hint(std::string_view comment) {
  if (comment.starts_with("/*")) {
    comment.remove_prefix(2);
    if (comment.ends_with("*/")) comment.remove_suffix(2);
  } else {
    comment.remove_prefix(comment.starts_with("--") ? 2 : 1);
  }
  std::string_view body = trim(comment);
  Hints out;
  if (!consume(body, "shardgate") || !consume(body, ":")) return out;
  const auto word = [&](std::string_view w) {
    if (!istarts_with(body, w)) return false;
    const char after = body.size() > w.size() ? ascii_lower(body[w.size()]) : ' ';
    return !((after >= 'a' && after <= 'z') || (after >= '0' && after <= '9') || after == '_');
  };
  if (word("primary")) out.role = HintRole::Primary;
  if (word("replica")) out.role = HintRole::Replica;
  if (word("cache")) {
    std::string_view rest = trim(body.substr(5));
    std::uint32_t ttl = 0;
    if (consume(rest, "ttl_ms") && consume(rest, "=")) {
      std::size_t i = 0;
      while (i < rest.size() && rest[i] >= '0' && rest[i] <= '9' && ttl < 100000000)
        ttl = ttl * 10 + static_cast<std::uint32_t>(rest[i++] - '0');
      if (i == 0) return out;  // a malformed TTL: no caching rather than a guess
    }
    out.cache_ttl_ms = ttl;
  }
  return out;
}

// Several hint comments may lead a statement; primary wins, being safe.
HintRole stronger(HintRole a, HintRole b) {
  if (a == HintRole::Primary || b == HintRole::Primary) return HintRole::Primary;
  return a == HintRole::None ? b : a;
}

void add_hint(Hints& into, const Hints& comment) {
  into.role = stronger(into.role, comment.role);
  if (comment.cache_ttl_ms) into.cache_ttl_ms = comment.cache_ttl_ms;
}

Lexed lex_all(std::string_view sql, Dialect dialect, LexerMode mode) {
  Lexed out;
  out.tokens.reserve(sql.size() / 4 + 4);
  SqlLexer lexer(sql, dialect, mode);
  bool leading = true;
  for (Token t = lexer.next(); t.kind != TokenKind::End; t = lexer.next()) {
    if (t.kind == TokenKind::Error) {
      out.error = true;
      break;
    }
    if (t.kind == TokenKind::Comment) {
      if (leading) add_hint(out.hints, parse_hint(t.text));
      continue;
    }
    leading = false;
    out.tokens.push_back(t);
  }
  out.backslash_single = lexer.backslash_in_single_quotes();
  out.backslash_double = lexer.backslash_in_double_quotes();
  return out;
}

bool replica_safe_read(const Statement& s) {
  return s.kind == StatementKind::Read && !s.needs_primary;
}

void add_tables(std::vector<std::string>& into, std::vector<std::string>& from) {
  for (std::string& t : from) {
    if (std::find(into.begin(), into.end(), t) == into.end()) into.push_back(std::move(t));
  }
}

// Folds the classification of one statement of a multi-statement text into
// the result: the first statement gives the kind, unless a later one writes.
void merge(Statement& out, Statement& part, bool first) {
  if (first) {
    out.kind = part.kind;
    out.needs_primary = part.needs_primary;
    out.read_only_txn = part.read_only_txn;
  } else {
    out.multi_statement = true;
    if (part.kind == StatementKind::Write) out.kind = StatementKind::Write;
  }
  out.locking_read = out.locking_read || part.locking_read;
  out.writes_in_function = out.writes_in_function || part.writes_in_function;
  add_tables(out.tables, part.tables);
}

Statement classify_lexed(const Lexed& lexed, Dialect dialect, const AnalyzeOptions& options,
                         int depth) {
  Statement out;
  out.hints = lexed.hints;
  if (lexed.error) return out;  // Utility, needs_primary: fail closed
  const TokenSpan all(lexed.tokens);
  bool first = true;
  bool all_safe = true;
  std::size_t begin = 0;
  for (std::size_t i = 0; i <= all.size(); ++i) {
    if (i < all.size() && all[i].kind != TokenKind::Semicolon) continue;
    if (i > begin) {
      const TokenSpan seg = all.subspan(begin, i - begin);
      const detail::Context ctx{dialect, &options, detail::scan_features(seg, dialect, options),
                                depth};
      Statement part = detail::classify_statement(seg, ctx);
      detail::finalize(part);
      detail::collect_tables(seg, dialect, part.tables);
      all_safe = all_safe && replica_safe_read(part);
      merge(out, part, first);
      first = false;
    }
    begin = i + 1;
  }
  if (first) {
    out.kind = StatementKind::Empty;
    out.needs_primary = true;
  } else if (out.multi_statement) {
    out.needs_primary = !all_safe;
  }
  return out;
}

// Makes `s` at least as cautious as `alt`, the reading of the same text under
// other string-escape rules: whatever the server's setting, a write must not
// look like a read.
void reconcile(Statement& s, const Statement& alt) {
  if (alt.kind != s.kind && alt.kind != StatementKind::Read) s.kind = alt.kind;
  s.needs_primary = s.needs_primary || alt.needs_primary;
  s.locking_read = s.locking_read || alt.locking_read;
  s.writes_in_function = s.writes_in_function || alt.writes_in_function;
  s.multi_statement = s.multi_statement || alt.multi_statement;
  s.read_only_txn = s.read_only_txn && alt.read_only_txn;
  detail::finalize(s);
}

}  // namespace

namespace detail {

Statement analyze_nested(std::string_view sql, Dialect dialect, const AnalyzeOptions& options,
                         int depth) {
  const Lexed lexed = lex_all(sql, dialect, default_lexer_mode(dialect));
  Statement s = classify_lexed(lexed, dialect, options, depth);
  if (s.kind != StatementKind::Read && s.needs_primary) return s;  // already cautious
  // Lexing can only differ at a backslash inside a string; without one, every
  // escape mode reads the same tokens.
  std::vector<LexerMode> alternates;
  if (dialect == Dialect::Postgres && lexed.backslash_single) {
    alternates.push_back(LexerMode{true, false});  // standard_conforming_strings = off
  }
  if (dialect == Dialect::Mysql && lexed.backslash_double) {
    alternates.push_back(LexerMode{true, false});  // ANSI_QUOTES
  }
  if (dialect == Dialect::Mysql && (lexed.backslash_single || lexed.backslash_double)) {
    alternates.push_back(LexerMode{false, false});  // NO_BACKSLASH_ESCAPES
  }
  for (LexerMode mode : alternates) {
    const Lexed other = lex_all(sql, dialect, mode);
    // Text the server cannot lex under that mode is a syntax error there: it runs nothing.
    if (other.error) continue;
    reconcile(s, classify_lexed(other, dialect, options, depth));
  }
  return s;
}

}  // namespace detail

Statement analyze(std::string_view sql, Dialect dialect, const AnalyzeOptions& options) {
  return detail::analyze_nested(sql, dialect, options, 0);
}

}  // namespace shardgate::router
