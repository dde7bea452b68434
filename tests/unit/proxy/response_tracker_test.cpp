// Unit tests of ResponseTracker: server bytes in, segments to relay out.
#include "proxy/session/response_tracker.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/protocol/postgres/messages.h"
#include "tests/unit/proxy/pg_server_messages.h"

namespace shardgate::session {
namespace {

using namespace std::string_literals;
using namespace std::string_view_literals;
using namespace pg_test;

std::string data_row(std::string_view value) {
  return msg('D', "\0\x01"s + be32(static_cast<std::uint32_t>(value.size())) + std::string(value));
}
std::string error(std::string_view text) {
  return pg::error_response("42601", text);
}

const std::string kParseComplete = msg('1');
const std::string kBindComplete = msg('2');
const std::string kCloseComplete = msg('3');
const std::string kNoData = msg('n');

// The bytes the segments describe, in order; checks that each segment lies
// inside the fed bytes.
std::string collect(std::string_view fed, const std::vector<Segment>& out) {
  std::string s;
  for (const Segment& seg : out) {
    if (!seg.synthetic.empty()) {
      EXPECT_EQ(seg.length, 0u);
      s += seg.synthetic;
      continue;
    }
    EXPECT_GT(seg.length, 0u);
    EXPECT_LE(seg.offset + seg.length, fed.size());
    s += fed.substr(seg.offset, seg.length);
  }
  return s;
}

struct Relay {
  std::string relayed;
  std::size_t consumed = 0;
  std::string left;  // bytes never consumed
  bool copy_in = false;
  bool protocol_error = false;
};

// Feeds the chunks as a connection's read buffer would: unconsumed bytes stay
// at the front of the buffer and new bytes are appended.
Relay feed_chunks(ResponseTracker& t, const std::vector<std::string>& chunks) {
  Relay run;
  std::string buffer;
  for (const std::string& chunk : chunks) {
    buffer += chunk;
    const FeedResult r = t.feed(buffer);
    EXPECT_LE(r.consumed, buffer.size());
    run.relayed += collect(buffer, r.out);
    run.consumed += r.consumed;
    run.copy_in = run.copy_in || r.copy_in;
    run.protocol_error = run.protocol_error || r.protocol_error;
    buffer.erase(0, r.consumed);
  }
  run.left = buffer;
  return run;
}

// ---------------------------------------------------------------- simple query

TEST(ResponseTracker, SimpleQueryRelayedAsOneSegment) {
  ResponseTracker t;
  t.expect(Expect::Query);
  EXPECT_TRUE(t.awaiting_ready());
  EXPECT_FALSE(t.idle());
  const std::string in =
      row_description() + data_row("1") + data_row("2") + command_complete("SELECT 2") + ready('T');
  const FeedResult r = t.feed(in);
  EXPECT_EQ(r.consumed, in.size());
  ASSERT_EQ(r.out.size(), 1u);
  EXPECT_EQ(r.out[0].offset, 0u);
  EXPECT_EQ(r.out[0].length, in.size());
  EXPECT_TRUE(r.out[0].synthetic.empty());
  EXPECT_FALSE(r.copy_in);
  EXPECT_FALSE(r.protocol_error);
  EXPECT_FALSE(t.awaiting_ready());
  EXPECT_TRUE(t.idle());
  EXPECT_EQ(t.transaction_status(), 'T');
  EXPECT_EQ(t.ready_count(), 1u);
  EXPECT_EQ(t.last_command_tag(), "SELECT 2");
  EXPECT_FALSE(t.error_seen());
}

TEST(ResponseTracker, TransactionStatusFollowsEachReadyForQuery) {
  ResponseTracker t;
  EXPECT_EQ(t.transaction_status(), 'I');
  for (char status : {'T', 'E', 'I', 'T'}) {
    t.expect(Expect::Query);
    const std::string in = command_complete("X") + ready(status);
    EXPECT_EQ(t.feed(in).consumed, in.size());
    EXPECT_EQ(t.transaction_status(), status);
  }
  EXPECT_EQ(t.ready_count(), 4u);
}

TEST(ResponseTracker, StatusOnlyChangesWhenReadyForQueryArrives) {
  ResponseTracker t;
  t.expect(Expect::Query);
  t.feed(command_complete("BEGIN") + ready('T'));
  t.expect(Expect::Query);
  t.feed(command_complete("COMMIT"));
  EXPECT_EQ(t.transaction_status(), 'T');
  EXPECT_TRUE(t.awaiting_ready());
  t.feed(ready('I'));
  EXPECT_EQ(t.transaction_status(), 'I');
  EXPECT_FALSE(t.awaiting_ready());
}

TEST(ResponseTracker, LastCommandTag) {
  ResponseTracker t;
  EXPECT_EQ(t.last_command_tag(), "");
  t.expect(Expect::Query);
  t.feed(command_complete("INSERT 0 1") + ready('T'));
  EXPECT_EQ(t.last_command_tag(), "INSERT 0 1");
  t.expect(Expect::Query);
  t.feed(command_complete("COMMIT") + ready('I'));
  EXPECT_EQ(t.last_command_tag(), "COMMIT");
}

TEST(ResponseTracker, MultiStatementQueryEndsOnlyAtReadyForQuery) {
  ResponseTracker t;
  t.expect(Expect::Query);
  const std::string in =
      command_complete("BEGIN") + row_description() + data_row("7") + command_complete("SELECT 1");
  EXPECT_EQ(t.feed(in).consumed, in.size());
  EXPECT_TRUE(t.awaiting_ready());
  EXPECT_EQ(t.last_command_tag(), "SELECT 1");
  t.feed(ready('T'));
  EXPECT_TRUE(t.idle());
}

TEST(ResponseTracker, ErrorInSimpleQueryWaitsForItsReadyForQuery) {
  ResponseTracker t;
  t.expect(Expect::Query);
  t.expect(Expect::Query);  // pipelined second query
  const std::string in = error("syntax error") + ready('I');
  const FeedResult r = t.feed(in);
  EXPECT_EQ(r.consumed, in.size());
  EXPECT_EQ(collect(in, r.out), in);
  EXPECT_TRUE(t.error_seen());
  // Only the first query is answered; the second one is still owed.
  EXPECT_FALSE(t.idle());
  EXPECT_TRUE(t.awaiting_ready());
  t.clear_error();
  EXPECT_FALSE(t.error_seen());
  t.feed(command_complete("SELECT 0") + ready('I'));
  EXPECT_TRUE(t.idle());
  EXPECT_FALSE(t.error_seen());
}

// ---------------------------------------------------------------- extended protocol

TEST(ResponseTracker, ExtendedBatch) {
  ResponseTracker t;
  for (Expect e : {Expect::Parse, Expect::Bind, Expect::Describe, Expect::Execute, Expect::Sync})
    t.expect(e);
  const std::string param_description = msg('t', "\0\x01\0\0\0\x17"sv);
  const std::string in = kParseComplete + kBindComplete + param_description + row_description() +
                         data_row("a") + data_row("b") + command_complete("SELECT 2") + ready('I');
  const FeedResult r = t.feed(in);
  EXPECT_EQ(r.consumed, in.size());
  ASSERT_EQ(r.out.size(), 1u);
  EXPECT_EQ(r.out[0].offset, 0u);
  EXPECT_EQ(r.out[0].length, in.size());
  EXPECT_TRUE(t.idle());
  EXPECT_FALSE(t.awaiting_ready());
  EXPECT_EQ(t.ready_count(), 1u);
  EXPECT_EQ(t.last_command_tag(), "SELECT 2");
}

TEST(ResponseTracker, ExtendedBatchMessageByMessage) {
  ResponseTracker t;
  for (Expect e : {Expect::Parse, Expect::Bind, Expect::Describe, Expect::Execute, Expect::Sync})
    t.expect(e);
  const std::vector<std::string> answers = {kParseComplete, kBindComplete, kNoData,
                                            command_complete("UPDATE 3"), ready('T')};
  for (std::size_t i = 0; i < answers.size(); ++i) {
    EXPECT_TRUE(t.awaiting_ready()) << i;
    const FeedResult r = t.feed(answers[i]);
    EXPECT_EQ(r.consumed, answers[i].size()) << i;
    EXPECT_EQ(collect(answers[i], r.out), answers[i]) << i;
    EXPECT_EQ(t.idle(), i + 1 == answers.size()) << i;
  }
  EXPECT_EQ(t.transaction_status(), 'T');
  EXPECT_EQ(t.last_command_tag(), "UPDATE 3");
}

TEST(ResponseTracker, ExecuteEndsWithEmptyQueryOrPortalSuspended) {
  ResponseTracker t;
  for (Expect e : {Expect::Bind, Expect::Execute, Expect::Bind, Expect::Execute, Expect::Sync})
    t.expect(e);
  t.feed(kBindComplete + msg('I'));  // EmptyQueryResponse
  EXPECT_FALSE(t.idle());
  t.feed(kBindComplete + data_row("1") + msg('s'));  // PortalSuspended
  EXPECT_FALSE(t.idle());
  EXPECT_TRUE(t.awaiting_ready());
  t.feed(ready('T'));
  EXPECT_TRUE(t.idle());
}

TEST(ResponseTracker, AsynchronousMessagesAreRelayedWithoutAnsweringAnything) {
  ResponseTracker t;
  t.expect(Expect::Bind);
  t.expect(Expect::Sync);
  const std::string notice = msg('N', "SNOTICE\0Mhello\0\0"sv);
  const std::string status = pg::parameter_status("TimeZone", "UTC");
  const std::string in = notice + status + kBindComplete;
  const FeedResult r = t.feed(in);
  EXPECT_EQ(collect(in, r.out), in);
  EXPECT_FALSE(t.idle());
  EXPECT_TRUE(t.awaiting_ready());
  t.feed(ready('I'));
  EXPECT_TRUE(t.idle());
}

TEST(ResponseTracker, CloseComplete) {
  ResponseTracker t;
  t.expect(Expect::Close);
  t.expect(Expect::Sync);
  const std::string in = kCloseComplete + ready('I');
  const FeedResult r = t.feed(in);
  EXPECT_EQ(collect(in, r.out), in);
  EXPECT_TRUE(t.idle());
}

// ---------------------------------------------------------------- injected and synthetic answers

TEST(ResponseTracker, SwallowParseDropsOnlyTheInjectedParseComplete) {
  ResponseTracker t;
  for (Expect e : {Expect::SwallowParse, Expect::Bind, Expect::Execute, Expect::Sync}) t.expect(e);
  const std::string in = kParseComplete + kBindComplete + command_complete("DELETE 1") + ready('I');
  const FeedResult r = t.feed(in);
  EXPECT_EQ(r.consumed, in.size());
  ASSERT_EQ(r.out.size(), 1u);
  EXPECT_EQ(r.out[0].offset, kParseComplete.size());
  EXPECT_EQ(r.out[0].length, in.size() - kParseComplete.size());
  EXPECT_EQ(collect(in, r.out), in.substr(kParseComplete.size()));
  EXPECT_TRUE(t.idle());
}

TEST(ResponseTracker, SwallowParseThenRealParse) {
  ResponseTracker t;
  for (Expect e : {Expect::SwallowParse, Expect::Parse, Expect::Sync}) t.expect(e);
  const std::string in = kParseComplete + kParseComplete + ready('I');
  const FeedResult r = t.feed(in);
  EXPECT_EQ(collect(in, r.out), kParseComplete + ready('I'));
  EXPECT_TRUE(t.idle());
}

TEST(ResponseTracker, EmitParseCompleteAtTheHead) {
  ResponseTracker t;
  for (Expect e : {Expect::EmitParseComplete, Expect::Bind, Expect::Execute, Expect::Sync})
    t.expect(e);
  std::vector<Segment> out;
  t.emit_ready(out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].synthetic, kParseComplete);
  EXPECT_EQ(out[0].length, 0u);
  // Emitted once only.
  std::vector<Segment> again;
  t.emit_ready(again);
  EXPECT_TRUE(again.empty());

