#include "proxy/session/pg_journal.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <chrono>
#include <vector>

#include "proxy/protocol/postgres/frame.h"
#include "proxy/session/pg_session.h"
#include "replication/pg_monitor.h"
#include "router/sql_lexer.h"
#include "router/write_split.h"

namespace shardgate::session {

namespace {

// The first two words, or nothing when the text does not lex to the end.
std::optional<std::array<router::Token, 2>> leading_words(std::string_view sql) {
  router::SqlLexer lexer(sql, router::Dialect::Postgres);
  std::array<router::Token, 2> head{};
  int n = 0;
  for (router::Token t = lexer.next(); t.kind != router::TokenKind::End; t = lexer.next()) {
    if (t.kind == router::TokenKind::Error) return std::nullopt;
    if (t.kind == router::TokenKind::Comment) continue;
    if (n < 2) head[n++] = t;
  }
  return head;
}

// SET, SET LOCAL or RESET, alone.
bool sets_something(std::string_view sql, const router::Statement& stmt) {
  if (stmt.multi_statement) return false;
  if (stmt.kind == router::StatementKind::SessionSet) return true;
  if (stmt.kind != router::StatementKind::Utility) return false;
  auto head = leading_words(sql);
  return head && (router::is_keyword((*head)[0], "set") || router::is_keyword((*head)[0], "reset"));
}

// The first word of each statement of the text, or nothing when the text
// does not lex to the end.
std::optional<std::vector<router::Token>> statement_heads(std::string_view sql) {
  router::SqlLexer lexer(sql, router::Dialect::Postgres);
  std::vector<router::Token> heads;
  bool at_start = true;
  for (router::Token t = lexer.next(); t.kind != router::TokenKind::End; t = lexer.next()) {
    if (t.kind == router::TokenKind::Error) return std::nullopt;
    if (t.kind == router::TokenKind::Comment) continue;
    if (t.kind == router::TokenKind::Semicolon) {
      at_start = true;
    } else if (at_start) {
      heads.push_back(t);
      at_start = false;
    }
  }
  return heads;
}

// Words that begin or end a transaction or a savepoint (PREPARE TRANSACTION
// too; a PREPARE of a statement is refused with it, which costs nothing).
bool controls_transaction(const router::Token& head) {
  for (const char* word :
       {"begin", "start", "commit", "end", "rollback", "abort", "savepoint", "release", "prepare"})
    if (router::is_keyword(head, word)) return true;
  return false;
}

}  // namespace

bool journalable_write(std::string_view sql, const router::Statement& stmt) {
  if (stmt.kind != router::StatementKind::Write && stmt.kind != router::StatementKind::Ddl)
    return false;
  auto heads = statement_heads(sql);
  if (!heads) return false;
  for (const router::Token& head : *heads) {
    if (router::is_keyword(head, "copy") || router::is_keyword(head, "call")) return false;
    // Several statements run as one transaction, as a replay runs them,
    // unless the text itself begins or ends one.
    if (stmt.multi_statement && controls_transaction(head)) return false;
  }
  return !router::runs_outside_transaction(sql);
}

std::size_t statement_count(std::string_view sql) {
  auto heads = statement_heads(sql);
  return heads ? heads->size() : 0;
}

bool plain_commit(std::string_view sql, const router::Statement& stmt) {
  if (stmt.multi_statement || stmt.kind != router::StatementKind::Commit) return false;
  auto head = leading_words(sql);
  if (!head) return false;
  // COMMIT [WORK | TRANSACTION]; COMMIT PREPARED and AND CHAIN are not plain.
  const router::Token& second = (*head)[1];
  return second.kind == router::TokenKind::End || second.text == ";" ||
         router::is_keyword(second, "work") || router::is_keyword(second, "transaction");
}

std::string with_journal_select_after(std::string_view sql, std::string_view select) {
  // A newline ends a trailing "--" comment; an empty statement is skipped.
  std::string out(sql);
  out += "\n;";
  out += select;
  return out;
}

std::string with_journal_select_before(std::string_view sql, std::string_view select) {
  std::string out(select);
  out += ";";
  out += sql;
  return out;
}

std::optional<JournalPosition> parse_journal_row(std::string_view body) {
  if (body.size() < 2 || pg::read_u16(body.data()) != 2) return std::nullopt;
  body.remove_prefix(2);
  std::array<std::optional<std::string_view>, 2> cols;
  for (auto& col : cols) {
    if (body.size() < 4) return std::nullopt;
    const auto len = static_cast<std::int32_t>(pg::read_u32(body.data()));
    body.remove_prefix(4);
    if (len < 0) continue;  // NULL
    if (body.size() < static_cast<std::size_t>(len)) return std::nullopt;
    col = body.substr(0, static_cast<std::size_t>(len));
    body.remove_prefix(static_cast<std::size_t>(len));
  }
  if (!cols[0] || !cols[1]) return std::nullopt;
  JournalPosition p;
  auto [end, ec] = std::from_chars(cols[0]->data(), cols[0]->data() + cols[0]->size(), p.xid);
  if (ec != std::errc() || end != cols[0]->data() + cols[0]->size() || p.xid == 0)
    return std::nullopt;
  auto wal = replication::parse_lsn(*cols[1]);
  if (!wal) return std::nullopt;
  p.wal = *wal;
  return p;
}

std::optional<replication::journal::Statement> journal_execution(
    std::string_view query, std::string_view param_types,
    const std::vector<pg::BindParam>& params) {
  replication::journal::Statement st;
  st.set_sql(std::string(query));
  st.set_prepared(true);
  if (param_types.size() >= 2) {
    const std::size_t n = pg::read_u16(param_types.data());
    if (param_types.size() < 2 + 4 * n) return std::nullopt;
    for (std::size_t i = 0; i < n; ++i)
      st.add_pg_param_types(pg::read_u32(param_types.data() + 2 + 4 * i));
  }
  for (const auto& p : params) {
    auto* out = st.add_pg_params();
    out->set_is_null(p.null);
    out->set_binary(p.binary);
    if (!p.null) out->set_value(std::string(p.value));
  }
  return st;
}

std::string journal_select_messages(bool prepare) {
  std::string out;
  if (prepare)
    out = pg::parse_message(kJournalStatement, kJournalSelect, std::string_view("\0\0", 2));
  out +=
      pg::bind_message(kJournalStatement, kJournalStatement, std::string_view("\0\0\0\0\0\0", 6));
  out += pg::execute_message(kJournalStatement, 0);
  return out;
}

bool pg_replay_may_differ(std::string_view sql) {
  static constexpr std::array<std::string_view, 20> kDiffering = {"NOW(",
                                                                  "CURRENT_TIMESTAMP",
                                                                  "CURRENT_DATE",
                                                                  "CURRENT_TIME",
                                                                  "LOCALTIME",
                                                                  "CLOCK_TIMESTAMP(",
                                                                  "STATEMENT_TIMESTAMP(",
                                                                  "TRANSACTION_TIMESTAMP(",
                                                                  "TIMEOFDAY(",
                                                                  "RANDOM(",
                                                                  "GEN_RANDOM_UUID(",
                                                                  "UUID_GENERATE",
                                                                  "NEXTVAL(",
                                                                  "CURRVAL(",
                                                                  "LASTVAL(",
                                                                  "SETVAL(",
                                                                  "PG_BACKEND_PID",
                                                                  "PG_CURRENT_XACT_ID",
                                                                  "TXID_CURRENT",
                                                                  "INET_SERVER_"};
  std::string upper(sql);
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return std::any_of(kDiffering.begin(), kDiffering.end(),
                     [&](std::string_view f) { return upper.find(f) != std::string::npos; });
}

// ------------------------------------------------------------ the session

Expect PgSession::journal_query(std::string_view sql, const router::Statement& stmt,
                                bool in_transaction, std::string& rewritten) {
  if (!ctx_.journal || !server_ || server_role_ != router::TargetRole::Primary || !parked_.empty())
    return Expect::Query;
  if (!in_transaction && !stmt.multi_statement && stmt.kind == router::StatementKind::Begin)
    return Expect::Query;
  if (!in_transaction) {
    if (!router::writes_data(stmt)) return Expect::Query;
    if (!journalable_write(sql, stmt)) {
      bump(worker_.metrics().journal_unrecorded_commits_total);
      return Expect::Query;
    }
    journal_txn_ = std::make_unique<PgJournalTxn>();
    journal_txn_->statements.emplace_back().set_sql(std::string(sql));
    journal_txn_->differs = pg_replay_may_differ(sql);
    journal_txn_->tail_statements = stmt.multi_statement ? statement_count(sql) : 1;
    rewritten = with_journal_select_after(sql, prepare_journal_select());
    return Expect::JournalTail;
  }
  if (stmt.kind == router::StatementKind::Commit) {
    if (!journal_txn_) return Expect::Query;
    if (journal_txn_->broken || !plain_commit(sql, stmt) || tracker_.transaction_status() != 'T') {
      if (!journal_txn_->broken && tracker_.transaction_status() == 'T')
        bump(worker_.metrics().journal_unrecorded_commits_total);
      journal_txn_.reset();
      return Expect::Query;
    }
    rewritten = with_journal_select_before(sql, prepare_journal_select());
    return Expect::JournalHead;
  }
  // A SET (or SET LOCAL) inside the transaction changes how the statements
  // after it run (TimeZone, search_path ...), and SAVEPOINT, RELEASE and
  // ROLLBACK TO which of them count: each is replayed in its place. A
  // statement that fails leaves the journal again (note_statement_done): it
  // changed nothing, and the client had to ROLLBACK TO a savepoint before
  // it to go on, which is journaled.
  const bool in_place = sets_something(sql, stmt) ||
                        (stmt.kind == router::StatementKind::Savepoint && !stmt.multi_statement);
  if (!in_place && !router::writes_data(stmt)) return Expect::Query;
  if (!journal_txn_) journal_txn_ = std::make_unique<PgJournalTxn>();
  if (!in_place && !journalable_write(sql, stmt)) {
    journal_txn_->broken = true;
    return Expect::Query;
  }
  journal_txn_->statements.emplace_back().set_sql(std::string(sql));
  journal_txn_->differs = journal_txn_->differs || pg_replay_may_differ(sql);
  journal_txn_->query_recorded = true;
  return Expect::Query;
}

// A Bind of a statement that may write, or of a COMMIT. Outside a client
// transaction the batch's executions make one implicit transaction, whose
// SELECT goes before the Sync (journal_sync); inside one, they join it, and
// a COMMIT gets the SELECT before its Bind.
void PgSession::journal_bind(std::string_view query, std::string_view param_types,
                             const router::Statement& stmt, std::string_view bind_rest) {
  if (!ctx_.journal || !server_ || server_role_ != router::TargetRole::Primary) return;
  const bool in_transaction = in_client_transaction() || (journal_txn_ && journal_txn_->begun);
  if (stmt.kind == router::StatementKind::Begin && !stmt.multi_statement && !in_transaction) {
    journal_txn_ = std::make_unique<PgJournalTxn>();
    journal_txn_->begun = true;  // what follows in the batch is inside it
    return;
  }
  if (stmt.kind == router::StatementKind::Commit) {
    if (!journal_txn_ || journal_txn_->broken || journal_txn_->statements.empty()) return;
    if (!in_transaction || tracker_.transaction_status() != 'T' || !plain_commit(query, stmt) ||
        journal_txn_->commit_staged) {
      // A failed transaction ('E') commits nothing: no count for it.
      if (tracker_.transaction_status() != 'E')
        bump(worker_.metrics().journal_unrecorded_commits_total);
      journal_txn_->broken = true;
      return;
    }
    stage_journal_select();
    journal_txn_->commit_staged = true;
    return;
  }
  const bool control_kind = stmt.kind == router::StatementKind::Begin ||
                            stmt.kind == router::StatementKind::Rollback ||
                            stmt.kind == router::StatementKind::Savepoint;
  if (!control_kind && !query.empty() && !router::writes_data(stmt)) return;  // a read
  if (!journal_txn_) journal_txn_ = std::make_unique<PgJournalTxn>();
  PgJournalTxn& txn = *journal_txn_;
  const bool control = control_kind || query.empty();  // empty: unknown to the proxy
  std::vector<pg::BindParam> params;
  std::optional<replication::journal::Statement> st;
  if (!control && !txn.commit_staged && journalable_write(query, stmt) &&
      pg::parse_bind_params(bind_rest, params))
    st = journal_execution(query, param_types, params);
  if (!st) {
    // Not replayable (or a transaction begun or ended inside the batch).
    if (!txn.broken && !in_transaction) bump(worker_.metrics().journal_unrecorded_commits_total);
    txn.broken = true;
    return;
  }
  txn.differs = txn.differs || pg_replay_may_differ(query);
  txn.statements.push_back(std::move(*st));
  if (!in_transaction) txn.batch_autocommit = true;
}

// For a simple Query: the EXECUTE of the journal's statement, prepared
// first when the server connection lacks it, by a Parse and a Sync of their
// own (nothing before them can make the server skip the Parse).
std::string_view PgSession::prepare_journal_select() {
  if (server_->prepared.insert(std::string(kJournalStatement)).second) {
    to_server_ += pg::parse_message(kJournalStatement, kJournalSelect, std::string_view("\0\0", 2));
    to_server_ += pg::simple_message('S');
    tracker_.expect(Expect::SwallowQuery);  // ParseComplete and ReadyForQuery
  }
  return kJournalExecute;
}

// Prepared once per server connection, like the clients' own statements
// (server_->prepared, which DISCARD ALL empties); noted there once the
// server confirms it (relay_buffered).
void PgSession::stage_journal_select() {
  const bool prepare = !server_->prepared.count(std::string(kJournalStatement));
  to_server_ += journal_select_messages(prepare);
  if (prepare) tracker_.expect(Expect::JournalParse);
  tracker_.expect(Expect::SwallowBind);
  tracker_.expect(Expect::JournalExecute);
}

// Before an autocommit batch's Sync: the SELECT, in its implicit transaction.
void PgSession::journal_sync() {
  if (!journal_txn_ || journal_txn_->broken || !journal_txn_->batch_autocommit ||
      journal_txn_->begun || journal_txn_->statements.empty() || in_client_transaction())
    return;
  stage_journal_select();
}

void PgSession::journal_commit(std::string_view row) {
  auto txn = std::move(journal_txn_);
  auto pos = parse_journal_row(row);
  // No xid: the transaction changed nothing, and there is nothing to keep.
  if (!pos || !txn || txn->statements.empty()) return;
  replication::journal::Entry e;
  e.set_shard(server_shard_);
  e.set_xid(pos->xid);
  e.set_wal_position(pos->wal);
  e.set_gtid("xid " + std::to_string(pos->xid));
  e.set_user(user_->name());
  e.set_database(database_);
  for (const auto& [name, set_sql] : settings_.get()) e.add_settings(set_sql);
  e.set_timestamp_us(std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count());
  for (auto& s : txn->statements) *e.add_statements() = std::move(s);
  e.set_nondeterministic(txn->differs);
  if (!ctx_.journal->append_next(e)) {
    bump(worker_.metrics().journal_errors_total);
    return;
  }
  bump(worker_.metrics().journal_entries_total);
}

}  // namespace shardgate::session
