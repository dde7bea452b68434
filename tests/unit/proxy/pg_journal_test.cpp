// The PostgreSQL write journal's data-path pieces: which statements get the
// journal's SELECT, how it is added, and how the tracker keeps its answer
// from the client while relaying the client's own answers unchanged.
#include "proxy/session/pg_journal.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/protocol/postgres/messages.h"
#include "proxy/session/response_tracker.h"
#include "router/classify.h"
#include "tests/unit/proxy/pg_server_messages.h"

namespace shardgate::session {
namespace {

using namespace std::string_literals;
using namespace std::string_view_literals;
using namespace pg_test;

std::string cell(std::string_view v) {
  return be32(static_cast<std::uint32_t>(v.size())) + std::string(v);
}
std::string journal_row_body(std::string_view xid, std::string_view lsn) {
  return "\0\x02"s + cell(xid) + cell(lsn);
}

router::Statement analyzed(std::string_view sql) {
  return router::analyze(sql, router::Dialect::Postgres, router::AnalyzeOptions{});
}

// Feeds `bytes` in chunks of `step` as a read buffer would; what is relayed.
std::string relay(ResponseTracker& t, const std::string& bytes, std::size_t step) {
  std::string buffer, out;
  for (std::size_t at = 0; at < bytes.size(); at += step) {
    buffer += bytes.substr(at, step);
    const FeedResult r = t.feed(buffer);
    for (const Segment& s : r.out)
      out += s.synthetic.empty() ? buffer.substr(s.offset, s.length) : s.synthetic;
    buffer.erase(0, r.consumed);
  }
  EXPECT_TRUE(buffer.empty());
  return out;
}

TEST(PgJournal, WhichStatementsAreJournaled) {
  for (const char* sql :
       {"INSERT INTO t VALUES (1)", "update t set a = 1 where id = 2 -- trailing comment",
        "DELETE FROM t", "CREATE TABLE t (id int)", "INSERT INTO t VALUES (1) RETURNING id",
        "INSERT INTO t VALUES (1); SELECT 1", "SET search_path = app; UPDATE t SET a = 1;",
        "insert into t values (';'); /* ; */ delete from u"})
    EXPECT_TRUE(journalable_write(sql, analyzed(sql))) << sql;
  for (const char* sql :
       {"SELECT 1", "COPY t FROM STDIN", "CALL p()", "CREATE INDEX CONCURRENTLY i ON t (a)",
        "INSERT INTO t VALUES (1) /* unterminated", "VACUUM t", "BEGIN",
        "BEGIN; INSERT INTO t VALUES (1); COMMIT", "INSERT INTO t VALUES (1); COMMIT",
        "INSERT INTO t VALUES (1); SAVEPOINT a; INSERT INTO t VALUES (2)",
        "INSERT INTO t VALUES (1); CALL p()", "UPDATE t SET a = 1; COPY t FROM STDIN",
        "INSERT INTO t VALUES (1); PREPARE TRANSACTION 'x'"})
    EXPECT_FALSE(journalable_write(sql, analyzed(sql))) << sql;
}

TEST(PgJournal, OnlyAPlainCommitGetsTheSelectBeforeIt) {
  for (const char* sql : {"COMMIT", "commit;", "END", "COMMIT WORK", "end transaction"})
    EXPECT_TRUE(plain_commit(sql, analyzed(sql))) << sql;
  for (const char* sql :
       {"COMMIT PREPARED 'x'", "COMMIT AND CHAIN", "ROLLBACK", "COMMIT; SELECT 1"})
    EXPECT_FALSE(plain_commit(sql, analyzed(sql))) << sql;
}

TEST(PgJournal, TheSelectSurvivesATrailingComment) {
  EXPECT_EQ(with_journal_select_after("UPDATE t SET a = 1 -- x"),
            "UPDATE t SET a = 1 -- x\n;" + std::string(kJournalSelect));
  EXPECT_EQ(with_journal_select_before("COMMIT"), std::string(kJournalSelect) + ";COMMIT");
}

TEST(PgJournal, ParsesTheRow) {
  auto p = parse_journal_row(journal_row_body("742", "0/3000148"));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->xid, 742u);
  EXPECT_EQ(p->wal, 0x3000148u);
  // No transaction id: the transaction wrote nothing.
  EXPECT_FALSE(parse_journal_row("\0\x02"s + be32(0xffffffff) + cell("0/1")));
  EXPECT_FALSE(parse_journal_row(journal_row_body("x1", "0/1")));
  EXPECT_FALSE(parse_journal_row(journal_row_body("1", "nope")));
  EXPECT_FALSE(parse_journal_row("\0\x01"s + cell("1")));
  EXPECT_FALSE(parse_journal_row("\0\x02"s + be32(50) + "short"));
}

TEST(PgJournal, ReplayMayDiffer) {
  EXPECT_TRUE(pg_replay_may_differ("INSERT INTO t VALUES (now())"));
  EXPECT_TRUE(pg_replay_may_differ("insert into t values (nextval('s'), random())"));
  EXPECT_TRUE(pg_replay_may_differ("UPDATE t SET at = current_timestamp"));
  EXPECT_FALSE(pg_replay_may_differ("INSERT INTO t VALUES (1, 'now')"));
}

// INSERT ... RETURNING then the journal's SELECT: the client gets its own
// rows and ReadyForQuery, the proxy the SELECT's row; whatever the chunking.
TEST(PgJournal, TailAnswerIsKeptFromTheClient) {
  const std::string client_part =
      row_description() + msg('D', "\0\x01"s + cell("5")) + command_complete("INSERT 0 1");
  const std::string ours = row_description() + msg('D', journal_row_body("900", "0/16B3748")) +
                           command_complete("SELECT 1");
  const std::string server = client_part + msg('N', "notice") + ours + ready('I');
  for (std::size_t step : {server.size(), std::size_t{1}, std::size_t{7}}) {
    ResponseTracker t;
    t.expect(Expect::JournalTail);
    EXPECT_EQ(relay(t, server, step), client_part + msg('N', "notice") + ready('I'))
        << "step " << step;
    auto row = t.take_committed_journal_row();
    ASSERT_TRUE(row);
    EXPECT_EQ(parse_journal_row(*row)->xid, 900u);
    EXPECT_EQ(t.last_command_tag(), "INSERT 0 1");
    EXPECT_TRUE(t.idle());
  }
}

// A text of three statements (INSERT; SELECT; UPDATE) then the journal's
// SELECT: all three answers are the client's, only the fourth is ours.
TEST(PgJournal, EveryStatementOfATextIsAnsweredToTheClient) {
  const std::string sql = "INSERT INTO t VALUES (';'); ; SELECT 1 /* ; */; UPDATE t SET a = 1";
  ASSERT_EQ(statement_count(sql), 3u);
  const std::string client_part = command_complete("INSERT 0 1") + row_description() +
                                  msg('D', "\0\x01"s + cell("1")) + command_complete("SELECT 1") +
                                  command_complete("UPDATE 4");
  const std::string ours = row_description() + msg('D', journal_row_body("901", "0/16B3748")) +
                           command_complete("SELECT 1");
  const std::string server = client_part + ours + ready('I');
  for (std::size_t step : {server.size(), std::size_t{1}, std::size_t{5}}) {
    ResponseTracker t;
    t.expect_journal_tail(statement_count(sql));
    EXPECT_EQ(relay(t, server, step), client_part + ready('I')) << "step " << step;
    auto row = t.take_committed_journal_row();
    ASSERT_TRUE(row);
    EXPECT_EQ(parse_journal_row(*row)->xid, 901u);
    EXPECT_EQ(t.last_command_tag(), "UPDATE 4");
  }
}

// A query the proxy sends first (a server connection's settings brought in
// line with the client's, answered and swallowed) must not reset the count
// of the text's statements: the SELECT's answer is the client's.
TEST(PgJournal, AQueryAnsweredBeforeTheTextKeepsItsStatementCount) {
  const std::string client_part = command_complete("INSERT 0 1") + row_description() +
                                  msg('D', "\0\x01"s + cell("42")) + command_complete("SELECT 1");
  const std::string ours = row_description() + msg('D', journal_row_body("902", "0/16B3748")) +
                           command_complete("SELECT 1");
  const std::string server = command_complete("SET") + ready('I') + client_part + ours + ready('I');
  ResponseTracker t;
  t.expect(Expect::SwallowQuery);
  t.expect_journal_tail(2);
  EXPECT_EQ(relay(t, server, server.size()), client_part + ready('I'));
  auto row = t.take_committed_journal_row();
  ASSERT_TRUE(row);
  EXPECT_EQ(parse_journal_row(*row)->xid, 902u);
}

TEST(PgJournal, AFailedStatementLeavesNoRow) {
  ResponseTracker t;
  t.expect(Expect::JournalTail);
  const std::string server = pg::error_response("23505", "duplicate key") + ready('I');
  EXPECT_EQ(relay(t, server, server.size()), server);
  EXPECT_FALSE(t.take_committed_journal_row());
  EXPECT_TRUE(t.error_seen());
}

// A deferred constraint fails the commit after the SELECT ran: no entry.
TEST(PgJournal, ACommitThatFailsAfterTheSelectLeavesNoRow) {
  ResponseTracker t;
  t.expect(Expect::JournalTail);
  const std::string server = command_complete("INSERT 0 1") + row_description() +
                             msg('D', journal_row_body("5", "0/1")) + command_complete("SELECT 1") +
                             pg::error_response("23503", "violates foreign key") + ready('I');
  relay(t, server, server.size());
  EXPECT_FALSE(t.take_committed_journal_row());
  // The next round starts clean.
  t.expect(Expect::JournalTail);
  const std::string next = command_complete("INSERT 0 1") + row_description() +
                           msg('D', journal_row_body("6", "0/2")) + command_complete("SELECT 1") +
                           ready('I');
  relay(t, next, next.size());
  EXPECT_TRUE(t.take_committed_journal_row());
}

// A backend whose postmaster died answers ReadyForQuery, then sends a FATAL
// as it exits: the client was told the commit happened, so it is kept.
TEST(PgJournal, AnErrorAfterTheReadyForQueryDoesNotUndoTheCommit) {
  ResponseTracker t;
  t.expect(Expect::JournalTail);
  const std::string server = command_complete("INSERT 0 1") + row_description() +
                             msg('D', journal_row_body("9", "0/1")) + command_complete("SELECT 1") +
                             ready('I') + pg::error_response("57P01", "unexpected postmaster exit");
  relay(t, server, server.size());
  auto row = t.take_committed_journal_row();
  ASSERT_TRUE(row);
  EXPECT_EQ(parse_journal_row(*row)->xid, 9u);
}

TEST(PgJournal, HeadAnswerComesBeforeTheCommit) {
  ResponseTracker t;
  t.expect(Expect::JournalHead);
  const std::string ours =
      row_description() + msg('D', journal_row_body("77", "0/1")) + command_complete("SELECT 1");
  const std::string server = ours + command_complete("COMMIT") + ready('I');
  EXPECT_EQ(relay(t, server, 3), command_complete("COMMIT") + ready('I'));
  auto row = t.take_committed_journal_row();
  ASSERT_TRUE(row);
  EXPECT_EQ(parse_journal_row(*row)->xid, 77u);
  EXPECT_EQ(t.transaction_status(), 'I');
}

// The journal's Execute before a batch's Sync, with its Parse (the first
// time on a server connection) and Bind: none of their answers reach the
// client, and the Parse is confirmed.
TEST(PgJournal, BatchAnswersAreKeptFromTheClient) {
  ResponseTracker t;
  for (Expect e : {Expect::Parse, Expect::Bind, Expect::Execute, Expect::JournalParse,
                   Expect::SwallowBind, Expect::JournalExecute, Expect::Sync})
    t.expect(e);
  const std::string client_part = msg('1') + msg('2') + command_complete("INSERT 0 1");
  const std::string server = client_part + msg('1') + msg('2') +
                             msg('D', journal_row_body("12", "0/2")) +
                             command_complete("SELECT 1") + ready('I');
  EXPECT_EQ(relay(t, server, 5), client_part + ready('I'));
  ASSERT_TRUE(t.take_committed_journal_row());
  EXPECT_TRUE(t.take_journal_parsed());
  EXPECT_TRUE(t.idle());
}

// An error earlier in the batch makes the server skip the journal's Parse:
// it is not noted as prepared, and nothing is journaled.
TEST(PgJournal, ASkippedParseIsNotConfirmed) {
  ResponseTracker t;
  for (Expect e : {Expect::Parse, Expect::Bind, Expect::Execute, Expect::JournalParse,
                   Expect::SwallowBind, Expect::JournalExecute, Expect::Sync})
    t.expect(e);
  const std::string server =
      msg('1') + msg('2') + pg::error_response("23505", "duplicate key") + ready('I');
  EXPECT_EQ(relay(t, server, server.size()), server);
  EXPECT_FALSE(t.take_journal_parsed());
  EXPECT_FALSE(t.take_committed_journal_row());
  EXPECT_TRUE(t.idle());
}

}  // namespace
}  // namespace shardgate::session