  const std::string in = kBindComplete + command_complete("SELECT 0") + ready('I');
  const FeedResult r = t.feed(in);
  EXPECT_EQ(collect(in, r.out), in);
  EXPECT_TRUE(t.idle());
}

TEST(ResponseTracker, EmitReadyStopsAtTheFirstRealExpectation) {
  ResponseTracker t;
  for (Expect e : {Expect::EmitCloseComplete, Expect::EmitParseComplete, Expect::Sync,
                   Expect::EmitParseComplete})
    t.expect(e);
  std::vector<Segment> out;
  t.emit_ready(out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].synthetic, kCloseComplete);
  EXPECT_EQ(out[1].synthetic, kParseComplete);
  EXPECT_FALSE(t.idle());
  // The last one follows the ReadyForQuery.
  const std::string in = ready('I');
  const FeedResult r = t.feed(in);
  ASSERT_EQ(r.out.size(), 2u);
  EXPECT_EQ(collect(in, r.out), in + kParseComplete);
  EXPECT_TRUE(t.idle());
}

TEST(ResponseTracker, EmitParseCompleteAfterBindFollowsTheBindComplete) {
  // Client: Parse s1, Bind, Parse s2 (already prepared here), Bind, Execute, Sync.
  ResponseTracker t;
  for (Expect e : {Expect::Parse, Expect::Bind, Expect::EmitParseComplete, Expect::Bind,
                   Expect::Execute, Expect::Sync})
    t.expect(e);
  std::vector<Segment> head;
  t.emit_ready(head);
  EXPECT_TRUE(head.empty());

  const std::string first = kParseComplete + kBindComplete;
  const std::string second = kBindComplete + command_complete("SELECT 1") + ready('I');
  const std::string in = first + second;
  const FeedResult r = t.feed(in);
  EXPECT_EQ(r.consumed, in.size());
  ASSERT_EQ(r.out.size(), 3u);
  EXPECT_EQ(r.out[0].offset, 0u);
  EXPECT_EQ(r.out[0].length, first.size());
  EXPECT_EQ(r.out[1].synthetic, kParseComplete);
  EXPECT_EQ(r.out[2].offset, first.size());
  EXPECT_EQ(r.out[2].length, second.size());
  EXPECT_EQ(collect(in, r.out), first + kParseComplete + second);
  EXPECT_TRUE(t.idle());
}

