// The MariaDB probe's pure half: reading GTID lists into positions, and a
// probe row into role and positions. A misread here would pick the wrong
// failover candidate or route reads to a lagging replica, so every odd input
// must be refused rather than guessed.
#include "replication/mysql_monitor.h"

#include <gtest/gtest.h>

#include <string>

namespace shardgate::replication {
namespace {

using Clock = std::chrono::steady_clock;

std::optional<uint64_t> seq(std::string_view list, uint32_t domain = 0) {
  auto parsed = parse_gtid_seq(list, domain);
  EXPECT_TRUE(parsed) << "'" << list << "': " << (parsed ? "" : parsed.error().message());
  return parsed ? *parsed : std::nullopt;
}

TEST(ParseGtidSeq, ReadsTheDomainsSeqNo) {
  EXPECT_EQ(seq("0-1-42"), 42u);
  EXPECT_EQ(seq("0-1-42,1-2-7"), 42u);
  EXPECT_EQ(seq("0-1-42,1-2-7", 1), 7u);
  EXPECT_EQ(seq("1-2-7,0-1-42"), 42u);
  EXPECT_EQ(seq("0-4294967295-18446744073709551615"), UINT64_MAX);
  EXPECT_EQ(seq("4294967295-1-3", 4294967295u), 3u);
}

TEST(ParseGtidSeq, NoGtidOfTheDomainIsNullopt) {
  EXPECT_EQ(seq(""), std::nullopt);
  EXPECT_EQ(seq(" \n"), std::nullopt);
  EXPECT_EQ(seq("1-2-7"), std::nullopt);
  EXPECT_EQ(seq("0-1-42", 2), std::nullopt);
}

TEST(ParseGtidSeq, ZeroIsAPositionNotAbsence) {
  EXPECT_EQ(seq("0-1-0"), 0u);
}

TEST(ParseGtidSeq, RepeatedDomainTakesTheHighest) {
  // gtid_binlog_state-style lists hold one GTID per (domain, server_id).
  EXPECT_EQ(seq("0-1-40,0-2-45,0-3-44"), 45u);
}

TEST(ParseGtidSeq, AcceptsBlanksAroundCommas) {
  EXPECT_EQ(seq("0-1-42,\n1-2-7"), 42u);
  EXPECT_EQ(seq(" 1-2-7 , 0-1-42 "), 42u);
}

TEST(ParseGtidSeq, RefusesGarbage) {
  for (const char* bad : {"x",
                          "0",
                          "0-1",
                          "0-1-",
                          "-1-2",
                          "0--2",
                          "0-1-2-3",
                          "0-1-2,",
                          ",0-1-2",
                          "0-1-2,,1-2-3",
                          "0-1-+2",
                          "+0-1-2",
                          "0-1--2",
                          "0-1-2 3",
                          "0 -1-2",
                          "0-1-2;1-2-3",
                          "0x1-1-2",
                          "0-1-2.5",
                          "4294967296-1-2",
                          "0-4294967296-2",
                          "0-1-18446744073709551616",
                          "0-1-42,garbage"}) {
    auto parsed = parse_gtid_seq(bad, 0);
    EXPECT_FALSE(parsed) << "'" << bad << "' parsed as " << (parsed && *parsed ? **parsed : 0);
  }
}

TEST(ParseGtidSeq, RefusesEmbeddedNul) {
  EXPECT_FALSE(parse_gtid_seq(std::string_view("0-1-4\0", 6), 0));
}

TEST(ParseGtidSeq, ErrorNamesTheInput) {
  auto parsed = parse_gtid_seq("0-1-x", 0);
  ASSERT_FALSE(parsed);
  EXPECT_NE(parsed.error().message().find("'0-1-x'"), std::string::npos)
      << parsed.error().message();
}

MySqlProbeRow row(std::string read_only, std::string current,
                  std::vector<MySqlProbeRow::Replication> replication = {}) {
  MySqlProbeRow r;
  r.read_only = std::move(read_only);
  r.log_bin = "1";
  r.gtid_current_pos = std::move(current);
  r.replication = std::move(replication);
  return r;
}

ProbeOutcome interpret(const MySqlProbeRow& r) {
  auto outcome = interpret_mysql_probe(r);
  EXPECT_TRUE(outcome) << (outcome ? "" : outcome.error().message());
  return outcome ? *outcome : ProbeOutcome{};
}

TEST(InterpretMySqlProbe, WritableAndNotReplicatingIsPrimary) {
  auto o = interpret(row("0", "0-1-42"));
  EXPECT_TRUE(o.ok);
  EXPECT_EQ(o.role, ObservedRole::Primary);
  EXPECT_EQ(o.lsn, 42u);
  EXPECT_EQ(o.receive_lsn, std::nullopt);
}

TEST(InterpretMySqlProbe, ReadOnlyReplicaReportsAppliedAndReceived) {
  auto o = interpret(row("1", "0-1-40", {{"Yes", "Yes", "0-1-45"}}));
  EXPECT_EQ(o.role, ObservedRole::Replica);
  EXPECT_EQ(o.lsn, 40u);
  EXPECT_EQ(o.receive_lsn, 45u);
}

TEST(InterpretMySqlProbe, ReplicatingCountsEvenWhenWritable) {
  // A replica someone left writable, and one whose primary died (the IO
  // thread keeps reconnecting): both still follow a primary.
  EXPECT_EQ(interpret(row("0", "0-1-40", {{"Yes", "Yes", "0-1-40"}})).role, ObservedRole::Replica);
  EXPECT_EQ(interpret(row("0", "0-1-40", {{"Connecting", "Yes", "0-1-40"}})).role,
            ObservedRole::Replica);
  EXPECT_EQ(interpret(row("0", "0-1-40", {{"Preparing", "No", ""}})).role, ObservedRole::Replica);
  EXPECT_EQ(interpret(row("0", "0-1-40", {{"No", "Yes", ""}})).role, ObservedRole::Replica);
}

TEST(InterpretMySqlProbe, OnlyARunningIoThreadHoldsTheUpstream) {
  // Failover believes a primary dead only when its replicas lost it too.
  EXPECT_TRUE(interpret(row("1", "0-1-40", {{"Yes", "Yes", "0-1-40"}})).upstream_connected);
  EXPECT_FALSE(interpret(row("1", "0-1-40", {{"Connecting", "Yes", "0-1-40"}})).upstream_connected);
  EXPECT_FALSE(interpret(row("1", "0-1-40", {{"No", "No", "0-1-40"}})).upstream_connected);
  EXPECT_FALSE(interpret(row("1", "0-1-40")).upstream_connected);
  EXPECT_FALSE(interpret(row("0", "0-1-40")).upstream_connected) << "a primary has no upstream";
}

TEST(InterpretMySqlProbe, AnyReplicationRowCountsAsConfigured) {
  // A read-only server without one is a primary that restarted read-only.
  EXPECT_TRUE(interpret(row("1", "0-1-40", {{"No", "No", "0-1-40"}})).replication_configured);
  EXPECT_TRUE(interpret(row("1", "0-1-40", {{"Yes", "Yes", "0-1-40"}})).replication_configured);
  EXPECT_FALSE(interpret(row("1", "0-1-40")).replication_configured);
  EXPECT_FALSE(interpret(row("0", "0-1-40")).replication_configured);
}

TEST(InterpretMySqlProbe, StoppedReplicationAndWritableIsPrimary) {
  // A promoted replica whose old connection was stopped but not reset.
  auto o = interpret(row("0", "0-1-40", {{"No", "No", "0-1-40"}}));
  EXPECT_EQ(o.role, ObservedRole::Primary);
  EXPECT_EQ(o.lsn, 40u);
}

TEST(InterpretMySqlProbe, ReadOnlyNotReplicatingIsReplicaWithItsOwnPosition) {
  // A fenced old primary: read-only, nothing to replicate from.
  auto o = interpret(row("1", "0-1-77"));
  EXPECT_EQ(o.role, ObservedRole::Replica);
  EXPECT_EQ(o.lsn, 77u);
  EXPECT_EQ(o.receive_lsn, 77u);
}

TEST(InterpretMySqlProbe, UnknownReadOnlyValueIsNeverPrimary) {
  EXPECT_EQ(interpret(row("ON", "0-1-1")).role, ObservedRole::Replica);
  EXPECT_EQ(interpret(row("NO_LOCK", "0-1-1")).role, ObservedRole::Replica);
  EXPECT_EQ(interpret(row("OFF", "0-1-1")).role, ObservedRole::Primary);
}

TEST(InterpretMySqlProbe, ReceivedIsAtLeastApplied) {
  // Not replicating by GTID: Gtid_IO_Pos stays empty.
  auto o = interpret(row("1", "0-1-40", {{"Yes", "Yes", ""}}));
  EXPECT_EQ(o.receive_lsn, 40u);
  // Several connections: the furthest.
  o = interpret(row("1", "0-1-40", {{"Yes", "Yes", "0-1-41"}, {"Yes", "Yes", "1-2-9,0-1-43"}}));
  EXPECT_EQ(o.receive_lsn, 43u);
}

TEST(InterpretMySqlProbe, NoTransactionYetIsPositionZero) {
  EXPECT_EQ(interpret(row("0", "")).lsn, 0u);
  EXPECT_EQ(interpret(row("1", "1-2-7", {{"Yes", "Yes", ""}})).lsn, 0u);
}

TEST(InterpretMySqlProbe, PrimaryWithoutBinlogHasNoPosition) {
  auto r = row("0", "0-1-40");
  r.log_bin = "0";
  auto o = interpret(r);
  EXPECT_EQ(o.role, ObservedRole::Primary);
  EXPECT_EQ(o.lsn, std::nullopt);
}

TEST(InterpretMySqlProbe, RefusesUnreadableRows) {
  auto r = row("0", "0-1-x");
  EXPECT_FALSE(interpret_mysql_probe(r));
  r = row("1", "0-1-4", {{"Yes", "Yes", "garbage"}});
  EXPECT_FALSE(interpret_mysql_probe(r));
  r = row("0", "0-1-4");
  r.read_only.reset();
  EXPECT_FALSE(interpret_mysql_probe(r));
  r = row("0", "0-1-4");
  r.log_bin = "maybe";
  EXPECT_FALSE(interpret_mysql_probe(r));
  r = row("0", "0-1-4");
  r.gtid_current_pos.reset();
  EXPECT_FALSE(interpret_mysql_probe(r));
}

TEST(InterpretMySqlProbe, LagIsTransactionsBehind) {
  std::vector<ProbeTarget> t = {{"p", "h", 1, "", 0, true}, {"r", "h", 2, "", 0, false}};
  HealthSnapshot s0;
  s0.backends.resize(2);
  auto primary = interpret(row("0", "0-1-250"));
  auto replica = interpret(row("1", "0-1-206", {{"Yes", "No", "0-1-250"}}));
  auto s = next_snapshot(s0, t, {primary, replica}, 3, Clock::now());
  EXPECT_EQ(s.backends[1].lag_bytes, 44u);
  EXPECT_EQ(s.backends[1].receive_lsn, 250u);
}

TEST(MySqlMonitor, UnreachableServerGoesDown) {
  // No server on port 1: refused at once, each round; down after 2.
  MySqlMonitor m({{"x", "127.0.0.1", 1, "", 0, true}},
                 MonitorOptions{.user = "monitor",
                                .password = "",
                                .database = "",
                                .interval = std::chrono::milliseconds(20),
                                .connect_timeout = std::chrono::milliseconds(1000),
                                .failures_before_down = 2});
  EXPECT_TRUE(m.snapshot()->backends[0].up);
  m.start();
  auto s =
      m.wait_for_round_after(Clock::now() + std::chrono::milliseconds(30), std::chrono::seconds(2));
  EXPECT_FALSE(s->backends[0].up);
  EXPECT_NE(s->backends[0].last_error.find("ERROR 2002"), std::string::npos)
      << s->backends[0].last_error;
  m.stop();
}

}  // namespace
}  // namespace shardgate::replication
