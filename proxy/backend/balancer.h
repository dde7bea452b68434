// Chooses the backend that serves one statement, given the role the router
// asked for and what the monitor last saw. Pure: the caller passes every input
// (health snapshot, outstanding counts, round-robin cursor), so the policy is
// table-tested without sockets.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "router/route.h"
#include "router/topology.h"

namespace shardgate::backend {

enum class BalancePolicy { RoundRobin, LeastOutstanding };

struct ReplicaState {
  bool up = true;
  std::optional<std::uint64_t> lag_bytes;
  std::uint64_t replay_lsn = 0;
};

struct BalanceInput {
  const router::Topology* topology = nullptr;
  std::uint32_t shard = 0;
  router::TargetRole role = router::TargetRole::Primary;
  BalancePolicy policy = BalancePolicy::LeastOutstanding;
  std::uint64_t max_lag_bytes = 0;
  std::span<const ReplicaState> state;        // by backend index
  std::span<const std::int64_t> outstanding;  // by backend index
  // Read-your-writes: a replica must have replayed at least this LSN.
  std::optional<std::uint64_t> min_replay_lsn;
  std::span<const std::uint32_t> excluded;  // backends that just failed for this statement
};

struct BalanceChoice {
  std::uint32_t backend = 0;
  bool fell_back_to_primary = false;  // a replica was asked for but none could serve
};

// `cursor` is the caller's round-robin position; it is advanced.
BalanceChoice choose_backend(const BalanceInput& in, std::uint64_t& cursor);

}  // namespace shardgate::backend