TEST(ResponseTracker, ErrorInExtendedBatchSkipsToSync) {
  ResponseTracker t;
  for (Expect e : {Expect::Parse, Expect::Bind, Expect::EmitParseComplete, Expect::Bind,
                   Expect::Describe, Expect::Execute, Expect::EmitCloseComplete, Expect::Sync})
    t.expect(e);
  // The first Bind fails: the server ignores everything up to Sync.
  const std::string in = kParseComplete + error("bind failed") + ready('E');
  const FeedResult r = t.feed(in);
  EXPECT_EQ(r.consumed, in.size());
  ASSERT_EQ(r.out.size(), 1u);  // no synthetic answers for skipped messages
  EXPECT_EQ(collect(in, r.out), in);
  EXPECT_TRUE(t.error_seen());
  EXPECT_TRUE(t.idle());
  EXPECT_EQ(t.transaction_status(), 'E');
  EXPECT_EQ(t.ready_count(), 1u);
}

TEST(ResponseTracker, ErrorSkipsOnlyToTheFirstSync) {
  ResponseTracker t;
  for (Expect e :
       {Expect::Parse, Expect::Execute, Expect::Sync, Expect::Parse, Expect::Bind, Expect::Sync})
    t.expect(e);
  const std::string first = error("parse failed") + ready('I');
  t.feed(first);
  EXPECT_FALSE(t.idle());
  EXPECT_TRUE(t.awaiting_ready());
  const std::string second = kParseComplete + kBindComplete + ready('I');
  const FeedResult r = t.feed(second);
  EXPECT_EQ(collect(second, r.out), second);
  EXPECT_TRUE(t.idle());
  EXPECT_EQ(t.ready_count(), 2u);
}

