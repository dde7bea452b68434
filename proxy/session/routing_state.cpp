#include "proxy/session/routing_state.h"

#include <utility>

#include "proxy/proxy_context.h"

namespace shardgate::session {

router::TargetRole RoutingState::decide(const router::Statement& stmt, const SessionFacts& facts,
                                        const HealthView& health, Metrics& metrics) {
  router::SessionView view;
  view.in_transaction = facts.in_transaction;
  view.transaction_read_only = facts.in_transaction && facts.attached_to_replica;
  view.reads_on_primary = facts.reads_on_primary;
  view.hot_key_read = hot_read_ && !facts.primary_pinned;
  hot_read_ = false;
  view.cache_fill = std::exchange(cache_fill_, false);
  round_shard_ = facts.shard;
  if (facts.shard < barriers_.size()) {
    Barrier& barrier = barriers_[facts.shard];
    if (barrier.last_write) {
      if (health.round_started > *barrier.last_write && facts.shard < health.primary_lsn.size()) {
        // The primary's position sampled after the write covers the write's commit.
        barrier.position = health.primary_lsn[facts.shard];
        barrier.gtid.clear();
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
  if (!primary && view.hot_key_read) bump(metrics.hot_key_reads_spread_total);
  return decision.role;
}

bool RoutingState::note_moved(ReshardWatch& watch, const MovedWrites& moved) {
  if (moved.empty()) return true;
  if (!moved_) {
    if (!watch.try_enter()) return false;
    watch_ = &watch;
    moved_ = std::make_unique<MovedWrites>();
  }
  moved_->keys.insert(moved_->keys.end(), moved.keys.begin(), moved.keys.end());
  moved_->tables.insert(moved_->tables.end(), moved.tables.begin(), moved.tables.end());
  return true;
}

void RoutingState::release_moved() {
  if (!moved_) return;
  watch_->leave(*moved_);
  moved_.reset();
}

void RoutingState::note_commit(std::uint32_t shard, std::uint64_t seq, std::string gtid) {
  if (barriers_.size() <= shard) barriers_.resize(shard + 1);
  barriers_[shard].commit_seq = seq;
  barriers_[shard].commit_gtid = std::move(gtid);
  commit_shard_ = shard;
}

void RoutingState::round_done(bool read_your_writes, std::chrono::steady_clock::time_point now,
                              bool transaction_open) {
  if (!transaction_open) release_moved();
  round_over();
  if (round_wrote_) also_wrote_.push_back(round_shard_);
  if (read_your_writes) {
    for (std::uint32_t shard : also_wrote_) {
      if (barriers_.size() <= shard) barriers_.resize(shard + 1);
      barriers_[shard].last_write = now;
      barriers_[shard].position.reset();
      barriers_[shard].gtid.clear();
    }
    // The commit that ended the round covers every write before it on its shard.
    if (commit_shard_ && !transaction_open) {
      Barrier& b = barriers_[*commit_shard_];
      b.last_write.reset();
      b.position = b.commit_seq;
      b.gtid = std::move(b.commit_gtid);
    }
  }
  if (commit_shard_) barriers_[*commit_shard_].commit_gtid.clear();
  commit_shard_.reset();
  also_wrote_.clear();
  round_wrote_ = false;
}

}  // namespace shardgate::session
