// MySQL read-your-writes may make a read wait on a replica for the client's
// last commit (my_replica_wait.cpp). When a replica of a shard did not get
// there in time it is lagging, and the next reads would pay the same wait
// before going to the primary anyway: for a second, reads of that shard skip
// the wait and go to the primary at once. One per worker thread, no locks.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

namespace shardgate::session {

class ReplicaWaitBreaker {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kOff{1000};

  bool allows(std::uint32_t shard, Clock::time_point now) const {
    return shard >= off_until_.size() || now >= off_until_[shard];
  }
  void timed_out(std::uint32_t shard, Clock::time_point now) {
    if (off_until_.size() <= shard) off_until_.resize(shard + 1);
    off_until_[shard] = now + kOff;
  }

 private:
  std::vector<Clock::time_point> off_until_;  // by shard
};

}  // namespace shardgate::session
