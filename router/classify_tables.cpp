// Best-effort extraction of table names for sharding and hot-key statistics.
// Never used to choose primary or replica, so a miss or an extra name costs
// accuracy of statistics, not correctness.
#include <algorithm>
#include <cstdint>

#include "router/classify_internal.h"

namespace shardgate::router::detail {
namespace {

enum class Cue : std::uint8_t { None, List, Single };

// Words after FROM/INTO/... that qualify the name rather than being it.
constexpr std::string_view kModifiers[] = {"only",      "lateral",  "low_priority", "high_priority",
                                           "delayed",   "ignore",   "quick",        "temp",
                                           "temporary", "unlogged", "outfile",      "dumpfile",
                                           "if",        "not",      "exists",       "table"};

// Words that can follow a cue but are not table names.
constexpr std::string_view kNotNames[] = {
    "set",   "on",    "of",     "select",  "values",  "with",   "where", "as",
    "using", "stdin", "stdout", "program", "default", "nowait", "skip",  "all"};

bool in_list(const Token& t, std::span<const std::string_view> words) {
  return std::any_of(words.begin(), words.end(),
                     [&](std::string_view w) { return is_keyword(t, w); });
}

bool is_name(const Token& t) {
  return t.kind == TokenKind::Word || t.kind == TokenKind::QuotedIdent;
}

Cue cue_at(TokenSpan t, std::size_t i) {
  const Token& w = t[i];
  if (is_keyword(w, "from")) return Cue::List;
  if (is_keyword(w, "join") || is_keyword(w, "into") || is_keyword(w, "table") ||
      is_keyword(w, "copy") || is_keyword(w, "truncate")) {
    return Cue::Single;
  }
  if (!is_keyword(w, "update")) return Cue::None;
  // FOR UPDATE, FOR NO KEY UPDATE, ON DUPLICATE KEY UPDATE, ON UPDATE ...
  const bool clause = i > 0 && (is_keyword(t[i - 1], "for") || is_keyword(t[i - 1], "key") ||
                                is_keyword(t[i - 1], "on"));
  return clause ? Cue::None : Cue::Single;
}

// A '(' that opens a function's arguments: FROM inside EXTRACT(YEAR FROM ts)
// or SUBSTRING(x FROM 2) names no table. A subquery's '(' is not one.
bool opens_call(TokenSpan t, std::size_t i) {
  if (i == 0 || !is_name(t[i - 1])) return false;
  if (is_keyword(t[i - 1], "from") || is_keyword(t[i - 1], "join")) return false;
  const bool subquery = keyword_at(t, i + 1, "select") || keyword_at(t, i + 1, "with") ||
                        keyword_at(t, i + 1, "values") ||
                        (i + 1 < t.size() && t[i + 1].kind == TokenKind::LParen);
  return !subquery;
}

// PostgreSQL folds unquoted names to lower case and keeps quoted ones; MySQL
// compares both kinds the same way, so both are lower-cased.
void append_part(std::string& name, const Token& t, Dialect dialect) {
  if (t.kind == TokenKind::Word) {
    for (char c : t.text) name.push_back(ascii_lower(c));
    return;
  }
  const char quote = t.text.front();
  const std::string_view inner = t.text.substr(1, t.text.size() - 2);
  for (std::size_t i = 0; i < inner.size(); ++i) {
    const char c = inner[i];
    if (c == quote && i + 1 < inner.size() && inner[i + 1] == quote) ++i;
    name.push_back(dialect == Dialect::Mysql ? ascii_lower(c) : c);
  }
}

// Reads a possibly schema-qualified name at t[i]; returns the index after it,
// or kNoMatch (name left empty) when there is none.
std::size_t read_name(TokenSpan t, std::size_t i, Dialect dialect, std::string& name) {
  if (i >= t.size() || !is_name(t[i]) || in_list(t[i], kNotNames)) return kNoMatch;
  for (;;) {
    append_part(name, t[i], dialect);
    ++i;
    const bool more = i + 1 < t.size() && t[i].kind == TokenKind::Dot && is_name(t[i + 1]);
    if (!more) return i;
    name.push_back('.');
    ++i;
  }
}

void add_table(std::vector<std::string>& tables, std::string name) {
  if (std::find(tables.begin(), tables.end(), name) == tables.end()) {
    tables.push_back(std::move(name));
  }
}

// Skips an optional alias ("t AS x", "t x") after a name in a FROM list.
std::size_t skip_alias(TokenSpan t, std::size_t i) {
  if (keyword_at(t, i, "as")) ++i;
  if (i < t.size() && is_name(t[i])) ++i;
  return i;
}

void take_names(TokenSpan t, std::size_t i, Cue cue, Dialect dialect,
                std::vector<std::string>& tables) {
  const bool after_from = cue == Cue::List || is_keyword(t[i], "join");
  std::size_t j = i + 1;
  for (;;) {
    while (j < t.size() && in_list(t[j], kModifiers)) ++j;
    std::string name;
    const std::size_t end = read_name(t, j, dialect, name);
    if (end == kNoMatch) return;
    const bool function = end < t.size() && t[end].kind == TokenKind::LParen;
    if (!(after_from && function)) add_table(tables, std::move(name));
    if (cue != Cue::List) return;
    j = skip_alias(t, end);
    if (j >= t.size() || t[j].kind != TokenKind::Comma) return;
    ++j;
  }
}

}  // namespace

void collect_tables(TokenSpan tokens, Dialect dialect, std::vector<std::string>& tables) {
  std::uint64_t call_bits = 0;  // bit d: the '(' at depth d opened a call
  int depth = 0;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const Token& t = tokens[i];
    if (t.kind == TokenKind::LParen) {
      if (depth < 64) {
        const std::uint64_t bit = std::uint64_t{1} << depth;
        call_bits = opens_call(tokens, i) ? (call_bits | bit) : (call_bits & ~bit);
      }
      ++depth;
      continue;
    }
    if (t.kind == TokenKind::RParen) {
      depth = depth > 0 ? depth - 1 : 0;
      continue;
    }
    const bool in_call = depth > 0 && depth <= 64 && ((call_bits >> (depth - 1)) & 1U) != 0;
    if (t.kind != TokenKind::Word || in_call) continue;
    const Cue cue = cue_at(tokens, i);
    if (cue != Cue::None) take_names(tokens, i, cue, dialect, tables);
  }
}

}  // namespace shardgate::router::detail
