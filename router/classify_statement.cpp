// Classification of one statement by its leading keyword(s).
#include <string_view>

#include "router/classify_internal.h"

namespace shardgate::router::detail {
namespace {

using Kind = StatementKind;
using Handler = Statement (*)(TokenSpan, const Context&);

Statement make(Kind kind, const Context& ctx) {
  Statement s;
  s.kind = kind;
  s.writes_in_function = ctx.features.writing_call;
  return s;
}

// A statement nested in another (EXPLAIN ANALYZE x, PREPARE p AS x ...).
Statement classify_nested(TokenSpan tokens, const Context& ctx) {
  if (tokens.empty() || ctx.depth >= kMaxDepth) return make(Kind::Utility, ctx);
  Context inner = ctx;
  ++inner.depth;
  Statement s = classify_statement(tokens, inner);
  finalize(s);
  return s;
}

Statement read_query(TokenSpan, const Context& ctx) {
  const Features& f = ctx.features;
  Statement s = make(Kind::Read, ctx);
  // SELECT INTO creates a table (PostgreSQL) or sets variables / writes a file
  // (MySQL); a WITH may carry INSERT/UPDATE/DELETE/MERGE anywhere inside it.
  if (f.into || (f.with_clause && f.dml_word)) s.kind = Kind::Write;
  s.locking_read = f.locking;
  s.needs_primary = f.session_bound;
  return s;
}

// (SELECT 1) UNION (SELECT 2), ((VALUES (1))) ...
Statement parenthesized(TokenSpan t, const Context& ctx) {
  std::size_t i = 0;
  while (i < t.size() && t[i].kind == TokenKind::LParen) ++i;
  const bool query = keyword_at(t, i, "select") || keyword_at(t, i, "values") ||
                     keyword_at(t, i, "table") || keyword_at(t, i, "with");
  return query ? read_query(t, ctx) : make(Kind::Utility, ctx);
}

// MySQL SHOW forms whose answer is about this connection or this server's
// replication role: the replica would answer a different question.
Statement show(TokenSpan t, const Context& ctx) {
  Statement s = make(Kind::Read, ctx);
  s.needs_primary = false;
  if (ctx.dialect != Dialect::Mysql) return s;
  constexpr std::string_view kPrimaryOnly[] = {"warnings", "errors",  "count",    "master",
                                               "binary",   "binlog",  "slave",    "replica",
                                               "replicas", "profile", "profiles", "processlist"};
  for (std::size_t i = 1; i <= 2; ++i) {
    for (std::string_view w : kPrimaryOnly) {
      if (keyword_at(t, i, w)) s.needs_primary = true;
    }
  }
  return s;
}

// Options between EXPLAIN and the explained statement. Returns the index of
// the statement; sets `analyze` when it will be executed.
std::size_t explain_options(TokenSpan t, Dialect dialect, bool& analyze, bool& into) {
  std::size_t i = 1;
  if (dialect == Dialect::Postgres && i < t.size() && t[i].kind == TokenKind::LParen) {
    const std::size_t close = matching_paren(t, i);
    if (close == kNoMatch) return t.size();
    for (std::size_t k = i + 1; k < close; ++k) {
      if (!is_keyword(t[k], "analyze") && !is_keyword(t[k], "analyse")) continue;
      const bool off =
          keyword_at(t, k + 1, "false") || keyword_at(t, k + 1, "off") ||
          (k + 1 < close && t[k + 1].kind == TokenKind::Number && t[k + 1].text == "0");
      analyze = analyze || !off;
    }
    i = close + 1;
  }
  for (; i < t.size(); ++i) {
    if (keyword_at(t, i, "analyze") || keyword_at(t, i, "analyse")) {
      analyze = true;
    } else if (keyword_at(t, i, "format") || keyword_at(t, i, "into")) {
      // MySQL: FORMAT [=] name, INTO @var
      into = into || keyword_at(t, i, "into");
      if (i + 1 < t.size() && t[i + 1].kind == TokenKind::Operator) ++i;
      ++i;
    } else if (!keyword_at(t, i, "verbose") && !keyword_at(t, i, "extended") &&
               !keyword_at(t, i, "partitions")) {
      break;
    }
  }
  return i;
}

// EXPLAIN only plans the statement, which any server can do; EXPLAIN ANALYZE
// runs it, so it is exactly as dangerous as the statement itself.
Statement explain(TokenSpan t, const Context& ctx) {
  bool analyze = false;
  bool into = false;
  const std::size_t start = explain_options(t, ctx.dialect, analyze, into);
  if (analyze) return classify_nested(t.subspan(start), ctx);
  Statement s;
  s.kind = Kind::Read;
  s.needs_primary = into;  // EXPLAIN INTO @var sets a session variable
  return s;
}

// Transaction modes after BEGIN / START TRANSACTION.
Statement begin_modes(TokenSpan t, std::size_t from, const Context& ctx) {
  bool read_only = false;
  bool read_write = false;
  for (std::size_t i = from; i < t.size(); ++i) {
    if (!is_keyword(t[i], "read")) continue;
    read_only = read_only || keyword_at(t, i + 1, "only");
    read_write = read_write || keyword_at(t, i + 1, "write");
  }
  Statement s = make(Kind::Begin, ctx);
  s.read_only_txn = read_only && !read_write;
  s.needs_primary = !s.read_only_txn;
  return s;
}

Statement begin(TokenSpan t, const Context& ctx) {
  // MariaDB's BEGIN NOT ATOMIC ... END is a compound statement, not a
  // transaction: it can run anything.
  if (keyword_at(t, 1, "not") || keyword_at(t, 1, "atomic")) return make(Kind::Utility, ctx);
  return begin_modes(t, 1, ctx);
}

Statement start(TokenSpan t, const Context& ctx) {
  if (keyword_at(t, 1, "transaction")) return begin_modes(t, 2, ctx);
  return make(Kind::Utility, ctx);  // START SLAVE / START REPLICA ...
}

Statement rollback(TokenSpan t, const Context& ctx) {
  std::size_t i = 1;
  if (keyword_at(t, i, "work") || keyword_at(t, i, "transaction")) ++i;
  return make(keyword_at(t, i, "to") ? Kind::Savepoint : Kind::Rollback, ctx);
}

// Finds the FOR of MySQL's SET STATEMENT var = value [, ...] FOR <statement>.
Statement set_statement(TokenSpan t, const Context& ctx) {
  int depth = 0;
  for (std::size_t i = 2; i < t.size(); ++i) {
    if (t[i].kind == TokenKind::LParen) ++depth;
    if (t[i].kind == TokenKind::RParen) --depth;
    if (depth == 0 && is_keyword(t[i], "for")) return classify_nested(t.subspan(i + 1), ctx);
  }
  return make(Kind::Utility, ctx);
}

bool sets_global(TokenSpan t) {
  for (const Token& token : t) {
    if (is_keyword(token, "global") || is_keyword(token, "persist") ||
        is_keyword(token, "persist_only")) {
      return true;
    }
  }
  return false;
}

// SET of a session variable is SessionSet; SET LOCAL / SET TRANSACTION only
// last for the transaction, and SET GLOBAL is server state: Utility.
Statement set(TokenSpan t, const Context& ctx) {
  const bool mysql = ctx.dialect == Dialect::Mysql;
  if (keyword_at(t, 1, "local") || keyword_at(t, 1, "transaction") ||
      keyword_at(t, 1, "constraints")) {
    return make(Kind::Utility, ctx);
  }
  if (mysql && keyword_at(t, 1, "statement")) return set_statement(t, ctx);
  const bool mysql_admin = keyword_at(t, 1, "password") || keyword_at(t, 1, "default") ||
                           keyword_at(t, 1, "resource") || sets_global(t);
  if (mysql && mysql_admin) return make(Kind::Utility, ctx);
  return make(Kind::SessionSet, ctx);
}

Statement reset(TokenSpan, const Context& ctx) {
  // MySQL's RESET MASTER / REPLICA / QUERY CACHE act on the server.
  return make(ctx.dialect == Dialect::Mysql ? Kind::Utility : Kind::SessionSet, ctx);
}

// MySQL PREPARE name FROM '<text>' | @var.
Statement prepare_from(TokenSpan t, std::size_t from, const Context& ctx) {
  Statement s = make(Kind::Prepare, ctx);
  const bool literal = from + 1 < t.size() && t[from + 1].kind == TokenKind::String;
  const std::string_view text = literal ? t[from + 1].text : std::string_view{};
  // Escaped text would need decoding first; such statements stay on the primary.
  const std::string_view body = text.size() >= 2 ? text.substr(1, text.size() - 2) : "";
  const bool plain = literal && body.find(text.front()) == std::string_view::npos &&
                     body.find('\\') == std::string_view::npos;
  if (!plain || ctx.depth >= kMaxDepth) return s;
  Statement inner = analyze_nested(body, ctx.dialect, *ctx.options, ctx.depth + 1);
  s.needs_primary = inner.needs_primary || inner.multi_statement;
  s.locking_read = inner.locking_read;
  s.writes_in_function = inner.writes_in_function;
  s.tables = std::move(inner.tables);
  return s;
}

// PREPARE name [(types)] AS <statement>: needs_primary says where the
// prepared statement may later run. PREPARE TRANSACTION 'gid' ends the
// transaction (two-phase commit).
Statement prepare(TokenSpan t, const Context& ctx) {
  if (keyword_at(t, 1, "transaction") && t.size() > 2 && t[2].kind == TokenKind::String) {
    return make(Kind::Commit, ctx);
  }
  int depth = 0;
  for (std::size_t i = 2; i < t.size(); ++i) {
    if (t[i].kind == TokenKind::LParen) ++depth;
    if (t[i].kind == TokenKind::RParen) --depth;
    if (depth != 0) continue;
    if (is_keyword(t[i], "from") && ctx.dialect == Dialect::Mysql) return prepare_from(t, i, ctx);
    if (!is_keyword(t[i], "as")) continue;
    Statement inner = classify_nested(t.subspan(i + 1), ctx);
    Statement s = make(Kind::Prepare, ctx);
    s.needs_primary = inner.needs_primary;
    s.locking_read = inner.locking_read;
    s.writes_in_function = inner.writes_in_function;
    return s;
  }
  return make(Kind::Prepare, ctx);
}

// Where COPY ... TO sends its rows: only STDOUT reaches the client; a file or
// PROGRAM acts on the server host, which is the primary's business.
bool copies_to_client(TokenSpan t, std::size_t to) {
  return keyword_at(t, to + 1, "stdout");
}

Statement copy(TokenSpan t, const Context& ctx) {
  if (t.size() > 1 && t[1].kind == TokenKind::LParen) {
    const std::size_t close = matching_paren(t, 1);
    if (close == kNoMatch || !keyword_at(t, close + 1, "to")) return make(Kind::Utility, ctx);
    Statement s = classify_nested(t.subspan(2, close - 2), ctx);
    if (s.kind == Kind::Read) s.needs_primary = s.needs_primary || !copies_to_client(t, close + 1);
    return s;
  }
  int depth = 0;
  for (std::size_t i = 1; i < t.size(); ++i) {
    if (t[i].kind == TokenKind::LParen) ++depth;
    if (t[i].kind == TokenKind::RParen) --depth;
    if (depth != 0) continue;
    if (is_keyword(t[i], "from")) return make(Kind::Write, ctx);
    if (!is_keyword(t[i], "to")) continue;
    Statement s = make(Kind::Read, ctx);
    s.needs_primary = !copies_to_client(t, i);
    return s;
  }
  return make(Kind::Utility, ctx);
}

Statement load(TokenSpan t, const Context& ctx) {
  // MySQL LOAD DATA / LOAD XML write rows; PostgreSQL LOAD 'lib' loads a library.
  const bool data = keyword_at(t, 1, "data") || keyword_at(t, 1, "xml");
  return make(data ? Kind::Write : Kind::Utility, ctx);
}

Statement drop(TokenSpan t, const Context& ctx) {
  // MySQL DROP PREPARE name is DEALLOCATE PREPARE name.
  const bool deallocate = ctx.dialect == Dialect::Mysql && keyword_at(t, 1, "prepare");
  return make(deallocate ? Kind::Deallocate : Kind::Ddl, ctx);
}

Statement use(TokenSpan, const Context& ctx) {
  return make(ctx.dialect == Dialect::Mysql ? Kind::SessionSet : Kind::Utility, ctx);
}

template <Kind K>
Statement fixed(TokenSpan, const Context& ctx) {
  return make(K, ctx);
}

struct Entry {
  std::string_view keyword;
  Handler handler;
};

// Most frequent first: the table is searched linearly.
constexpr Entry kHandlers[] = {
    {"select", read_query},
    {"insert", fixed<Kind::Write>},
    {"update", fixed<Kind::Write>},
    {"delete", fixed<Kind::Write>},
    {"with", read_query},
    {"begin", begin},
    {"commit", fixed<Kind::Commit>},
    {"rollback", rollback},
    {"set", set},
    {"values", read_query},
    {"table", read_query},
    {"show", show},
    {"explain", explain},
    {"describe", explain},
    {"desc", explain},
    {"start", start},
    {"end", fixed<Kind::Commit>},
    {"abort", rollback},
    {"savepoint", fixed<Kind::Savepoint>},
    {"release", fixed<Kind::Savepoint>},
    {"reset", reset},
    {"prepare", prepare},
    {"execute", fixed<Kind::Execute>},
    {"deallocate", fixed<Kind::Deallocate>},
    {"merge", fixed<Kind::Write>},
    {"upsert", fixed<Kind::Write>},
    {"replace", fixed<Kind::Write>},
    {"call", fixed<Kind::Write>},
    {"lock", fixed<Kind::Write>},
    {"copy", copy},
    {"load", load},
    {"use", use},
    {"listen", fixed<Kind::Listen>},
    {"unlisten", fixed<Kind::Listen>},
    {"notify", fixed<Kind::Listen>},
    {"create", fixed<Kind::Ddl>},
    {"alter", fixed<Kind::Ddl>},
    {"drop", drop},
    {"truncate", fixed<Kind::Ddl>},
    {"grant", fixed<Kind::Ddl>},
    {"revoke", fixed<Kind::Ddl>},
    {"comment", fixed<Kind::Ddl>},
    {"reindex", fixed<Kind::Ddl>},
    {"cluster", fixed<Kind::Ddl>},
    {"rename", fixed<Kind::Ddl>},
    {"refresh", fixed<Kind::Ddl>},
    {"security", fixed<Kind::Ddl>},
    {"import", fixed<Kind::Ddl>},
    {"reassign", fixed<Kind::Ddl>},
};

}  // namespace

Statement classify_statement(TokenSpan tokens, const Context& context) {
  const Token& first = tokens.front();
  if (first.kind == TokenKind::LParen) return parenthesized(tokens, context);
  if (first.kind == TokenKind::Word) {
    for (const Entry& e : kHandlers) {
      if (iequals(first.text, e.keyword)) return e.handler(tokens, context);
    }
  }
  // DO, VACUUM, ANALYZE, CHECKPOINT, DISCARD, XA, HANDLER, UNLOCK, KILL, FLUSH,
  // and anything not recognised: the primary, which can run all of them.
  return make(Kind::Utility, context);
}

void finalize(Statement& s) {
  const bool may_skip_primary =
      s.kind == Kind::Read || s.kind == Kind::Prepare || (s.kind == Kind::Begin && s.read_only_txn);
  if (!may_skip_primary || s.locking_read || s.writes_in_function) s.needs_primary = true;
}

}  // namespace shardgate::router::detail
