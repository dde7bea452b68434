// Table tests of choose_backend: which backend of a shard serves a statement.
#include "proxy/backend/balancer.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace shardgate::backend {
namespace {

using router::MemberRole;
using router::TargetRole;

// Two shards. Shard 0: primary 0, replicas 1, 2, 3. Shard 1: primary 4, replica 5.
router::Topology two_shards() {
  router::Topology t;
  t.cluster = "main";
  auto add = [&](std::string name, MemberRole role, std::uint32_t shard) {
    router::BackendInfo b;
    b.index = static_cast<std::uint32_t>(t.backends.size());
    b.name = std::move(name);
    b.host = "10.0.0." + std::to_string(b.index + 1);
    b.port = 5432;
    b.role = role;
    b.shard = shard;
    t.backends.push_back(b);
  };
  add("s0-primary", MemberRole::Primary, 0);
  add("s0-r1", MemberRole::Replica, 0);
  add("s0-r2", MemberRole::Replica, 0);
  add("s0-r3", MemberRole::Replica, 0);
  add("s1-primary", MemberRole::Primary, 1);
  add("s1-r1", MemberRole::Replica, 1);
  t.shards.resize(2);
  t.shards[0].name = "s0";
  t.shards[0].primary = 0;
  t.shards[0].replicas = {1, 2, 3};
  t.shards[1].name = "s1";
  t.shards[1].primary = 4;
  t.shards[1].replicas = {5};
  return t;
}

const router::Topology kTopology = two_shards();

struct Row {
  const char* name;
  std::uint32_t shard = 0;
  TargetRole role = TargetRole::Replica;
  BalancePolicy policy = BalancePolicy::LeastOutstanding;
  std::vector<ReplicaState> state{};  // empty: nothing known
  std::vector<std::int64_t> outstanding{};
  std::uint64_t max_lag = 1000;
  std::optional<std::uint64_t> min_lsn{};
  std::vector<std::uint32_t> excluded{};
  std::uint64_t cursor = 0;
  // Expected:
  std::uint32_t backend = 0;
  bool fell_back = false;
};

ReplicaState up(std::uint64_t lag = 0, std::uint64_t lsn = 100) {
  return {true, lag, lsn};
}
ReplicaState down() {
  return {false, 0, 100};
}
ReplicaState unknown_lag(std::uint64_t lsn = 100) {
  return {true, std::nullopt, lsn};
}

BalanceChoice run(const Row& row, std::uint64_t& cursor) {
  BalanceInput in;
  in.topology = &kTopology;
  in.shard = row.shard;
  in.role = row.role;
  in.policy = row.policy;
  in.max_lag_bytes = row.max_lag;
  in.state = row.state;
  in.outstanding = row.outstanding;
  in.min_replay_lsn = row.min_lsn;
  in.excluded = row.excluded;
  return choose_backend(in, cursor);
}

TEST(ChooseBackend, Table) {
  const std::vector<ReplicaState> all_up = {up(), up(), up(), up(), up(), up()};
  const std::vector<Row> rows = {
      {.name = "primary role -> primary",
       .role = TargetRole::Primary,
       .state = all_up,
       .outstanding = {9, 0, 0, 0, 0, 0},
       .backend = 0},
      {.name = "primary role, primary down -> still primary",
       .role = TargetRole::Primary,
       .state = {down(), up(), up(), up()},
       .backend = 0},
      {.name = "primary role on shard 1", .shard = 1, .role = TargetRole::Primary, .backend = 4},
      {.name = "round robin, cursor 0 -> first replica",
       .policy = BalancePolicy::RoundRobin,
       .state = all_up,
       .cursor = 0,
       .backend = 1},
      {.name = "round robin, cursor 2 -> third replica",
       .policy = BalancePolicy::RoundRobin,
       .state = all_up,
       .cursor = 2,
       .backend = 3},
      {.name = "round robin, cursor wraps",
       .policy = BalancePolicy::RoundRobin,
       .state = all_up,
       .cursor = 4,
       .backend = 2},
      {.name = "round robin ignores load",
       .policy = BalancePolicy::RoundRobin,
       .state = all_up,
       .outstanding = {0, 50, 0, 0},
       .cursor = 0,
       .backend = 1},
      {.name = "least outstanding picks the least loaded",
       .state = all_up,
       .outstanding = {0, 5, 1, 3},
       .backend = 2},
      {.name = "least outstanding ignores the primary's load",
       .state = all_up,
       .outstanding = {-10, 5, 4, 3},
       .backend = 3},
      {.name = "least outstanding tie -> first from the cursor",
       .state = all_up,
       .outstanding = {0, 2, 2, 2},
       .cursor = 1,
       .backend = 2},
      {.name = "least outstanding, no counts known -> first from the cursor",
       .state = all_up,
       .cursor = 2,
       .backend = 3},
      {.name = "down replica skipped (least outstanding)",
       .state = {up(), down(), up(), up()},
       .outstanding = {0, 0, 4, 3},
       .backend = 3},
      {.name = "down replica skipped (round robin)",
       .policy = BalancePolicy::RoundRobin,
       .state = {up(), down(), up(), up()},
       .cursor = 0,
       .backend = 2},
      {.name = "lag over max skipped",
       .state = {up(), up(1001), up(999), up(2000)},
       .outstanding = {0, 0, 7, 0},
       .max_lag = 1000,
       .backend = 2},
      {.name = "lag equal to max is fine",
       .state = {up(), up(1000), up(5000), up(5000)},
       .outstanding = {0, 3, 0, 0},
       .max_lag = 1000,
       .backend = 1},
      {.name = "unknown lag is not over max",
       .state = {up(), up(5000), unknown_lag(), up(5000)},
       .max_lag = 1000,
       .backend = 2},
      {.name = "min_replay_lsn filters replicas behind",
       .state = {up(0, 0), up(0, 99), up(0, 100), up(0, 150)},
       .outstanding = {0, 0, 5, 9},
       .min_lsn = 100,
       .backend = 2},
      {.name = "min_replay_lsn filters round robin too",
       .policy = BalancePolicy::RoundRobin,
       .state = {up(0, 0), up(0, 99), up(0, 98), up(0, 150)},
       .min_lsn = 100,
       .cursor = 0,
       .backend = 3},
      {.name = "excluded skipped",
       .state = all_up,
       .outstanding = {0, 0, 1, 2},
       .excluded = {1},
       .backend = 2},
      {.name = "excluded skipped (round robin)",
       .policy = BalancePolicy::RoundRobin,
       .state = all_up,
       .excluded = {1, 2},
       .cursor = 0,
       .backend = 3},
      {.name = "none eligible -> primary with fallback",
       .state = {up(), down(), up(5000), up(0, 1)},
       .max_lag = 1000,
       .min_lsn = 50,
       .backend = 0,
       .fell_back = true},
      {.name = "all replicas excluded -> primary with fallback",
       .policy = BalancePolicy::RoundRobin,
       .state = all_up,
       .excluded = {3, 2, 1},
       .backend = 0,
       .fell_back = true},
      {.name = "shard 1, only replica down -> its primary with fallback",
       .shard = 1,
       .state = {up(), up(), up(), up(), up(), down()},
       .backend = 4,
       .fell_back = true},
      {.name = "state shorter than backends: unknown ones assumed up",
       .state = {up(), down(), down()},
       .outstanding = {0, 0, 0, 4},
       .backend = 3},
      {.name = "no state at all: every replica assumed up",
       .policy = BalancePolicy::RoundRobin,
       .cursor = 1,
       .backend = 2},
      {.name = "shard 1 replica unknown -> assumed up",
       .shard = 1,
       .state = {up(), up(), up()},
       .backend = 5},
  };
  for (const Row& row : rows) {
    std::uint64_t cursor = row.cursor;
    const BalanceChoice c = run(row, cursor);
    EXPECT_EQ(c.backend, row.backend) << row.name;
    EXPECT_EQ(c.fell_back_to_primary, row.fell_back) << row.name;
  }
}

TEST(ChooseBackend, RoundRobinAlternates) {
  Row row{.name = "rr", .shard = 0, .policy = BalancePolicy::RoundRobin, .backend = 0};
  row.state = {up(), up(), up(), up()};
  std::uint64_t cursor = 0;
  std::vector<std::uint32_t> picks;
  for (int i = 0; i < 6; ++i) picks.push_back(run(row, cursor).backend);
  EXPECT_EQ(picks, (std::vector<std::uint32_t>{1, 2, 3, 1, 2, 3}));
  EXPECT_EQ(cursor, 6u);
}

TEST(ChooseBackend, RoundRobinAlternatesBetweenTwoEligible) {
  Row row{.name = "rr", .policy = BalancePolicy::RoundRobin, .backend = 0};
  row.state = {up(), up(), down(), up()};
  std::uint64_t cursor = 0;
  std::vector<std::uint32_t> picks;
  for (int i = 0; i < 4; ++i) picks.push_back(run(row, cursor).backend);
  // 1, then 2 is down so 3, then 3, then 1: both still served.
  EXPECT_EQ(picks, (std::vector<std::uint32_t>{1, 3, 3, 1}));
}

TEST(ChooseBackend, LeastOutstandingSpreadsEqualLoad) {
  Row row{.name = "lo", .backend = 0};
  row.state = {up(), up(), up(), up()};
  row.outstanding = {0, 1, 1, 1};
  std::uint64_t cursor = 0;
  std::vector<std::uint32_t> picks;
  for (int i = 0; i < 3; ++i) picks.push_back(run(row, cursor).backend);
  EXPECT_EQ(picks, (std::vector<std::uint32_t>{1, 2, 3}));
}

TEST(ChooseBackend, PrimaryRoleDoesNotMoveTheCursor) {
  Row row{.name = "p", .role = TargetRole::Primary, .backend = 0};
  std::uint64_t cursor = 7;
  EXPECT_EQ(run(row, cursor).backend, 0u);
  EXPECT_EQ(cursor, 7u);
}

}  // namespace
}  // namespace shardgate::backend
