// After a replica failed to reach a client's commit in time, reads of that
// shard skip the wait for a second; other shards are not affected.
#include "proxy/session/replica_wait_breaker.h"

#include <gtest/gtest.h>

namespace shardgate::session {
namespace {

TEST(ReplicaWaitBreaker, ATimeoutTurnsWaitsOffForASecondOnThatShard) {
  ReplicaWaitBreaker b;
  const auto t0 = ReplicaWaitBreaker::Clock::now();
  EXPECT_TRUE(b.allows(0, t0));
  EXPECT_TRUE(b.allows(3, t0));
  b.timed_out(2, t0);
  EXPECT_FALSE(b.allows(2, t0 + std::chrono::milliseconds(999)));
  EXPECT_TRUE(b.allows(2, t0 + std::chrono::milliseconds(1000)));
  EXPECT_TRUE(b.allows(0, t0 + std::chrono::milliseconds(1))) << "another shard";
  EXPECT_TRUE(b.allows(7, t0)) << "a shard never seen";
}

}  // namespace
}  // namespace shardgate::session
