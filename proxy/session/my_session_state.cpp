#include "proxy/session/my_session_state.h"

#include <vector>

#include "router/sql_lexer.h"

namespace shardgate::session {

namespace {

using router::Token;
using router::TokenKind;

// The statement's tokens without comments (executable /*! */ comments are
// opened by the lexer and their content kept).
using Tokens = std::vector<Token>;

Tokens tokens_of(std::string_view sql) {
  Tokens out;
  router::SqlLexer lexer(sql, router::Dialect::Mysql);
  for (Token t = lexer.next(); t.kind != TokenKind::End; t = lexer.next()) {
    if (t.kind == TokenKind::Error) break;
    if (t.kind != TokenKind::Comment) out.push_back(t);
  }
  return out;
}

bool word_is(const Tokens& t, std::size_t i, std::string_view lower) {
  return i < t.size() && t[i].kind == TokenKind::Word && router::iequals(t[i].text, lower);
}

// @name, @'name', @`name`: a user variable (@@name is a system variable).
bool user_variable_at(const Tokens& t, std::size_t i) {
  if (t[i].kind != TokenKind::Operator || !t[i].text.ends_with('@') || t[i].text.ends_with("@@"))
    return false;
  if (i + 1 >= t.size()) return false;
  const TokenKind next = t[i + 1].kind;
  return next == TokenKind::Word || next == TokenKind::QuotedIdent || next == TokenKind::String;
}

std::string unquote_identifier(std::string_view name) {
  if (name.size() >= 2 && name.front() == '`' && name.back() == '`') {
    std::string out;
    for (std::size_t i = 1; i + 1 < name.size(); ++i) {
      out.push_back(name[i]);
      if (name[i] == '`' && i + 2 < name.size() && name[i + 1] == '`') ++i;  // `` is one `
    }
    return out;
  }
  return std::string(name);
}

// SET or USE as one of several statements in one COM_QUERY: the proxy follows
// single ones only, so the state stays where it was set.
bool session_change_in_batch(const Tokens& t) {
  std::size_t statements = 0;
  bool change = false;
  bool at_start = true;
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (t[i].kind == TokenKind::Semicolon) {
      at_start = true;
      continue;
    }
    if (at_start) {
      ++statements;
      change = change || word_is(t, i, "set") || word_is(t, i, "use");
      at_start = false;
    }
  }
  return statements > 1 && change;
}

SessionChange session_change_of(const Tokens& t, std::string_view sql,
                                const router::Statement& stmt) {
  if (stmt.multi_statement) return {};
  if (word_is(t, 0, "use") && t.size() >= 2 &&
      (t[1].kind == TokenKind::Word || t[1].kind == TokenKind::QuotedIdent)) {
    return {SessionChange::Kind::Schema, unquote_identifier(t[1].text)};
  }
  if (!word_is(t, 0, "set")) return {};
  // SET TRANSACTION (without SESSION) applies to the next transaction only;
  // SET STATEMENT ... FOR runs one statement: neither is session state.
  if (word_is(t, 1, "transaction") || word_is(t, 1, "statement")) return {};
  for (std::size_t i = 0; i < t.size(); ++i)
    if (user_variable_at(t, i)) return {};  // pinned instead
  return {SessionChange::Kind::Setting, std::string(sql)};
}

bool pins(const Tokens& t) {
  if (t.empty()) return false;
  // SQL-level prepared statements, table locks, HANDLER, XA live on the connection.
  if (word_is(t, 0, "prepare") || word_is(t, 0, "execute") || word_is(t, 0, "deallocate") ||
      word_is(t, 0, "lock") || word_is(t, 0, "handler") || word_is(t, 0, "xa"))
    return true;
  if (word_is(t, 0, "drop") && word_is(t, 1, "prepare")) return true;
  if (session_change_in_batch(t)) return true;
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (user_variable_at(t, i)) return true;
    if (t[i].kind != TokenKind::Word) continue;
    // CREATE/DROP TEMPORARY TABLE; GET_LOCK() and friends; FOUND_ROWS() after
    // SQL_CALC_FOUND_ROWS reads the previous statement's count.
    if (router::iequals(t[i].text, "temporary") || router::iequals(t[i].text, "get_lock") ||
        router::iequals(t[i].text, "sql_calc_found_rows"))
      return true;
  }
  return false;
}

bool reads_insert_id(const Tokens& t) {
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (word_is(t, i, "last_insert_id")) return true;
    if (t[i].kind == TokenKind::Operator && t[i].text.ends_with("@@")) {
      std::size_t j = i + 1;
      if (word_is(t, j, "session") && j + 1 < t.size() && t[j + 1].kind == TokenKind::Dot) j += 2;
      if (word_is(t, j, "identity") || word_is(t, j, "last_insert_id")) return true;
    }
  }
  return false;
}

std::optional<KillRequest> kill_of(const Tokens& t) {
  if (!word_is(t, 0, "kill")) return std::nullopt;
  KillRequest k;
  std::size_t i = 1;
  // MariaDB also has KILL HARD|SOFT and KILL ... USER name: only ids are ours.
  if (word_is(t, i, "hard") || word_is(t, i, "soft")) ++i;
  if (word_is(t, i, "query")) {
    k.whole_connection = false;
    ++i;
  } else if (word_is(t, i, "connection")) {
    ++i;
  }
  if (i + 1 != t.size() && !(i + 2 == t.size() && t[i + 1].kind == TokenKind::Semicolon))
    return std::nullopt;
  if (t[i].kind != TokenKind::Number) return std::nullopt;
  std::uint64_t id = 0;
  for (char c : t[i].text) {
    if (c < '0' || c > '9' || id > 0xffffffffu / 10) return std::nullopt;
    id = id * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (id > 0xffffffffu) return std::nullopt;
  k.id = static_cast<std::uint32_t>(id);
  return k;
}

bool load_data_local(const Tokens& t) {
  if (!word_is(t, 0, "load") || !word_is(t, 1, "data")) return false;
  // LOAD DATA [LOW_PRIORITY | CONCURRENT] [LOCAL] INFILE
  for (std::size_t i = 2; i < t.size() && i < 5; ++i) {
    if (word_is(t, i, "local")) return true;
    if (word_is(t, i, "infile")) return false;
  }
  return false;
}

}  // namespace

SessionChange classify_session_change(std::string_view sql, const router::Statement& stmt) {
  return session_change_of(tokens_of(sql), sql, stmt);
}
bool pins_session(std::string_view sql) {
  return pins(tokens_of(sql));
}
bool reads_last_insert_id(std::string_view sql) {
  return reads_insert_id(tokens_of(sql));
}
std::optional<KillRequest> parse_kill(std::string_view sql) {
  return kill_of(tokens_of(sql));
}
bool is_load_data_local(std::string_view sql) {
  return load_data_local(tokens_of(sql));
}

StatementFacts inspect_statement(std::string_view sql, const router::Statement& stmt) {
  const Tokens t = tokens_of(sql);
  StatementFacts f;
  f.kill = kill_of(t);
  f.load_data_local = load_data_local(t);
  f.pins = pins(t);
  f.reads_insert_id = reads_insert_id(t);
  f.change = session_change_of(t, sql, stmt);
  return f;
}

router::Statement read_statement() {
  router::Statement s;
  s.kind = router::StatementKind::Read;
  s.needs_primary = false;
  return s;
}

}  // namespace shardgate::session
