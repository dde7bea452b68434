// The legs of a client transaction over several shards, whatever the
// protocol: one server connection per shard the transaction reached, each
// still inside it. The session works on one leg at a time (its attached
// server); the others wait here with the answer tracker that knows their
// state, until COMMIT or ROLLBACK ends them all (proxy/txn/two_phase.h).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "proxy/metrics.h"
#include "proxy/session/server_attach.h"
#include "proxy/txn/two_phase.h"

namespace shardgate::session {

template <class Conn, class Tracker>
struct ShardLeg {
  Attachment<Conn> server;
  std::uint32_t shard = 0;
  bool wrote = false;   // ran a statement that may write: a two-phase participant
  bool dirty = false;   // holds state the proxy does not track: not shared again
  bool broken = false;  // failed while the proxy ended the transaction
  Tracker tracker;
};

template <class Conn, class Tracker>
class ParkedLegs {
 public:
  using Leg = ShardLeg<Conn, Tracker>;

  bool empty() const { return legs_.empty(); }
  std::vector<Leg>& all() { return legs_; }

  void park(Leg leg) { legs_.push_back(std::move(leg)); }

  // The leg on `shard`, taken out; nullopt when the transaction has none there.
  std::optional<Leg> take(std::uint32_t shard) {
    for (auto it = legs_.begin(); it != legs_.end(); ++it) {
      if (it->shard != shard) continue;
      Leg leg = std::move(*it);
      legs_.erase(it);
      return leg;
    }
    return std::nullopt;
  }

  // The leg on `shard`, left in place; null when there is none.
  Leg* find(std::uint32_t shard) {
    for (auto& leg : legs_)
      if (leg.shard == shard) return &leg;
    return nullptr;
  }

  // Gives every leg back: reusable unless broken or dirty (or `keep` is false,
  // which closes them all, and a server rolls back what a closed
  // connection left open).
  void release_all(Worker& worker, bool keep) {
    for (auto& leg : legs_) release_server(worker, leg.server, keep && !leg.broken && !leg.dirty);
    legs_.clear();
  }

 private:
  std::vector<Leg> legs_;
};

// Gives the transaction a leg on each of `shards`, opening with open(shard)
// (the protocol's: attach, settings, BEGIN) those it lacks; the error of the
// first that cannot be opened.
template <class Conn, class Tracker, class Open>
asio::awaitable<Result<void>> give_legs(ParkedLegs<Conn, Tracker>& legs,
                                        std::vector<std::uint32_t> shards, Open open) {
  for (std::uint32_t shard : shards) {
    if (legs.find(shard)) continue;
    auto leg = co_await open(shard);
    if (!leg) co_return leg.error();
    legs.park(std::move(*leg));
  }
  co_return Result<void>{};
}

// Counts how a transaction over `legs` shards ended.
inline void count_end(Metrics& m, const txn::EndResult& result, std::size_t legs) {
  if (legs > 1) bump(m.cross_shard_transactions_total);
  if (result.two_phase) bump(m.two_phase_commits_total);
  if (result.outcome == txn::Outcome::Failed) bump(m.two_phase_aborts_total);
  if (result.decision_pending) bump(m.two_phase_pending_total);
}

}  // namespace shardgate::session
