// Token-level facts about a statement that do not depend on its leading
// keyword: calls of writing functions, locking clauses, table names.
#include "router/classify_internal.h"

namespace shardgate::router::detail {
namespace {

// Functions whose call changes state, or whose answer only the primary
// session knows. Compared case-insensitively, without schema.
constexpr std::string_view kWritingFunctions[] = {
    // Sequences (PostgreSQL; MariaDB uses the same names). currval/lastval
    // read the session's last nextval(), which ran on the primary.
    "nextval", "setval", "currval", "lastval",
    // Assigning a transaction id is a write; the id belongs to the primary.
    "txid_current", "txid_current_if_assigned", "pg_current_xact_id",
    "pg_current_xact_id_if_assigned", "pg_export_snapshot",
    // Session or server state.
    "pg_notify", "set_config", "pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf",
    "pg_rotate_logfile", "pg_promote", "pg_switch_wal", "pg_switch_xlog", "pg_start_backup",
    "pg_stop_backup", "pg_backup_start", "pg_backup_stop", "pg_drop_replication_slot",
    "pg_replication_slot_advance", "pg_copy_physical_replication_slot",
    "pg_copy_logical_replication_slot", "pg_import_system_collations", "pg_file_write",
    "pg_file_rename", "pg_file_unlink", "pg_file_sync", "lowrite", "loread",
    // Index maintenance functions that modify the index.
    "brin_summarize_new_values", "brin_summarize_range", "brin_desummarize_range",
    "gin_clean_pending_list", "pg_truncate_visibility_map", "pg_stat_statements_reset",
    // MySQL: locks live on one server; the others answer about the session's
    // previous statement, which ran on the primary.
    "get_lock", "release_lock", "release_all_locks", "is_free_lock", "is_used_lock",
    "last_insert_id", "found_rows", "row_count"};

constexpr std::string_view kWritingPrefixes[] = {
    "pg_advisory_",  "pg_try_advisory_",       "lo_",         "dblink",
    "pg_stat_reset", "pg_replication_origin_", "pg_logical_", "pg_create_"};

// Strips the quotes of a quoted identifier; a doubled quote inside cannot
// occur in any function name we look for, so it is left as is.
std::string_view bare_name(const Token& token) {
  if (token.kind != TokenKind::QuotedIdent || token.text.size() < 2) return token.text;
  return token.text.substr(1, token.text.size() - 2);
}

bool is_name(const Token& token) {
  return token.kind == TokenKind::Word || token.kind == TokenKind::QuotedIdent;
}

bool locking_clause_at(TokenSpan t, std::size_t i) {
  if (keyword_at(t, i + 1, "update") || keyword_at(t, i + 1, "share")) return true;
  if (keyword_at(t, i + 1, "no"))
    return keyword_at(t, i + 2, "key") && keyword_at(t, i + 3, "update");
  return keyword_at(t, i + 1, "key") && keyword_at(t, i + 2, "share");
}

// UPDATE that belongs to FOR UPDATE, FOR NO KEY UPDATE, ON DUPLICATE KEY
// UPDATE or ON UPDATE rather than starting an UPDATE statement.
bool update_is_clause(TokenSpan t, std::size_t i) {
  return i > 0 && (is_keyword(t[i - 1], "for") || is_keyword(t[i - 1], "key") ||
                   is_keyword(t[i - 1], "on") || is_keyword(t[i - 1], "do"));
}

void scan_word(TokenSpan t, std::size_t i, Features& f) {
  const Token& w = t[i];
  if (is_keyword(w, "for")) {
    f.locking = f.locking || locking_clause_at(t, i);
  } else if (is_keyword(w, "lock")) {
    f.locking = f.locking || (keyword_at(t, i + 1, "in") && keyword_at(t, i + 2, "share"));
  } else if (is_keyword(w, "into")) {
    f.into = true;
  } else if (is_keyword(w, "with")) {
    f.with_clause = true;
  } else if (is_keyword(w, "insert") || is_keyword(w, "delete") || is_keyword(w, "merge") ||
             is_keyword(w, "upsert")) {
    f.dml_word = true;
  } else if (is_keyword(w, "update")) {
    f.dml_word = f.dml_word || !update_is_clause(t, i);
  } else if (is_keyword(w, "sql_calc_found_rows")) {
    f.session_bound = true;  // the matching FOUND_ROWS() goes to the primary
  }
}

// MySQL @@identity / @@last_insert_id / @@session.identity read the session's
// last insert, which happened on the primary.
bool session_variable_at(TokenSpan t, std::size_t i) {
  if (t[i].kind != TokenKind::Operator || !t[i].text.ends_with("@@")) return false;
  std::size_t j = i + 1;
  if (keyword_at(t, j, "session") && j + 1 < t.size() && t[j + 1].kind == TokenKind::Dot) j += 2;
  return keyword_at(t, j, "identity") || keyword_at(t, j, "last_insert_id");
}

}  // namespace

std::size_t matching_paren(TokenSpan tokens, std::size_t open) {
  int depth = 0;
  for (std::size_t i = open; i < tokens.size(); ++i) {
    if (tokens[i].kind == TokenKind::LParen) ++depth;
    if (tokens[i].kind == TokenKind::RParen && --depth == 0) return i;
  }
  return kNoMatch;
}

bool is_writing_function(std::string_view name, const AnalyzeOptions& options) {
  for (std::string_view f : kWritingFunctions) {
    if (iequals(name, f)) return true;
  }
  for (std::string_view p : kWritingPrefixes) {
    if (istarts_with(name, p)) return true;
  }
  for (const std::string& f : options.writing_functions) {
    if (iequals(name, f)) return true;
  }
  return false;
}

Features scan_features(TokenSpan tokens, Dialect dialect, const AnalyzeOptions& options) {
  Features f;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const Token& t = tokens[i];
    const bool call = i + 1 < tokens.size() && tokens[i + 1].kind == TokenKind::LParen;
    if (is_name(t) && call) {
      // A name before '(' is a function (or a table's column list), never one
      // of the keywords below: MySQL's INSERT(str, ...) is a string function.
      f.writing_call = f.writing_call || is_writing_function(bare_name(t), options);
    } else if (t.kind == TokenKind::Word) {
      scan_word(tokens, i, f);
    } else if (dialect == Dialect::Mysql && session_variable_at(tokens, i)) {
      f.session_bound = true;
    }
  }
  return f;
}

}  // namespace shardgate::router::detail
