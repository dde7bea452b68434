// The heaviest keys of one shard's statement stream, in bounded memory:
// Space-Saving (Metwally, Agrawal, El Abbadi 2005) over exponentially decayed
// counts (forward decay, Cormode et al. 2009), so the counts are recent rates
// rather than totals since start.
//
// Guarantees (decayed counts throughout): every key whose count exceeds
// total / capacity is tracked; a tracked key's count overestimates its true
// count by at most its `error`. Memory is fixed by `capacity` whatever the
// number of distinct keys. Not thread-safe.
//
// Forward decay: an event at time t adds exp((t - L) / tau) for a landmark L,
// so no counter is touched when time passes; reading at `now` multiplies by
// exp(-(now - L) / tau). With a steady rate r, a key's decayed count tends to
// r * tau: rate = count / tau.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace shardgate::router {

class DecayingTopK {
 public:
  // Key text longer than this is kept truncated (shown with "...").
  static constexpr std::size_t kKeyBytes = 46;

  DecayingTopK(std::size_t capacity, double tau_seconds);

  // One statement for key `id` at `now` (seconds on a monotonic clock, never
  // going back). `table` and `key` label the key when it is first tracked.
  void add(std::uint64_t id, std::uint32_t table, std::string_view key, double now);
  // One statement on the shard that names no key (a scatter read, a keyless write).
  void add_unkeyed(double now);

  struct Item {
    std::uint64_t id = 0;
    std::uint32_t table = 0;
    std::string key;
    double count = 0;  // decayed to the `now` asked for
    double error = 0;
  };
  // Tracked keys decayed to `now`, heaviest first.
  std::vector<Item> items(double now) const;
  // Every statement of the shard, decayed to `now`.
  double total(double now) const;
  // The smallest tracked count (what an untracked key may have at most), 0
  // while there is room.
  double floor(double now) const;
  std::size_t capacity() const { return capacity_; }
  std::size_t size() const { return counters_.size(); }
  // Bytes this summary holds, fixed at construction.
  std::size_t memory_bytes() const;

 private:
  struct Counter {
    std::uint64_t id;
    double count;  // forward-decayed: relative to landmark_
    double error;
    std::uint32_t table;
    std::uint32_t heap_pos;
    std::uint8_t key_len;
    bool truncated;
    std::array<char, kKeyBytes> key;
  };

  double weight(double now);  // exp((now - landmark) / tau), rescaling first when it grows large
  double decay(double now) const;
  void set_label(Counter& c, std::uint32_t table, std::string_view key);
  std::uint32_t* slot_of(std::uint64_t id);
  void erase_slot(std::uint64_t id);
  void sift_down(std::uint32_t pos);
  void sift_up(std::uint32_t pos);
  void swap_heap(std::uint32_t a, std::uint32_t b);

  std::size_t capacity_;
  double tau_;
  double landmark_ = 0;
  bool started_ = false;
  double total_ = 0;
  std::vector<Counter> counters_;
  std::vector<std::uint32_t> heap_;   // counter indexes; the smallest count first
  std::vector<std::uint32_t> slots_;  // open addressing by id: counter index + 1, 0 = empty
};

}  // namespace shardgate::router
