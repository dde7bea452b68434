#include "router/decaying_top_k.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

namespace shardgate::router {
namespace {

// Weights grow as exp(elapsed / tau); past this exponent the counts are
// brought back to the present so that doubles keep their precision.
constexpr double kRescaleExponent = 30.0;

}  // namespace

DecayingTopK::DecayingTopK(std::size_t capacity, double tau_seconds)
    : capacity_(std::max<std::size_t>(capacity, 1)), tau_(tau_seconds > 0 ? tau_seconds : 1.0) {
  counters_.reserve(capacity_);
  heap_.reserve(capacity_);
  slots_.assign(std::bit_ceil(2 * capacity_), 0);
}

double DecayingTopK::weight(double now) {
  if (!started_) {
    started_ = true;
    landmark_ = now;
  }
  const double exponent = (now - landmark_) / tau_;
  if (exponent > kRescaleExponent) {
    const double f = std::exp(-exponent);
    for (Counter& c : counters_) {
      c.count *= f;
      c.error *= f;
    }
    total_ *= f;
    landmark_ = now;
    return 1.0;
  }
  return std::exp(exponent);
}

double DecayingTopK::decay(double now) const {
  return started_ ? std::exp(-(now - landmark_) / tau_) : 0.0;
}

void DecayingTopK::set_label(Counter& c, std::uint32_t table, std::string_view key) {
  c.table = table;
  c.truncated = key.size() > kKeyBytes;
  c.key_len = static_cast<std::uint8_t>(std::min(key.size(), kKeyBytes));
  std::memcpy(c.key.data(), key.data(), c.key_len);
}

std::uint32_t* DecayingTopK::slot_of(std::uint64_t id) {
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = id & mask;; i = (i + 1) & mask) {
    std::uint32_t& s = slots_[i];
    if (s == 0 || counters_[s - 1].id == id) return &s;
  }
}

// Linear probing without tombstones: later entries of the probe run move
// back into the freed slot when their home position allows it.
void DecayingTopK::erase_slot(std::uint64_t id) {
  const std::size_t mask = slots_.size() - 1;
  std::size_t hole = static_cast<std::size_t>(slot_of(id) - slots_.data());
  slots_[hole] = 0;
  for (std::size_t i = (hole + 1) & mask; slots_[i] != 0; i = (i + 1) & mask) {
    const std::size_t home = counters_[slots_[i] - 1].id & mask;
    // Move it when its home is not in (hole, i] (cyclically).
    const bool stays = hole <= i ? (home > hole && home <= i) : (home > hole || home <= i);
    if (stays) continue;
    slots_[hole] = slots_[i];
    slots_[i] = 0;
    hole = i;
  }
}

void DecayingTopK::swap_heap(std::uint32_t a, std::uint32_t b) {
  std::swap(heap_[a], heap_[b]);
  counters_[heap_[a]].heap_pos = a;
  counters_[heap_[b]].heap_pos = b;
}

// Counts only grow, so a changed counter can only move away from the top.
void DecayingTopK::sift_down(std::uint32_t pos) {
  const auto n = static_cast<std::uint32_t>(heap_.size());
  for (;;) {
    std::uint32_t smallest = pos;
    for (std::uint32_t child = 2 * pos + 1; child <= 2 * pos + 2 && child < n; ++child)
      if (counters_[heap_[child]].count < counters_[heap_[smallest]].count) smallest = child;
    if (smallest == pos) return;
    swap_heap(pos, smallest);
    pos = smallest;
  }
}

void DecayingTopK::sift_up(std::uint32_t pos) {
  while (pos > 0) {
    const std::uint32_t parent = (pos - 1) / 2;
    if (counters_[heap_[parent]].count <= counters_[heap_[pos]].count) return;
    swap_heap(pos, parent);
    pos = parent;
  }
}

void DecayingTopK::add(std::uint64_t id, std::uint32_t table, std::string_view key, double now) {
  const double w = weight(now);
  total_ += w;
  std::uint32_t* slot = slot_of(id);
  if (*slot != 0) {
    Counter& c = counters_[*slot - 1];
    c.count += w;
    sift_down(c.heap_pos);
    return;
  }
  if (counters_.size() < capacity_) {
    const auto index = static_cast<std::uint32_t>(counters_.size());
    Counter c{};
    c.id = id;
    c.count = w;
    c.heap_pos = static_cast<std::uint32_t>(heap_.size());
    set_label(c, table, key);
    counters_.push_back(c);
    heap_.push_back(index);
    *slot = index + 1;
    sift_up(c.heap_pos);
    return;
  }
  // Full: the new key takes over the smallest counter and inherits its count
  // as the error bound (it may have been that key all along).
  const std::uint32_t index = heap_[0];
  Counter& c = counters_[index];
  erase_slot(c.id);
  c.error = c.count;
  c.count += w;
  c.id = id;
  set_label(c, table, key);
  *slot_of(id) = index + 1;
  sift_down(0);
}

void DecayingTopK::add_unkeyed(double now) {
  total_ += weight(now);
}

std::vector<DecayingTopK::Item> DecayingTopK::items(double now) const {
  const double f = decay(now);
  std::vector<Item> out;
  out.reserve(counters_.size());
  for (const Counter& c : counters_) {
    Item item;
    item.id = c.id;
    item.table = c.table;
    item.key.assign(c.key.data(), c.key_len);
    if (c.truncated) item.key += "...";
    item.count = c.count * f;
    item.error = c.error * f;
    out.push_back(std::move(item));
  }
  std::sort(out.begin(), out.end(), [](const Item& a, const Item& b) { return a.count > b.count; });
  return out;
}

double DecayingTopK::total(double now) const {
  return total_ * decay(now);
}

double DecayingTopK::floor(double now) const {
  if (counters_.size() < capacity_) return 0;
  return counters_[heap_[0]].count * decay(now);
}

std::size_t DecayingTopK::memory_bytes() const {
  return sizeof(*this) + counters_.capacity() * sizeof(Counter) +
         heap_.capacity() * sizeof(std::uint32_t) + slots_.capacity() * sizeof(std::uint32_t);
}

}  // namespace shardgate::router