TEST(ResponseTracker, SwallowQueryDropsEverythingUpToItsReadyForQuery) {
  ResponseTracker t;
  t.expect(Expect::Query);
  t.feed(command_complete("BEGIN") + ready('T'));
  ASSERT_EQ(t.transaction_status(), 'T');
  ASSERT_EQ(t.last_command_tag(), "BEGIN");

  t.expect(Expect::SwallowQuery);
  t.expect(Expect::Query);
  EXPECT_TRUE(t.awaiting_ready());
  const std::string injected = pg::parameter_status("TimeZone", "UTC") + command_complete("SET") +
                               msg('N', "SWARNING\0Mx\0\0"sv) + error("bad setting") + ready('I');
  const std::string answer =
      row_description() + data_row("1") + command_complete("SELECT 1") + ready('T');
  const std::string in = injected + answer;
  const FeedResult r = t.feed(in);
  EXPECT_EQ(r.consumed, in.size());
  ASSERT_EQ(r.out.size(), 1u);
  EXPECT_EQ(r.out[0].offset, injected.size());
  EXPECT_EQ(collect(in, r.out), answer);
  EXPECT_EQ(t.transaction_status(), 'T');
  EXPECT_EQ(t.last_command_tag(), "SELECT 1");
  EXPECT_FALSE(t.error_seen());
  EXPECT_EQ(t.ready_count(), 2u);  // the injected query's ReadyForQuery is not counted
  EXPECT_TRUE(t.idle());
}

