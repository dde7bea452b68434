// Internals of analyze(), shared by router/classify*.cpp. Not part of the
// router's interface.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "router/sql_lexer.h"
#include "router/statement.h"

namespace shardgate::router::detail {

using TokenSpan = std::span<const Token>;

inline constexpr std::size_t kNoMatch = static_cast<std::size_t>(-1);

// Nested statements (EXPLAIN ANALYZE EXPLAIN ANALYZE ..., PREPARE .. FROM '..')
// are classified recursively; deeper text than this is not trusted.
inline constexpr int kMaxDepth = 16;

inline bool keyword_at(TokenSpan tokens, std::size_t i, std::string_view lower) {
  return i < tokens.size() && is_keyword(tokens[i], lower);
}

// Index of the ')' closing the '(' at `open`, or kNoMatch.
std::size_t matching_paren(TokenSpan tokens, std::size_t open);

// What a single pass over one statement's tokens finds, wherever it occurs.
struct Features {
  bool writing_call = false;   // nextval(), GET_LOCK(), options.writing_functions ...
  bool locking = false;        // FOR [NO KEY] UPDATE, FOR [KEY] SHARE, LOCK IN SHARE MODE
  bool into = false;           // SELECT ... INTO
  bool with_clause = false;    // a WITH word anywhere
  bool dml_word = false;       // INSERT / UPDATE / DELETE / MERGE as keywords
  bool session_bound = false;  // SQL_CALC_FOUND_ROWS, @@identity: answer lives on the primary
};

Features scan_features(TokenSpan tokens, Dialect dialect, const AnalyzeOptions& options);

bool is_writing_function(std::string_view name, const AnalyzeOptions& options);

// Appends (deduplicated) the table names the statement mentions. Best effort.
void collect_tables(TokenSpan tokens, Dialect dialect, std::vector<std::string>& tables);

struct Context {
  Dialect dialect;
  const AnalyzeOptions* options;
  Features features;  // of the whole statement the tokens belong to
  int depth;
};

// Classifies one statement (no top-level ';'). Sets kind and flags; the caller
// derives the final needs_primary with finalize().
Statement classify_statement(TokenSpan tokens, const Context& context);

// Enforces the invariants of needs_primary (see statement.h).
void finalize(Statement& statement);

// analyze() for text found inside another statement (MySQL PREPARE .. FROM '..').
Statement analyze_nested(std::string_view sql, Dialect dialect, const AnalyzeOptions& options,
                         int depth);

}  // namespace shardgate::router::detail
