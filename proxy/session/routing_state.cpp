#include "proxy/session/routing_state.h"

#include "proxy/proxy_context.h"

namespace shardgate::session {

router::TargetRole RoutingState::decide(const router::Statement& stmt, const SessionFacts& facts,
                                        const HealthView& health, Metrics& metrics) {
  router::SessionView view;
  view.in_transaction = facts.in_transaction;
  view.transaction_read_only = facts.in_transaction && facts.attached_to_replica;
  view.reads_on_primary = facts.reads_on_primary;
  round_shard_ = facts.shard;
  if (facts.shard < barriers_.size()) {
    Barrier& barrier = barriers_[facts.shard];
    if (barrier.last_write) {
      if (health.round_started > *barrier.last_write && facts.shard < health.primary_lsn.size()) {
        // The primary's position sampled after the write covers the write's commit.
        barrier.position = health.primary_lsn[facts.shard];
        barrier.last_write.reset();
      } else {
        view.read_your_writes_pending = true;
      }
    }
  }
  const auto decision = router::route(stmt, view);
  const bool primary = decision.role == router::TargetRole::Primary;
  round_wrote_ = primary && router::writes_data(stmt);
  if (primary && view.read_your_writes_pending && !stmt.needs_primary)
    bump(metrics.read_your_writes_primary_total);
  return decision.role;
}

void RoutingState::round_done(bool read_your_writes, std::chrono::steady_clock::time_point now) {
  if (round_wrote_ && read_your_writes) {
    if (barriers_.size() <= round_shard_) barriers_.resize(round_shard_ + 1);
    barriers_[round_shard_].last_write = now;
    barriers_[round_shard_].position.reset();
  }
  round_wrote_ = false;
}

}  // namespace shardgate::session
