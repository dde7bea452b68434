// When a shard fails over and to which replica: the rules of
// replication/failover_plan.h on hand-made snapshots.
#include "replication/failover_plan.h"

#include <gtest/gtest.h>

namespace shardgate::replication {
namespace {

// One shard: backend 0 primary, 1..n replicas.
router::Topology shard_of(int replicas) {
  router::Topology t;
  router::ShardInfo s;
  s.name = "s0";
  s.primary = 0;
  for (int i = 0; i <= replicas; ++i) {
    router::BackendInfo b;
    b.index = static_cast<std::uint32_t>(i);
    b.name = i == 0 ? "primary" : "replica" + std::to_string(i);
    b.role = i == 0 ? router::MemberRole::Primary : router::MemberRole::Replica;
    if (i > 0) s.replicas.push_back(b.index);
    t.backends.push_back(b);
  }
  t.shards.push_back(s);
  return t;
}

BackendHealth replica(std::uint64_t replayed, std::uint64_t received, bool streaming) {
  BackendHealth h;
  h.role = ObservedRole::Replica;
  h.lsn = replayed;
  h.receive_lsn = received;
  h.upstream_connected = streaming;
  return h;
}

BackendHealth dead_primary() {
  BackendHealth h;
  h.up = false;
  h.role = ObservedRole::Primary;
  h.consecutive_failures = 3;
  h.last_error = "connection refused";
  return h;
}

HealthSnapshot snapshot(std::vector<BackendHealth> backends) {
  HealthSnapshot s;
  s.generation = 10;
  s.backends = std::move(backends);
  return s;
}

TEST(FailoverPlan, AnsweringPrimaryIsHealthy) {
  BackendHealth primary;
  primary.role = ObservedRole::Primary;
  primary.consecutive_failures = 2;  // failing, but not down yet
  const auto a =
      assess_shard(shard_of(2), snapshot({primary, replica(5, 5, false), replica(5, 5, false)}), 0);
  EXPECT_EQ(a.verdict, Verdict::Healthy);
}

TEST(FailoverPlan, NeverOnASingleFailedProbe) {
  auto primary = dead_primary();
  primary.consecutive_failures = 1;  // failures_before_down: 1 marks it down at once
  const auto a = assess_shard(shard_of(1), snapshot({primary, replica(5, 5, false)}), 0);
  EXPECT_EQ(a.verdict, Verdict::Healthy);
}

TEST(FailoverPlan, DeadPrimaryConfirmedByReplicasFailsOverToTheMostAdvanced) {
  const auto a = assess_shard(shard_of(3),
                              snapshot({dead_primary(), replica(10, 12, false),
                                        replica(11, 20, false), replica(15, 15, false)}),
                              0);
  ASSERT_EQ(a.verdict, Verdict::Failover) << a.reason;
  EXPECT_EQ(a.candidate, 2u) << "received 20: the most WAL, even if replayed less";
}

TEST(FailoverPlan, AReplicaStillStreamingMeansAPartitionNotADeath) {
  const auto a = assess_shard(
      shard_of(2), snapshot({dead_primary(), replica(10, 10, false), replica(10, 10, true)}), 0);
  EXPECT_EQ(a.verdict, Verdict::Unconfirmed);
  EXPECT_NE(a.reason.find("replica2 still streams"), std::string::npos) << a.reason;
}

TEST(FailoverPlan, NoReachableReplicaMeansNoCandidate) {
  BackendHealth down = replica(10, 10, false);
  down.up = false;
  down.consecutive_failures = 3;
  BackendHealth failing_once = replica(10, 10, false);
  failing_once.consecutive_failures = 1;  // reached, but not in the last round
  const auto a = assess_shard(shard_of(2), snapshot({dead_primary(), down, failing_once}), 0);
  EXPECT_EQ(a.verdict, Verdict::NoCandidate) << a.reason;
}

TEST(FailoverPlan, FencedAndNonReplicasAreNeverCandidates) {
  auto t = shard_of(3);
  t.backends[1].fenced = true;
  BackendHealth writable = replica(50, 50, false);
  writable.role = ObservedRole::Primary;  // a second primary: never promote over it
  const auto a = assess_shard(
      t, snapshot({dead_primary(), replica(90, 90, false), writable, replica(40, 40, false)}), 0);
  ASSERT_EQ(a.verdict, Verdict::Failover);
  EXPECT_EQ(a.candidate, 3u);
}

TEST(FailoverPlan, TiesGoToTheHigherPriorityThenTheFirst) {
  auto t = shard_of(3);
  t.backends[3].priority = 5;
  auto h =
      snapshot({dead_primary(), replica(7, 7, false), replica(7, 7, false), replica(7, 7, false)});
  EXPECT_EQ(choose_candidate(t, h, 0), 3u);
  t.backends[3].priority = 0;
  EXPECT_EQ(choose_candidate(t, h, 0), 1u);
}

}  // namespace
}  // namespace shardgate::replication