TEST(ResponseTracker, SwallowedReadyForQueryDoesNotChangeStatus) {
  ResponseTracker t;
  t.expect(Expect::SwallowQuery);
  const std::string in = command_complete("SET") + ready('T');
  const FeedResult r = t.feed(in);
  EXPECT_EQ(r.consumed, in.size());
  EXPECT_TRUE(r.out.empty());
  EXPECT_EQ(t.transaction_status(), 'I');
  EXPECT_EQ(t.last_command_tag(), "");
  EXPECT_TRUE(t.idle());
  EXPECT_FALSE(t.awaiting_ready());
}

// ---------------------------------------------------------------- partial input

TEST(ResponseTracker, DataRowSplitAtEveryBoundary) {
  const std::string in = row_description() + data_row(std::string(40, 'v')) +
                         command_complete("SELECT 1") + ready('T');
  for (std::size_t k = 0; k <= in.size(); ++k) {
    ResponseTracker t;
    t.expect(Expect::Query);
    const Relay run = feed_chunks(t, {in.substr(0, k), in.substr(k)});
    EXPECT_EQ(run.consumed, in.size()) << "split at " << k;
    EXPECT_EQ(run.relayed, in) << "split at " << k;
    EXPECT_TRUE(run.left.empty()) << "split at " << k;
    EXPECT_TRUE(t.idle()) << "split at " << k;
    EXPECT_EQ(t.transaction_status(), 'T') << "split at " << k;
    EXPECT_EQ(t.last_command_tag(), "SELECT 1") << "split at " << k;
  }
}

TEST(ResponseTracker, SwallowedAndRelayedStreamSplitAtEveryBoundary) {
  const std::string injected = row_description() + data_row(std::string(30, 's')) +
                               command_complete("SELECT 1") + ready('I');
  const std::string answer = kParseComplete + kBindComplete + data_row(std::string(25, 'r')) +
                             command_complete("SELECT 1") + ready('T');
  const std::string in = injected + answer;
  for (std::size_t k = 0; k <= in.size(); ++k) {
    ResponseTracker t;
    for (Expect e : {Expect::SwallowQuery, Expect::SwallowParse, Expect::Bind,
                     Expect::EmitParseComplete, Expect::Execute, Expect::Sync})
      t.expect(e);
    const Relay run = feed_chunks(t, {in.substr(0, k), in.substr(k)});
    EXPECT_EQ(run.consumed, in.size()) << "split at " << k;
    EXPECT_EQ(run.relayed, answer.substr(kParseComplete.size(), kBindComplete.size()) +
                               kParseComplete + answer.substr(2 * kParseComplete.size()))
        << "split at " << k;
    EXPECT_TRUE(t.idle()) << "split at " << k;
    EXPECT_EQ(t.transaction_status(), 'T') << "split at " << k;
  }
}

