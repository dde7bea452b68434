#include "replication/health.h"

#include <algorithm>

namespace shardgate::replication {
namespace {

// The primary a shard's replicas are measured against in this round: the one
// backend seen as primary, or, when several claim it (a split brain or a
// failover in progress), the configured one if exactly one of them is.
std::optional<uint64_t> shard_primary_lsn(const std::vector<ProbeTarget>& targets,
                                          const std::vector<ProbeOutcome>& outcomes,
                                          uint32_t shard) {
  std::optional<uint64_t> any, configured;
  int any_count = 0, configured_count = 0;
  for (size_t i = 0; i < targets.size() && i < outcomes.size(); ++i) {
    const ProbeOutcome& o = outcomes[i];
    if (targets[i].shard != shard || !o.ok || o.role != ObservedRole::Primary || !o.lsn) continue;
    any = o.lsn;
    ++any_count;
    if (targets[i].configured_primary) {
      configured = o.lsn;
      ++configured_count;
    }
  }
  if (any_count == 1) return any;
  if (configured_count == 1) return configured;
  return std::nullopt;
}

}  // namespace

ProbeOutcome probe_failure(std::string error) {
  ProbeOutcome outcome;
  outcome.error = std::move(error);
  return outcome;
}

HealthSnapshot next_snapshot(const HealthSnapshot& previous,
                             const std::vector<ProbeTarget>& targets,
                             const std::vector<ProbeOutcome>& outcomes,
                             uint32_t failures_before_down,
                             std::chrono::steady_clock::time_point round_started) {
  const uint32_t threshold = std::max<uint32_t>(failures_before_down, 1);
  HealthSnapshot next;
  next.generation = previous.generation + 1;
  next.round_started = round_started;
  next.backends.resize(targets.size());
  for (size_t i = 0; i < targets.size(); ++i) {
    BackendHealth h = i < previous.backends.size() ? previous.backends[i] : BackendHealth{};
    h.lag_bytes.reset();
    const ProbeOutcome missing = probe_failure("not probed");
    const ProbeOutcome& o = i < outcomes.size() ? outcomes[i] : missing;
    if (o.ok) {
      h.up = true;
      h.role = o.role;
      h.lsn = o.lsn.value_or(0);
      h.receive_lsn = o.receive_lsn.value_or(0);
      h.upstream_connected = o.upstream_connected;
      h.replication_configured = o.replication_configured;
      h.consecutive_failures = 0;
      h.last_error.clear();
      h.last_success = o.finished;
    } else {
      if (h.consecutive_failures < UINT32_MAX) ++h.consecutive_failures;
      h.last_error = o.error;
      if (h.consecutive_failures >= threshold) h.up = false;
    }
    next.backends[i] = std::move(h);
  }
  for (size_t i = 0; i < targets.size() && i < outcomes.size(); ++i) {
    const ProbeOutcome& o = outcomes[i];
    if (!o.ok || o.role != ObservedRole::Replica || !o.lsn) continue;
    auto primary = shard_primary_lsn(targets, outcomes, targets[i].shard);
    if (primary) next.backends[i].lag_bytes = *primary > *o.lsn ? *primary - *o.lsn : 0;
  }
  return next;
}

}  // namespace shardgate::replication
