// What routing remembers about one client between statements, whatever its
// protocol: whether the round in flight writes, and the read-your-writes
// barrier that keeps the client's reads off replicas that have not replayed
// its last write. Positions are the monitor's: a WAL LSN for PostgreSQL, the
// GTID sequence number for MariaDB; only their order matters here.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proxy/metrics.h"
#include "proxy/reshard/reshard_watch.h"
#include "router/route.h"
#include "router/statement.h"

namespace shardgate {
struct HealthView;
}

namespace shardgate::session {

// Facts only the protocol session knows.
struct SessionFacts {
  bool in_transaction = false;       // a transaction is open on the attached server
  bool attached_to_replica = false;  // ... and that server is a replica
  bool reads_on_primary = false;     // config or pool mode keeps reads on the primary
  // Pool mode (session) or the transaction mode (MySQL autocommit=0) keeps
  // every statement on the primary, hot keys included.
  bool primary_pinned = false;
  std::uint32_t shard = 0;  // the shard the round goes to
};

class RoutingState {
 public:
  RoutingState() = default;
  RoutingState(const RoutingState&) = delete;
  RoutingState& operator=(const RoutingState&) = delete;
  ~RoutingState() {
    release_moved();
    round_over();
  }

  // Routes the statement that starts a round.
  router::TargetRole decide(const router::Statement& stmt, const SessionFacts& facts,
                            const HealthView& health, Metrics& metrics);

  // The statement that starts the next round reads hot keys only, of tables
  // that spread hot reads (ShardChoice::hot_read).
  void note_hot_read(bool hot) { hot_read_ = hot; }
  // The next round's read fills the result cache (SessionView::cache_fill).
  void note_cache_fill() { cache_fill_ = true; }

  // The round writes even though its first statement did not say so (a
  // function call in an extended batch, a COPY FROM ...).
  void note_write() { round_wrote_ = true; }
  // The round wrote on `shard` too (a write run on several shards).
  void note_write_on(std::uint32_t shard) { also_wrote_.push_back(shard); }

  // The slice the round being routed must watch (ReshardWatch::route_round).
  // With none, the round counts as unwatched until it is over: round_done,
  // or an answer the proxy gives itself (round_over).
  const MovingSlice* watch_slice(ReshardWatch& watch) {
    watch_ = &watch;
    return watch.route_round(unwatched_lane_);
  }
  void round_over() {
    if (watch_) watch_->round_over(unwatched_lane_);
  }

  // The round writes into a slice a resharding job is moving: the keys are
  // handed to `watch` once the client's transaction ends. False when a
  // cutover's pause refuses a session that holds no such writes yet: the
  // round must wait the pause out and be routed again.
  [[nodiscard]] bool note_moved(ReshardWatch& watch, const MovedWrites& moved);

  // After the round: a write starts a read-your-writes wait when enabled;
  // moved keys are handed over unless a transaction stays open.
  void round_done(bool read_your_writes, std::chrono::steady_clock::time_point now,
                  bool transaction_open = false);

  // The position a replica of `shard` must have replayed to serve this
  // client's reads. Each shard has its own barrier: positions of different
  // servers do not compare, and a write on one shard does not hold back
  // reads on another.
  std::optional<std::uint64_t> replica_min_position(std::uint32_t shard = 0) const {
    return shard < barriers_.size() ? barriers_[shard].position : std::nullopt;
  }

  // MySQL: the server reported the commit's GTID ("0-1-42", sequence 42) in
  // the round's OK packet. With read-your-writes the barrier becomes exactly
  // that commit, at once, instead of the primary's position seen by the next
  // monitor round; and a replica can be asked to wait for it.
  void note_commit(std::uint32_t shard, std::uint64_t seq, std::string gtid);
  // The GTID a replica of `shard` must have applied: set with the position
  // when it came from note_commit.
  const std::string* replica_min_gtid(std::uint32_t shard) const {
    return shard < barriers_.size() && barriers_[shard].position && !barriers_[shard].gtid.empty()
               ? &barriers_[shard].gtid
               : nullptr;
  }

 private:
  // The time of the last write and, once a monitor round that started after
  // it has been seen, the primary position that replicas must have replayed.
  struct Barrier {
    std::optional<std::chrono::steady_clock::time_point> last_write;
    std::optional<std::uint64_t> position;
    std::string gtid;  // the commit at `position`, when the server reported it
    // Reported in the round in flight (note_commit), applied by round_done.
    std::uint64_t commit_seq = 0;
    std::string commit_gtid;
  };
  // The shard whose barrier holds a commit of the round in flight. Kept out
  // of the session object itself: every idle client carries RoutingState.
  std::optional<std::uint32_t> commit_shard_;
  bool round_wrote_ = false;
  bool hot_read_ = false;
  bool cache_fill_ = false;
  std::uint8_t unwatched_lane_ = ReshardWatch::kNotCounted;
  std::uint32_t round_shard_ = 0;
  std::vector<std::uint32_t> also_wrote_;
  std::vector<Barrier> barriers_;  // by shard, grown on first write
  void release_moved();
  ReshardWatch* watch_ = nullptr;       // the proxy's, once a round was routed by it
  std::unique_ptr<MovedWrites> moved_;  // only while a resharding's slice is written
};

}  // namespace shardgate::session