TEST(ResponseTracker, SyntheticAnswerAfterSplitRowDescriptionFollowsTheWholeMessage) {
  // Client: Parse, Describe S, Close S (closed only on the client side), Sync.
  // A synthetic CloseComplete must come after the whole RowDescription, even
  // when the RowDescription arrives in two reads.
  std::string columns = "\0\x03"s;
  for (const char* name : {"id", "name", "created_at"})
    columns += std::string(name) + '\0' + std::string(18, '\0');
  const std::string description = msg('T', columns);
  const std::string in = kParseComplete + description + ready('I');
  const std::string expected = kParseComplete + description + kCloseComplete + ready('I');
  std::vector<std::size_t> corrupted;  // split points where the relayed stream is wrong
  for (std::size_t k = 0; k <= in.size(); ++k) {
    ResponseTracker t;
    for (Expect e : {Expect::Parse, Expect::Describe, Expect::EmitCloseComplete, Expect::Sync})
      t.expect(e);
    const Relay run = feed_chunks(t, {in.substr(0, k), in.substr(k)});
    EXPECT_EQ(run.consumed, in.size()) << "split at " << k;
    EXPECT_TRUE(t.idle()) << "split at " << k;
    if (run.relayed != expected) corrupted.push_back(k);
  }
  EXPECT_TRUE(corrupted.empty()) << corrupted.size() << " split points, from " << corrupted.front()
                                 << " to " << corrupted.back()
                                 << ", put the CloseComplete inside the RowDescription";
}

TEST(ResponseTracker, OneByteAtATime) {
  const std::string in = kParseComplete + kBindComplete + row_description() + data_row("xyz") +
                         data_row("") + command_complete("SELECT 2") + ready('E');
  ResponseTracker t;
  for (Expect e : {Expect::Parse, Expect::Bind, Expect::Describe, Expect::Execute, Expect::Sync})
    t.expect(e);
  std::vector<std::string> chunks;
  for (char c : in) chunks.emplace_back(1, c);
  const Relay run = feed_chunks(t, chunks);
  EXPECT_EQ(run.consumed, in.size());
  EXPECT_EQ(run.relayed, in);
  EXPECT_TRUE(t.idle());
  EXPECT_EQ(t.transaction_status(), 'E');
}

TEST(ResponseTracker, LargeDataRowIsStreamedNotBuffered) {
  ResponseTracker t;
  t.expect(Expect::Query);
  const std::string row = data_row(std::string(1000, 'x'));
  const std::string part = row_description() + row.substr(0, 100);
  const FeedResult r = t.feed(part);
  EXPECT_EQ(r.consumed, part.size());
  EXPECT_EQ(collect(part, r.out), part);
  const std::string rest = row.substr(100) + command_complete("SELECT 1") + ready('I');
  const FeedResult r2 = t.feed(rest);
  EXPECT_EQ(r2.consumed, rest.size());
  EXPECT_EQ(collect(rest, r2.out), rest);
  EXPECT_TRUE(t.idle());
}

TEST(ResponseTracker, ReadyForQuerySplitIsNotConsumedUntilWhole) {
  const std::string cc = command_complete("SELECT 1");
  const std::string z = ready('T');
  for (std::size_t k = 0; k < z.size(); ++k) {
    ResponseTracker t;
    t.expect(Expect::Query);
    const std::string first = cc + z.substr(0, k);
    const FeedResult r = t.feed(first);
    EXPECT_EQ(r.consumed, cc.size()) << "split at " << k;
    EXPECT_EQ(collect(first, r.out), cc) << "split at " << k;
    EXPECT_TRUE(t.awaiting_ready()) << "split at " << k;
    EXPECT_EQ(t.transaction_status(), 'I') << "split at " << k;
    const FeedResult r2 = t.feed(z);
    EXPECT_EQ(r2.consumed, z.size()) << "split at " << k;
    EXPECT_EQ(collect(z, r2.out), z) << "split at " << k;
    EXPECT_FALSE(t.awaiting_ready()) << "split at " << k;
    EXPECT_EQ(t.transaction_status(), 'T') << "split at " << k;
  }
}

