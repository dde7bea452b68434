#include "proxy/reshard/reshard_watch.h"

#include <thread>

namespace shardgate {

namespace {
// A lane per thread: a round is counted and uncounted on its session's
// thread, so no lane is ever negative and a sum over lanes never misses one.
std::atomic<std::uint8_t> next_lane{0};
std::uint8_t this_thread_lane(std::size_t lanes) {
  thread_local const std::uint8_t lane =
      static_cast<std::uint8_t>(next_lane.fetch_add(1, std::memory_order_relaxed) % lanes);
  return lane;
}
}  // namespace

// Both sides are sequentially consistent: either the job sees the round's
// count (and waits for it), or the round sees the job's slice.
const MovingSlice* ReshardWatch::route_round(std::uint8_t& lane) {
  if (lane != kNotCounted) return slice_.load(std::memory_order_seq_cst);
  const std::uint8_t mine = this_thread_lane(kLanes);
  Lane& l = lanes_[mine];
  l.unwatched.fetch_add(1, std::memory_order_seq_cst);
  const MovingSlice* slice = slice_.load(std::memory_order_seq_cst);
  if (slice) {
    l.unwatched.fetch_sub(1, std::memory_order_relaxed);
  } else {
    lane = mine;
  }
  return slice;
}

void ReshardWatch::round_over(std::uint8_t& lane) {
  if (lane == kNotCounted) return;
  lanes_[lane].unwatched.fetch_sub(1, std::memory_order_release);
  lane = kNotCounted;
}

bool ReshardWatch::wait_unwatched_rounds(std::chrono::milliseconds limit,
                                         std::int64_t& left) const {
  const auto give_up = std::chrono::steady_clock::now() + limit;
  for (;;) {
    // A round that begins now sees the slice and counts only for an instant.
    left = 0;
    for (const Lane& l : lanes_) left += l.unwatched.load(std::memory_order_seq_cst);
    if (left <= 0) return true;
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

bool ReshardWatch::try_enter() {
  std::lock_guard lock(mutex_);
  if (paused_.load(std::memory_order_relaxed)) return false;
  ++holding_;
  return true;
}

void ReshardWatch::set_paused(bool paused) {
  std::lock_guard lock(mutex_);
  paused_.store(paused, std::memory_order_release);
}

void ReshardWatch::leave(const MovedWrites& writes) {
  std::lock_guard lock(mutex_);
  dirty_.keys.insert(writes.keys.begin(), writes.keys.end());
  dirty_.tables.insert(writes.tables.begin(), writes.tables.end());
  if (--holding_ <= 0) {
    holding_ = 0;
    drained_.notify_all();
  }
}

void ReshardWatch::start(MovingSlice slice) {
  std::lock_guard lock(mutex_);
  dirty_ = {};
  kept_.push_back(std::make_unique<MovingSlice>(std::move(slice)));
  slice_.store(kept_.back().get(), std::memory_order_seq_cst);
}

void ReshardWatch::stop() {
  slice_.store(nullptr, std::memory_order_release);
  set_paused(false);
  std::lock_guard lock(mutex_);
  dirty_ = {};
}

bool ReshardWatch::wait_drained(std::chrono::milliseconds limit) {
  std::unique_lock lock(mutex_);
  return drained_.wait_for(lock, limit, [&] { return holding_ == 0; });
}

ReshardWatch::Dirty ReshardWatch::take() {
  std::lock_guard lock(mutex_);
  return std::exchange(dirty_, {});
}

std::size_t ReshardWatch::dirty_keys() const {
  std::lock_guard lock(mutex_);
  return dirty_.keys.size() + dirty_.tables.size();
}

bool ReshardWatch::is_dirty(std::uint32_t table, const std::string& key) const {
  std::lock_guard lock(mutex_);
  return dirty_.tables.count(table) || dirty_.keys.count(MovedKey{table, key});
}

int ReshardWatch::holding() const {
  std::lock_guard lock(mutex_);
  return holding_;
}

}  // namespace shardgate
