// RoutingState: the protocol-neutral routing memory of a session (write seen,
// read-your-writes barrier), driven with hand-made health views.
#include "proxy/session/routing_state.h"

#include <gtest/gtest.h>

#include "proxy/proxy_context.h"
#include "router/classify.h"

namespace shardgate::session {
namespace {

using Clock = std::chrono::steady_clock;
using router::TargetRole;

router::Statement pg(std::string_view sql) {
  return router::analyze(sql, router::Dialect::Postgres, {});
}

HealthView health_at(Clock::time_point round_started, std::uint64_t primary_position) {
  HealthView h;
  h.round_started = round_started;
  h.primary_lsn = {primary_position};
  return h;
}

TEST(RoutingState, ReadsGoToReplicasUntilTheSessionWrites) {
  RoutingState rs;
  Metrics m;
  const auto t0 = Clock::now();
  const HealthView before = health_at(t0, 100);
  EXPECT_EQ(rs.decide(pg("SELECT 1"), {}, before, m), TargetRole::Replica);
  rs.round_done(true, t0);
  EXPECT_EQ(rs.replica_min_position(), std::nullopt);

  EXPECT_EQ(rs.decide(pg("INSERT INTO t VALUES (1)"), {}, before, m), TargetRole::Primary);
  rs.round_done(true, t0 + std::chrono::milliseconds(1));
  // No monitor round after the write yet: reads stay on the primary.
  EXPECT_EQ(rs.decide(pg("SELECT 1"), {}, before, m), TargetRole::Primary);
  EXPECT_EQ(m.read_your_writes_primary_total.load(), 1u);
  rs.round_done(true, t0 + std::chrono::milliseconds(2));
  // A round that started after the write sets the barrier; replicas serve again
  // (the balancer then keeps only those past position 250).
  const HealthView after = health_at(t0 + std::chrono::milliseconds(5), 250);
  EXPECT_EQ(rs.decide(pg("SELECT 1"), {}, after, m), TargetRole::Replica);
  EXPECT_EQ(rs.replica_min_position(), 250u);
}

// MySQL reports the commit's GTID: the barrier is that commit at once (no
// wait for a monitor round), and a replica may be asked to wait for it. A
// GTID seen while the transaction stays open is not a commit's.
TEST(RoutingState, ACommitsGtidIsTheBarrierAtOnce) {
  RoutingState rs;
  Metrics m;
  const auto t0 = Clock::now();
  const HealthView before = health_at(t0, 100);
  const router::Statement insert =
      router::analyze("INSERT INTO t VALUES (1)", router::Dialect::Mysql, {});
  EXPECT_EQ(rs.decide(insert, {}, before, m), TargetRole::Primary);
  rs.note_commit(0, 120, "0-1-120");
  rs.round_done(true, t0 + std::chrono::milliseconds(1));
  EXPECT_EQ(rs.decide(pg("SELECT 1"), {}, before, m), TargetRole::Replica)
      << "no monitor round needed";
  EXPECT_EQ(rs.replica_min_position(0), 120u);
  ASSERT_NE(rs.replica_min_gtid(0), nullptr);
  EXPECT_EQ(*rs.replica_min_gtid(0), "0-1-120");
  EXPECT_EQ(m.read_your_writes_primary_total.load(), 0u);
  rs.round_done(true, t0 + std::chrono::milliseconds(2));

  // Inside a transaction: the write holds reads on the primary as before.
  EXPECT_EQ(rs.decide(insert, {}, before, m), TargetRole::Primary);
  rs.note_commit(0, 130, "0-1-130");
  rs.round_done(true, t0 + std::chrono::milliseconds(3), /*transaction_open=*/true);
  EXPECT_EQ(rs.replica_min_gtid(0), nullptr);
  EXPECT_EQ(rs.decide(pg("SELECT 1"), {}, before, m), TargetRole::Primary);
  // Without read-your-writes nothing is kept.
  RoutingState off;
  EXPECT_EQ(off.decide(insert, {}, before, m), TargetRole::Primary);
  off.note_commit(0, 140, "0-1-140");
  off.round_done(false, t0);
  EXPECT_EQ(off.replica_min_gtid(0), nullptr);
  EXPECT_EQ(off.replica_min_position(0), std::nullopt);
}

TEST(RoutingState, ReadYourWritesOffLeavesNoBarrier) {
  RoutingState rs;
  Metrics m;
  const auto t0 = Clock::now();
  const HealthView h = health_at(t0, 7);
  EXPECT_EQ(rs.decide(pg("UPDATE t SET v = 1"), {}, h, m), TargetRole::Primary);
  rs.round_done(false, t0 + std::chrono::milliseconds(1));
  EXPECT_EQ(rs.decide(pg("SELECT 1"), {}, h, m), TargetRole::Replica);
  EXPECT_EQ(rs.replica_min_position(), std::nullopt);
}

TEST(RoutingState, NoteWriteCountsAsAWrite) {
  RoutingState rs;
  Metrics m;
  const auto t0 = Clock::now();
  const HealthView h = health_at(t0, 7);
  EXPECT_EQ(rs.decide(pg("SELECT 1"), {}, h, m), TargetRole::Replica);
  rs.note_write();  // e.g. a function call later in the same batch
  rs.round_done(true, t0 + std::chrono::milliseconds(1));
  EXPECT_EQ(rs.decide(pg("SELECT 1"), {}, h, m), TargetRole::Primary);
}

TEST(RoutingState, SessionFactsPinAndKeepReadsOnPrimary) {
  RoutingState rs;
  Metrics m;
  const HealthView h = health_at(Clock::now(), 1);
  SessionFacts in_txn_on_primary{true, false, false};
  EXPECT_EQ(rs.decide(pg("SELECT 1"), in_txn_on_primary, h, m), TargetRole::Primary);
  SessionFacts in_read_only_txn_on_replica{true, true, false};
  EXPECT_EQ(rs.decide(pg("SELECT 1"), in_read_only_txn_on_replica, h, m), TargetRole::Replica);
  SessionFacts reads_on_primary{false, false, true};
  EXPECT_EQ(rs.decide(pg("SELECT 1"), reads_on_primary, h, m), TargetRole::Primary);
}

TEST(RoutingState, EachShardHasItsOwnBarrier) {
  RoutingState rs;
  Metrics m;
  const auto t0 = Clock::now();
  HealthView before;
  before.round_started = t0;
  before.primary_lsn = {100, 9000};
  SessionFacts on_shard1;
  on_shard1.shard = 1;
  SessionFacts on_shard0;
  EXPECT_EQ(rs.decide(pg("INSERT INTO t VALUES (1)"), on_shard1, before, m), TargetRole::Primary);
  rs.round_done(true, t0 + std::chrono::milliseconds(1));
  // Shard 0 saw no write of this session: its replicas serve at once.
  EXPECT_EQ(rs.decide(pg("SELECT 1"), on_shard0, before, m), TargetRole::Replica);
  rs.round_done(true, t0 + std::chrono::milliseconds(2));
  EXPECT_EQ(rs.replica_min_position(0), std::nullopt);
  EXPECT_EQ(rs.decide(pg("SELECT 1"), on_shard1, before, m), TargetRole::Primary);
  rs.round_done(true, t0 + std::chrono::milliseconds(3));
  HealthView after = before;
  after.round_started = t0 + std::chrono::milliseconds(5);
  after.primary_lsn = {120, 9100};
  EXPECT_EQ(rs.decide(pg("SELECT 1"), on_shard1, after, m), TargetRole::Replica);
  EXPECT_EQ(rs.replica_min_position(1), 9100u);  // shard 1's primary, not shard 0's
  EXPECT_EQ(rs.replica_min_position(0), std::nullopt);
}

}  // namespace
}  // namespace shardgate::session