TEST(ResponseTracker, CommandCompleteSplitIsNotConsumedUntilWhole) {
  ResponseTracker t;
  t.expect(Expect::Query);
  const std::string cc = command_complete("INSERT 0 5");
  const FeedResult r = t.feed(cc.substr(0, cc.size() - 1));
  EXPECT_EQ(r.consumed, 0u);
  EXPECT_TRUE(r.out.empty());
  EXPECT_EQ(t.last_command_tag(), "");
  const FeedResult r2 = t.feed(cc);
  EXPECT_EQ(r2.consumed, cc.size());
  EXPECT_EQ(t.last_command_tag(), "INSERT 0 5");
}

TEST(ResponseTracker, ParseCompleteOfSwallowedParseSplit) {
  ResponseTracker t;
  t.expect(Expect::SwallowParse);
  t.expect(Expect::Sync);
  const Relay run =
      feed_chunks(t, {kParseComplete.substr(0, 3), kParseComplete.substr(3), ready('I')});
  EXPECT_EQ(run.relayed, ready('I'));
  EXPECT_TRUE(t.idle());
}

// ---------------------------------------------------------------- copy and errors

TEST(ResponseTracker, CopyInResponseSetsCopyIn) {
  ResponseTracker t;
  t.expect(Expect::Query);
  const std::string copy_in = msg('G', "\0\0\x01\0\0"sv);
  const std::string after = command_complete("COPY 3") + ready('I');
  const std::string in = copy_in + after;
  const FeedResult r = t.feed(in);
  EXPECT_TRUE(r.copy_in);
  EXPECT_FALSE(r.protocol_error);
  // The caller must switch to relaying client data: nothing after it is consumed.
  EXPECT_EQ(r.consumed, copy_in.size());
  EXPECT_EQ(collect(in, r.out), copy_in);
  EXPECT_TRUE(t.awaiting_ready());

  const FeedResult r2 = t.feed(after);
  EXPECT_FALSE(r2.copy_in);
  EXPECT_EQ(r2.consumed, after.size());
  EXPECT_EQ(t.last_command_tag(), "COPY 3");
  EXPECT_TRUE(t.idle());
}

TEST(ResponseTracker, CopyOutIsRelayed) {
  ResponseTracker t;
  t.expect(Expect::Query);
  const std::string in = msg('H', "\0\0\x01\0\0"sv) + msg('d', "1\n") + msg('d', "2\n") + msg('c') +
                         command_complete("COPY 2") + ready('I');
  const FeedResult r = t.feed(in);
  EXPECT_FALSE(r.copy_in);
  EXPECT_EQ(r.consumed, in.size());
  EXPECT_EQ(collect(in, r.out), in);
  EXPECT_TRUE(t.idle());
}

TEST(ResponseTracker, LengthUnderFourIsAProtocolError) {
  for (std::uint32_t len : {0u, 3u}) {
    ResponseTracker t;
    t.expect(Expect::Query);
    const std::string good = row_description();
    const std::string in = good + "D"s + be32(len) + "garbage";
    const FeedResult r = t.feed(in);
    EXPECT_TRUE(r.protocol_error) << len;
    EXPECT_EQ(r.consumed, good.size()) << len;
    EXPECT_EQ(collect(in, r.out), good) << len;
  }
}

TEST(ResponseTracker, ResetForgetsTheQueue) {
  ResponseTracker t;
  t.expect(Expect::Query);
  t.feed(error("boom") + ready('E'));
  t.expect(Expect::Sync);
  ASSERT_TRUE(t.error_seen());
  ASSERT_EQ(t.transaction_status(), 'E');
  t.reset();
  EXPECT_TRUE(t.idle());
  EXPECT_FALSE(t.awaiting_ready());
  EXPECT_FALSE(t.error_seen());
  EXPECT_EQ(t.transaction_status(), 'I');
}

}  // namespace
}  // namespace shardgate::session
