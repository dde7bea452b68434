// The PostgreSQL session's side of the write journal
// (replication/write_journal.h). PostgreSQL tells a client nothing about
// where its commit lies, so the proxy asks, in the same round trip and the
// same transaction as the client's write: a SELECT of the transaction's id
// and of the WAL insert position, run after an autocommit write (in the same
// Query message, hence the same implicit transaction) or before a COMMIT.
// Its answer is kept from the client. The entry is stored when the round's
// ReadyForQuery shows the commit went through (no error, no transaction
// open: a deferred constraint can still fail the commit after the SELECT),
// and before that ReadyForQuery is relayed, so nothing is acknowledged that
// the journal does not hold.
//
// The xid names the commit on a promoted replica (pg_xact_status); the WAL
// position, read after the transaction's last write, orders the replay: a
// transaction that waited for another's row, or read its write, reads a
// later position than the one it depended on.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/protocol/postgres/messages.h"
#include "replication/journal.pb.h"
#include "router/statement.h"

namespace shardgate::session {

inline constexpr std::string_view kJournalSelect =
    "SELECT pg_current_xact_id_if_assigned()::text, pg_current_wal_insert_lsn()::text";

// Data-changing statements that may run in a transaction block: INSERT,
// UPDATE, DELETE, MERGE, DDL, one or several in one text; not COPY (its data
// comes later), CALL (a procedure may commit), what PostgreSQL refuses in a
// transaction block (CREATE INDEX CONCURRENTLY ...), nor several statements
// of which one begins or ends a transaction or a savepoint (the text's
// statements would not make the one transaction a replay makes of them).
// Unterminated text is refused too: the SELECT after it would end up inside
// a comment or a string.
bool journalable_write(std::string_view sql, const router::Statement& stmt);

// How many statements the text holds (empty ones between semicolons do not
// count: the server answers nothing for them); 0 when it does not lex.
std::size_t statement_count(std::string_view sql);

// COMMIT or END, without PREPARED or AND CHAIN.
bool plain_commit(std::string_view sql, const router::Statement& stmt);

// The client's statement followed, or a COMMIT preceded, by the journal's
// SELECT: its text, or the EXECUTE of it prepared on the server connection.
inline constexpr std::string_view kJournalExecute = "EXECUTE shardgate_journal";
std::string with_journal_select_after(std::string_view sql,
                                      std::string_view select = kJournalSelect);
std::string with_journal_select_before(std::string_view sql,
                                       std::string_view select = kJournalSelect);

struct JournalPosition {
  std::uint64_t xid = 0;
  std::uint64_t wal = 0;
};
// The SELECT's DataRow; nullopt when the transaction wrote nothing (no xid)
// or the row is not what the SELECT returns.
std::optional<JournalPosition> parse_journal_row(std::string_view datarow_body);

// Statements whose effect a replay may not reproduce: the time, random
// values, sequences, the server's own identity.
bool pg_replay_may_differ(std::string_view sql);

// An extended-protocol execution as a journal statement: the Parse's text
// and raw parameter types (int16 count + oids), the Bind's values. nullopt
// when the types are malformed.
std::optional<replication::journal::Statement> journal_execution(
    std::string_view query, std::string_view param_types, const std::vector<pg::BindParam>& params);

// The journal SELECT as extended-protocol messages put before a batch's
// Sync (or before a COMMIT's Bind): a Bind and an Execute of a statement of
// the proxy's own, preceded by its Parse when the server connection has not
// prepared it yet (`prepare`). Answered [SwallowParse,] SwallowBind,
// JournalExecute. Its portal ends with the transaction that follows.
inline constexpr std::string_view kJournalStatement = "shardgate_journal";
std::string journal_select_messages(bool prepare);

// What a client transaction wrote so far, while it is open.
struct PgJournalTxn {
  std::vector<replication::journal::Statement> statements;
  bool commit_staged = false;     // the journal SELECT went before a COMMIT's Bind
  bool batch_autocommit = false;  // executions of a batch outside a transaction
  bool begun = false;             // by a BEGIN bound in a batch (not yet answered)
  bool broken = false;            // it ran something the journal cannot replay
  bool differs = false;           // pg_replay_may_differ
  // The simple Query now answered added the last statement: if it failed,
  // that statement changed nothing and leaves the journal (note_statement_done).
  bool query_recorded = false;
  // An autocommit text's statements: their answers come before the journal's.
  std::size_t tail_statements = 1;
};

}  // namespace shardgate::session
