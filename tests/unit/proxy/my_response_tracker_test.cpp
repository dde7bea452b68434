// MyResponseTracker: where a MySQL server's answer ends, what is relayed and
// what is swallowed, fed whole and byte by byte.
#include "proxy/session/my_response_tracker.h"

#include <gtest/gtest.h>

#include "proxy/protocol/mysql/messages.h"

namespace shardgate::session {
namespace {

using namespace shardgate::mysql;

std::string ok_packet(std::uint8_t seq, std::uint16_t status, std::uint64_t insert_id = 0) {
  OkPacket ok;
  ok.status_flags = status;
  ok.last_insert_id = insert_id;
  return packetize(build_ok(ok, kClientProtocol41), seq);
}

// A one-column text result set with `rows` rows, ending with `status`.
std::string result_set(std::size_t rows, std::uint16_t status) {
  std::string out;
  std::uint8_t seq = 1;
  std::string count;
  put_lenenc_int(count, 1);
  append_packets(out, count, seq);
  ColumnDefinition c;
  c.name = "v";
  c.type = kTypeVarString;
  append_packets(out, build_column_definition(c), seq);
  append_packets(out, build_eof({0, status}, kClientProtocol41), seq);
  for (std::size_t i = 0; i < rows; ++i) {
    std::optional<std::string_view> cell = "x";
    append_packets(out, build_text_row(std::span(&cell, 1)), seq);
  }
  append_packets(out, build_eof({0, status}, kClientProtocol41), seq);
  return out;
}

TEST(MyResponseTracker, OkEndsTheAnswerAndCarriesStatus) {
  MyResponseTracker t;
  t.reset(kClientProtocol41);
  t.expect(MyAnswer::Query, false);
  const std::string bytes = ok_packet(1, kServerStatusInTrans, 42);
  auto fed = t.feed(bytes);
  EXPECT_TRUE(t.idle());
  EXPECT_EQ(fed.consumed, bytes.size());
  ASSERT_EQ(fed.relay.size(), 1u);
  EXPECT_EQ(fed.relay[0].length, bytes.size());
  EXPECT_TRUE(t.in_transaction());
  EXPECT_EQ(t.last_insert_id(), 42u);
}

// The write journal keeps a commit under the GTID its OK reports, before
// the OK is relayed; a swallowed OK's GTID is not the client's commit.
TEST(MyResponseTracker, RelayedOkGivesTheCommitGtidOnce) {
  const std::uint32_t caps = kClientProtocol41 | kClientSessionTrack;
  OkPacket ok;
  ok.status_flags = kServerStatusAutocommit | kServerSessionStateChanged;
  ok.session_state.push_back({kSessionTrackSystemVariables, "last_gtid", "0-100-7"});
  const std::string bytes = packetize(build_ok(ok, caps), 1);
  MyResponseTracker t;
  t.reset(caps);
  t.expect(MyAnswer::Query, true);
  t.feed(bytes);
  EXPECT_FALSE(t.take_gtid()) << "a swallowed answer's GTID";
  t.expect(MyAnswer::Query, false);
  t.feed(bytes);
  EXPECT_EQ(t.take_gtid(), std::optional<std::string>("0-100-7"));
  EXPECT_FALSE(t.take_gtid()) << "taken twice";
  t.expect(MyAnswer::Query, false);
  t.feed(ok_packet(1, kServerStatusAutocommit));
  EXPECT_FALSE(t.take_gtid()) << "an OK without one";
}

TEST(MyResponseTracker, ResultSetByteByByte) {
  MyResponseTracker t;
  t.reset(kClientProtocol41);
  t.expect(MyAnswer::Query, false);
  const std::string bytes = result_set(3, kServerStatusAutocommit);
  std::string buf;
  std::size_t relayed = 0;
  for (char c : bytes) {
    buf.push_back(c);
    auto fed = t.feed(buf);
    ASSERT_FALSE(fed.protocol_error) << fed.error;
    for (const auto& s : fed.relay) relayed += s.length;
    buf.erase(0, fed.consumed);
  }
  EXPECT_TRUE(t.idle());
  EXPECT_EQ(relayed, bytes.size());
  EXPECT_FALSE(t.in_transaction());
}

TEST(MyResponseTracker, MoreResultsKeepTheAnswerOpen) {
  MyResponseTracker t;
  t.reset(kClientProtocol41);
  t.expect(MyAnswer::Query, false);
  auto fed = t.feed(result_set(1, kServerMoreResultsExists));
  EXPECT_FALSE(t.idle());
  fed = t.feed(ok_packet(1, kServerStatusAutocommit));
  EXPECT_TRUE(t.idle());
}

TEST(MyResponseTracker, SwallowedAnswersAreNotRelayed) {
  MyResponseTracker t;
  t.reset(kClientProtocol41);
  t.expect(MyAnswer::Simple, true);  // COM_INIT_DB the proxy added
  t.expect(MyAnswer::Query, false);
  const std::string swallowed = ok_packet(1, kServerStatusAutocommit);
  const std::string relayed = result_set(2, kServerStatusAutocommit);
  auto fed = t.feed(swallowed + relayed);
  EXPECT_TRUE(t.idle());
  ASSERT_EQ(fed.relay.size(), 1u);
  EXPECT_EQ(fed.relay[0].offset, swallowed.size());
  EXPECT_EQ(fed.relay[0].length, relayed.size());
}

TEST(MyResponseTracker, SwallowedErrorIsReported) {
  MyResponseTracker t;
  t.reset(kClientProtocol41);
  t.expect(MyAnswer::Query, true);
  auto fed = t.feed(packetize(build_err(kErUnknownSystemVariable, "no such variable"), 1));
  EXPECT_TRUE(t.idle());
  EXPECT_TRUE(fed.relay.empty());
  EXPECT_EQ(t.take_swallowed_error(), "no such variable");
}

TEST(MyResponseTracker, PrepareAnswerWithParamsAndColumns) {
  MyResponseTracker t;
  t.reset(kClientProtocol41);
  t.expect(MyAnswer::Prepare, false);
  std::string bytes;
  std::uint8_t seq = 1;
  append_packets(bytes, build_stmt_prepare_ok({7, 1, 2, 0}), seq);
  ColumnDefinition c;
  c.name = "?";
  for (int i = 0; i < 2; ++i) append_packets(bytes, build_column_definition(c), seq);
  append_packets(bytes, build_eof({0, 0}, kClientProtocol41), seq);
  append_packets(bytes, build_column_definition(c), seq);
  append_packets(bytes, build_eof({0, 0}, kClientProtocol41), seq);
  auto fed = t.feed(bytes);
  EXPECT_TRUE(t.idle());
  ASSERT_TRUE(fed.prepare_ok_at.has_value());
  EXPECT_EQ(*fed.prepare_ok_at, kPacketHeaderSize);
  auto prepared = t.take_prepared();
  ASSERT_TRUE(prepared.has_value());
  EXPECT_EQ(prepared->statement_id, 7u);
  EXPECT_EQ(prepared->num_params, 2u);
}

TEST(MyResponseTracker, GarbageIsAProtocolError) {
  MyResponseTracker t;
  t.reset(kClientProtocol41);
  t.expect(MyAnswer::Simple, false);
  auto fed = t.feed(packetize(std::string("\x42garbage"), 1));
  EXPECT_TRUE(fed.protocol_error);
}

}  // namespace
}  // namespace shardgate::session
