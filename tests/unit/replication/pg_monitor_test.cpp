#include "replication/pg_monitor.h"

#include <gtest/gtest.h>
using namespace shardgate::replication;
using Clock = std::chrono::steady_clock;
static ProbeOutcome ok(ObservedRole r, std::optional<uint64_t> lsn,
                       std::optional<uint64_t> rcv = {}) {
  ProbeOutcome o;
  o.ok = true;
  o.role = r;
  o.lsn = lsn;
  o.receive_lsn = rcv;
  o.finished = Clock::now();
  return o;
}
static ProbeOutcome bad(std::string e) {
  ProbeOutcome o;
  o.error = e;
  return o;
}
static std::vector<ProbeTarget> two_shards() {
  return {{"a", "h", 1, "", 0, true},
          {"b", "h", 2, "", 0, false},
          {"c", "h", 3, "", 1, true},
          {"d", "h", 4, "", 1, false}};
}
TEST(Next, LagPerShardClamped) {
  auto t = two_shards();
  HealthSnapshot s0;
  s0.backends.resize(4);
  auto s = next_snapshot(s0, t,
                         {ok(ObservedRole::Primary, 1000), ok(ObservedRole::Replica, 400, 900),
                          ok(ObservedRole::Primary, 50), ok(ObservedRole::Replica, 70)},
                         3, Clock::now());
  EXPECT_EQ(s.generation, 1u);
  EXPECT_FALSE(s.backends[0].lag_bytes);
  EXPECT_EQ(*s.backends[1].lag_bytes, 600u);
  EXPECT_EQ(s.backends[1].receive_lsn, 900u);
  EXPECT_EQ(*s.backends[3].lag_bytes, 0u);
  EXPECT_EQ(s.backends[2].receive_lsn, 0u);
}
TEST(Next, NoLagWithoutPrimaryOrNullLsn) {
  auto t = two_shards();
  HealthSnapshot s0;
  s0.backends.resize(4);
  auto s = next_snapshot(s0, t,
                         {bad("x"), ok(ObservedRole::Replica, 400), ok(ObservedRole::Primary, 50),
                          ok(ObservedRole::Replica, std::nullopt)},
                         3, Clock::now());
  EXPECT_FALSE(s.backends[1].lag_bytes);
  EXPECT_FALSE(s.backends[3].lag_bytes);
  EXPECT_EQ(s.backends[3].lsn, 0u);
}
TEST(Next, SplitBrainUsesConfiguredPrimaryElseNothing) {
  std::vector<ProbeTarget> t = {
      {"a", "h", 1, "", 0, true}, {"b", "h", 2, "", 0, false}, {"c", "h", 3, "", 0, false}};
  HealthSnapshot s0;
  s0.backends.resize(3);
  auto s = next_snapshot(s0, t,
                         {ok(ObservedRole::Primary, 1000), ok(ObservedRole::Primary, 5000),
                          ok(ObservedRole::Replica, 900)},
                         3, Clock::now());
  EXPECT_EQ(*s.backends[2].lag_bytes, 100u);
  t[0].configured_primary = false;
  s = next_snapshot(s0, t,
                    {ok(ObservedRole::Primary, 1000), ok(ObservedRole::Primary, 5000),
                     ok(ObservedRole::Replica, 900)},
                    3, Clock::now());
  EXPECT_FALSE(s.backends[2].lag_bytes);
  // Only the promoted one answered: it is the primary now.
  s = next_snapshot(s0, t,
                    {bad("down"), ok(ObservedRole::Primary, 5000), ok(ObservedRole::Replica, 900)},
                    3, Clock::now());
  EXPECT_EQ(*s.backends[2].lag_bytes, 4100u);
}
TEST(Next, DownAfterThresholdUpAfterOneSuccess) {
  std::vector<ProbeTarget> t = {{"a", "h", 1, "", 0, true}};
  HealthSnapshot s;
  s.backends.resize(1);
  s = next_snapshot(s, t, {ok(ObservedRole::Primary, 7, {})}, 3, Clock::now());
  auto success = s.backends[0].last_success;
  for (int i = 1; i <= 4; ++i) {
    s = next_snapshot(s, t, {bad("e" + std::to_string(i))}, 3, Clock::now());
    EXPECT_EQ(s.backends[0].up, i < 3) << i;
    EXPECT_EQ(s.backends[0].consecutive_failures, (uint32_t)i);
    EXPECT_EQ(s.backends[0].last_error, "e" + std::to_string(i));
    EXPECT_EQ(s.backends[0].role, ObservedRole::Primary);  // last known kept
    EXPECT_EQ(s.backends[0].lsn, 7u);
    EXPECT_EQ(s.backends[0].last_success, success);
  }
  s = next_snapshot(s, t, {ok(ObservedRole::Replica, 9)}, 3, Clock::now());
  EXPECT_TRUE(s.backends[0].up);
  EXPECT_EQ(s.backends[0].consecutive_failures, 0u);
  EXPECT_TRUE(s.backends[0].last_error.empty());
  EXPECT_EQ(s.generation, 6u);
}
TEST(Next, ZeroThresholdMeansOne) {
  std::vector<ProbeTarget> t = {{"a", "h", 1, "", 0, true}};
  HealthSnapshot s;
  s.backends.resize(1);
  s = next_snapshot(s, t, {bad("x")}, 0, Clock::now());
  EXPECT_FALSE(s.backends[0].up);
}
TEST(Monitor, NoTargetsAndUnreachable) {
  // No server on port 1: connection refused each round, down after 2 rounds.
  PgMonitor m({{"x", "127.0.0.1", 1, "", 0, true}},
              MonitorOptions{.user = "u",
                             .password = "",
                             .database = "postgres",
                             .interval = std::chrono::milliseconds(20),
                             .connect_timeout = std::chrono::milliseconds(1000),
                             .failures_before_down = 2});
  EXPECT_EQ(m.snapshot()->generation, 0u);
  EXPECT_TRUE(m.snapshot()->backends[0].up);
  m.start();
  m.start();
  auto t = Clock::now();
  auto s = m.wait_for_round_after(t, std::chrono::seconds(2));
  EXPECT_GE(s->round_started, t);
  s = m.wait_for_round_after(Clock::now() + std::chrono::milliseconds(30), std::chrono::seconds(2));
  EXPECT_FALSE(s->backends[0].up);
  EXPECT_NE(s->backends[0].last_error.find("refused"), std::string::npos)
      << s->backends[0].last_error;
  auto w = Clock::now();
  s = m.wait_for_round_after(Clock::now() + std::chrono::hours(1), std::chrono::milliseconds(100));
  EXPECT_GE(Clock::now() - w, std::chrono::milliseconds(100));
  m.stop();
  m.stop();
  auto g = m.snapshot()->generation;
  m.start();
  s = m.wait_for_round_after(Clock::now(), std::chrono::seconds(2));
  EXPECT_GT(s->generation, g);
  PgMonitor empty({}, MonitorOptions{});
  empty.start();
  s = empty.wait_for_round_after(Clock::now(), std::chrono::seconds(2));
  EXPECT_GE(s->generation, 1u);
  EXPECT_TRUE(s->backends.empty());
}
TEST(Monitor, ListenerMayStopAndRestartWorks) {
  MonitorOptions options;
  options.interval = std::chrono::milliseconds(10);
  PgMonitor m({{"x", "127.0.0.1", 1, "", 0, true}}, options);
  std::atomic<int> calls{0};
  m.set_listener([&](const std::shared_ptr<const HealthSnapshot>& s) {
    ++calls;
    if (s->generation == 3) m.stop();
  });
  m.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(calls.load(), 3);
  m.start();  // joins the self-stopped thread, runs again
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_GT(calls.load(), 3);
}
TEST(Next, UpstreamIsTheLastSuccessfulProbes) {
  // Failover asks whether the replicas lost their primary too: a failed
  // probe keeps what the last answered one said.
  std::vector<ProbeTarget> t = {{"a", "h", 1, "", 0, true}, {"b", "h", 2, "", 0, false}};
  HealthSnapshot s0;
  s0.backends.resize(2);
  auto streaming = ok(ObservedRole::Replica, 10, 10);
  streaming.upstream_connected = true;
  auto s1 = next_snapshot(s0, t, {ok(ObservedRole::Primary, 10), streaming}, 3, Clock::now());
  EXPECT_TRUE(s1.backends[1].upstream_connected);
  auto s2 = next_snapshot(s1, t, {bad("down"), bad("timeout")}, 3, Clock::now());
  EXPECT_TRUE(s2.backends[1].upstream_connected);
  EXPECT_EQ(s2.backends[1].consecutive_failures, 1u);
  auto s3 = next_snapshot(s2, t, {bad("down"), ok(ObservedRole::Replica, 10, 10)}, 3, Clock::now());
  EXPECT_FALSE(s3.backends[1].upstream_connected);
}
