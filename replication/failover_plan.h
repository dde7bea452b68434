// When to fail a shard over, and to which replica. Pure functions of the
// topology and the monitor's latest snapshot, so the rules are table-tested
// without servers; replication/failover_ops.h carries them out.
//
// A primary is dead only when both hold:
//  - the monitor failed to reach it failures_before_down rounds in a row,
//    and never fewer than two (one slow probe is not a death), and
//  - every replica the monitor can reach has lost its replication stream
//    too. A primary that only the proxy cannot reach (a partition between the
//    two) still streams to its replicas: failing it over would make two
//    primaries, so the shard waits instead.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "replication/health.h"
#include "router/topology.h"

namespace shardgate::replication {

// The fewest consecutive failed probes that may start a failover, whatever
// failures_before_down says.
inline constexpr std::uint32_t kMinFailedProbes = 2;

enum class Verdict {
  Healthy,      // the primary answers (or has not failed long enough)
  Unconfirmed,  // the primary is down to the proxy, but a replica still streams from it
  Failover,     // dead and confirmed: promote `candidate`
  NoCandidate   // dead, but no replica can be promoted (all down or fenced)
};

struct Assessment {
  Verdict verdict = Verdict::Healthy;
  std::uint32_t candidate = 0;  // backend index, Verdict::Failover only
  std::string reason;           // for the log and the admin API
};

// The replica of `shard` to promote: reachable in the last round, not
// fenced, seen as a replica; the one that has received the most (its
// receive position, else its replay position), ties to the higher priority,
// then to the lower backend index. nullopt when there is none.
std::optional<std::uint32_t> choose_candidate(const router::Topology& topology,
                                              const HealthSnapshot& health, std::uint32_t shard);

Assessment assess_shard(const router::Topology& topology, const HealthSnapshot& health,
                        std::uint32_t shard);

// The backend's position for ranking: what it has received, at least what
// it has replayed.
std::uint64_t received_position(const BackendHealth& h);

}  // namespace shardgate::replication
