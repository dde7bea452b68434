#include "replication/failover_plan.h"

#include <algorithm>

namespace shardgate::replication {
namespace {

// Reached in the last round (a failed probe keeps older values).
bool fresh(const BackendHealth& h) {
  return h.up && h.consecutive_failures == 0;
}

}  // namespace

std::uint64_t received_position(const BackendHealth& h) {
  return std::max(h.receive_lsn, h.lsn);
}

std::optional<std::uint32_t> choose_candidate(const router::Topology& topology,
                                              const HealthSnapshot& health, std::uint32_t shard) {
  std::optional<std::uint32_t> best;
  for (std::uint32_t b : topology.shards.at(shard).replicas) {
    if (b >= health.backends.size()) continue;
    const router::BackendInfo& info = topology.backends[b];
    const BackendHealth& h = health.backends[b];
    if (info.fenced || !fresh(h) || h.role != ObservedRole::Replica) continue;
    if (!best) {
      best = b;
      continue;
    }
    const BackendHealth& bh = health.backends[*best];
    const std::uint64_t pos = received_position(h), best_pos = received_position(bh);
    if (pos > best_pos || (pos == best_pos && info.priority > topology.backends[*best].priority))
      best = b;
  }
  return best;
}

Assessment assess_shard(const router::Topology& topology, const HealthSnapshot& health,
                        std::uint32_t shard) {
  const router::ShardInfo& s = topology.shards.at(shard);
  if (s.primary >= health.backends.size()) return {};
  const BackendHealth& primary = health.backends[s.primary];
  // Never on one failed probe, even with failures_before_down set to 1.
  if (primary.up || primary.consecutive_failures < kMinFailedProbes) return {};
  Assessment a;
  std::string fresh_replicas;
  for (std::uint32_t b : s.replicas) {
    if (b >= health.backends.size()) continue;
    const BackendHealth& h = health.backends[b];
    if (!fresh(h) || topology.backends[b].fenced) continue;
    if (h.upstream_connected) {
      a.verdict = Verdict::Unconfirmed;
      a.reason = "primary " + topology.backends[s.primary].name +
                 " does not answer the proxy, but replica " + topology.backends[b].name +
                 " still streams from it";
      return a;
    }
  }
  const auto candidate = choose_candidate(topology, health, shard);
  if (!candidate) {
    a.verdict = Verdict::NoCandidate;
    a.reason = "primary " + topology.backends[s.primary].name + " is down (" + primary.last_error +
               ") and no replica of shard " + s.name + " is reachable to promote";
    return a;
  }
  a.verdict = Verdict::Failover;
  a.candidate = *candidate;
  a.reason = "primary " + topology.backends[s.primary].name + " is down (" + primary.last_error +
             ") and its replicas lost their stream from it";
  return a;
}

}  // namespace shardgate::replication
