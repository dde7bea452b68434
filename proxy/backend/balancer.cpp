#include "proxy/backend/balancer.h"

#include <algorithm>

namespace shardgate::backend {
namespace {

bool eligible(const BalanceInput& in, std::uint32_t b) {
  if (std::find(in.excluded.begin(), in.excluded.end(), b) != in.excluded.end()) return false;
  if (b >= in.state.size()) return true;  // no health known yet: assume up
  const ReplicaState& s = in.state[b];
  if (!s.up) return false;
  if (s.lag_bytes && *s.lag_bytes > in.max_lag_bytes) return false;
  if (in.min_replay_lsn && s.replay_lsn < *in.min_replay_lsn) return false;
  return true;
}

}  // namespace

BalanceChoice choose_backend(const BalanceInput& in, std::uint64_t& cursor) {
  const router::ShardInfo& shard = in.topology->shards.at(in.shard);
  if (in.role == router::TargetRole::Primary) return {shard.primary, false};

  const auto& replicas = shard.replicas;
  const std::size_t n = replicas.size();
  std::optional<std::uint32_t> best;
  std::int64_t best_load = 0;
  const std::uint64_t start = cursor++;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t b = replicas[(start + i) % n];
    if (!eligible(in, b)) continue;
    if (in.policy == BalancePolicy::RoundRobin) return {b, false};
    const std::int64_t load = b < in.outstanding.size() ? in.outstanding[b] : 0;
    if (!best || load < best_load) {
      best = b;
      best_load = load;
    }
  }
  if (best) return {*best, false};
  return {shard.primary, true};
}

}  // namespace shardgate::backend
