#include "proxy/reshard/reshard_watch.h"

namespace shardgate {

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
  slice_.store(kept_.back().get(), std::memory_order_release);
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
