// The data path's side of a resharding job: which slice of the keyspace is
// moving, the keys written into it since the job's snapshot (the catch-up
// re-copies exactly those), and the cutover's pause.
//
// A session notes the keys its writes put into the moving slice when it
// routes them, and hands them over when its transaction ends (the write is
// then committed or rolled back, so a re-copy that starts later reads its
// outcome). Sessions holding such writes are counted: the cutover pauses new
// rounds, waits until that count drains to zero, applies the last keys and
// only then publishes the topology in which the slice lives on the target.
//
// A round routed while no job watched notes nothing, yet its write may still
// be on its way to the source when a job begins. Such rounds are counted
// (per worker thread, so the data path shares no cache line) until their
// answer comes back; the job takes its snapshot only after they drain.
//
// Entering and pausing take one lock, so that a session cannot slip a write
// to the source past the drain: a session that routed by the old topology
// either entered before the pause (the drain waits for it) or is refused
// and routes again once the pause ends, by the new topology.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "router/topology.h"

namespace shardgate {

struct MovingSlice {
  std::uint32_t source = 0;
  router::KeyRange range;
  std::vector<bool> tables;  // by index in Topology::sharding.tables: its rows move
};

// A key value written into the moving slice: its table's index and the key
// column's value as text (an integer in decimal).
struct MovedKey {
  std::uint32_t table = 0;
  std::string key;
  auto operator<=>(const MovedKey&) const = default;
};

struct MovedWrites {
  std::vector<MovedKey> keys;
  std::vector<std::uint32_t> tables;  // written without a key: every row may have changed
  bool empty() const { return keys.empty() && tables.empty(); }
};

class ReshardWatch {
 public:
  // Data path (any thread).
  const MovingSlice* slice() const { return slice_.load(std::memory_order_acquire); }
  bool paused() const { return paused_.load(std::memory_order_acquire); }
  // The slice a round about to be routed must watch. When none is watched
  // yet the round is counted, on the calling thread's lane, which `lane`
  // then names; round_over(lane), on the same thread, once the round's
  // answer is back. Routing again while counted keeps the one count.
  static constexpr std::uint8_t kNotCounted = 0xff;
  const MovingSlice* route_round(std::uint8_t& lane);
  void round_over(std::uint8_t& lane);
  // A session begins holding writes into the slice. False while a cutover
  // pauses writes: the session waits it out (wait_out_cutover) and routes
  // the round again.
  [[nodiscard]] bool try_enter();
  // ... and its transaction ended: these keys (and tables) are dirty.
  void leave(const MovedWrites& writes);

  // Control plane (the resharding thread).
  void start(MovingSlice slice);
  void stop();
  void set_paused(bool paused);
  // Waits until no session holds writes into the slice; false on timeout.
  bool wait_drained(std::chrono::milliseconds limit);
  // After start(): waits until every round routed before it has its answer
  // (route_round); false on timeout, with how many are left in `left`.
  bool wait_unwatched_rounds(std::chrono::milliseconds limit, std::int64_t& left) const;
  struct Dirty {
    std::set<MovedKey> keys;
    std::set<std::uint32_t> tables;
  };
  Dirty take();
  std::size_t dirty_keys() const;
  bool is_dirty(std::uint32_t table, const std::string& key) const;
  int holding() const;

 private:
  std::atomic<const MovingSlice*> slice_{nullptr};
  std::atomic<bool> paused_{false};
  struct alignas(64) Lane {
    std::atomic<std::int64_t> unwatched{0};
  };
  static constexpr std::size_t kLanes = 64;  // threads beyond share lanes
  std::array<Lane, kLanes> lanes_;
  mutable std::mutex mutex_;
  std::condition_variable drained_;
  int holding_ = 0;
  Dirty dirty_;
  // Every slice ever published stays alive: a session may hold a pointer
  // across a co_await (as with TopologyHandle).
  std::vector<std::unique_ptr<MovingSlice>> kept_;
};

}  // namespace shardgate
