#include "router/hot_keys.h"

#include <algorithm>
#include <charconv>
#include <unordered_map>

namespace shardgate::router {
namespace {

// splitmix64's finalizer: spreads the table into every bit of the id.
std::uint64_t mix(std::uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

struct Merged {
  HotKey key;
  double count = 0;
  double error = 0;
  double floors_present = 0;  // floors of the worker summaries that track it
};

bool passes(const HotKey& k, const HotKeyThresholds& t, double factor) {
  if (t.rate > 0 && k.rate >= t.rate * factor) return true;
  return k.share >= t.share * factor && k.rate >= t.min_rate * factor;
}

}  // namespace

std::uint64_t hot_key_id(std::uint32_t table, const KeyValue& key) {
  return mix(key_hash(key) + 0x9e3779b97f4a7c15ULL * (table + 1));
}

std::string key_label(const KeyValue& key) {
  return key.type == KeyType::Integer ? std::to_string(key.integer) : key.text;
}

DecayingTopK& HotKeyRecorder::shard(std::uint32_t s) {
  while (shards_.size() <= s) shards_.emplace_back(settings_.capacity, settings_.window_seconds);
  return shards_[s];
}

void HotKeyRecorder::record_key(std::uint32_t shard_index, std::uint32_t table, const KeyValue& key,
                                double now) {
  const std::uint64_t id = hot_key_id(table, key);
  std::lock_guard lock(mutex_);
  if (key.type == KeyType::Integer) {
    // Formatted only for the summary's label; to_chars avoids an allocation.
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, key.integer).ptr;
    shard(shard_index).add(id, table, std::string_view(digits, end - digits), now);
  } else {
    shard(shard_index).add(id, table, key.text, now);
  }
}

void HotKeyRecorder::record_unkeyed(std::uint32_t shard_index, double now) {
  std::lock_guard lock(mutex_);
  shard(shard_index).add_unkeyed(now);
}

std::vector<HotKeyRecorder::ShardSample> HotKeyRecorder::sample(double now) const {
  std::lock_guard lock(mutex_);
  std::vector<ShardSample> out(shards_.size());
  for (std::size_t s = 0; s < shards_.size(); ++s) {
    out[s].total = shards_[s].total(now);
    out[s].floor = shards_[s].floor(now);
    out[s].items = shards_[s].items(now);
    out[s].memory_bytes = shards_[s].memory_bytes();
  }
  return out;
}

HotKeyReport evaluate_hot_keys(std::span<const std::vector<HotKeyRecorder::ShardSample>> per_worker,
                               const HotKeySettings& settings, const HotKeyThresholds& thresholds,
                               const Topology& topology, const HotKeyReport& previous,
                               std::size_t top) {
  HotKeyReport out;
  const double tau = settings.window_seconds > 0 ? settings.window_seconds : 1.0;
  std::vector<double> shard_totals(topology.shards.size(), 0.0);
  std::vector<double> shard_floors(topology.shards.size(), 0.0);
  std::unordered_map<std::uint64_t, Merged> merged;
  for (const auto& worker : per_worker) {
    for (std::uint32_t s = 0; s < worker.size(); ++s) {
      const auto& sample = worker[s];
      out.memory_bytes += sample.memory_bytes;
      out.max_shard_memory_bytes = std::max(out.max_shard_memory_bytes, sample.memory_bytes);
      if (s >= shard_totals.size()) {
        shard_totals.resize(s + 1, 0.0);
        shard_floors.resize(s + 1, 0.0);
      }
      shard_totals[s] += sample.total;
      shard_floors[s] += sample.floor;
      for (const auto& item : sample.items) {
        Merged& m = merged[item.id];
        if (m.key.table.empty()) {
          m.key.id = item.id;
          m.key.shard = s;
          m.key.table = item.table < topology.sharding.tables.size()
                            ? topology.sharding.tables[item.table].name
                            : "table#" + std::to_string(item.table);
          m.key.key = item.key;
        }
        m.count += item.count;
        m.error += item.error;
        m.floors_present += sample.floor;
      }
    }
  }
  double total = 0;
  for (double t : shard_totals) total += t;
  out.total_rate = total / tau;
  double busiest = 0;
  for (std::uint32_t s = 0; s < shard_totals.size(); ++s) {
    ShardLoad load;
    load.shard = s;
    load.rate = shard_totals[s] / tau;
    load.share = total > 0 ? shard_totals[s] / total : 0;
    busiest = std::max(busiest, load.rate);
    out.shards.push_back(load);
  }
  const std::size_t shard_count = std::max<std::size_t>(1, shard_totals.size());
  out.skew = out.total_rate > 0 ? busiest / (out.total_rate / shard_count) : 0;

  std::vector<HotKey> keys;
  keys.reserve(merged.size());
  for (auto& [id, m] : merged) {
    HotKey k = std::move(m.key);
    // A worker whose full summary does not track the key may have seen it
    // up to that summary's floor times.
    const double unseen = shard_floors[k.shard] - m.floors_present;
    k.rate = m.count / tau;
    k.rate_error = (m.error + std::max(0.0, unseen)) / tau;
    k.share = total > 0 ? m.count / total : 0;
    k.shard_share = shard_totals[k.shard] > 0 ? m.count / shard_totals[k.shard] : 0;
    const bool was_hot = std::binary_search(previous.hot.begin(), previous.hot.end(), id);
    k.hot = passes(k, thresholds, was_hot ? thresholds.cool : 1.0);
    if (k.hot) {
      out.hot.push_back(id);
      if (!was_hot) out.became_hot.push_back(k);
    }
    keys.push_back(std::move(k));
  }
  std::sort(out.hot.begin(), out.hot.end());
  for (const HotKey& before : previous.keys) {
    if (!before.hot || std::binary_search(out.hot.begin(), out.hot.end(), before.id)) continue;
    auto it =
        std::find_if(keys.begin(), keys.end(), [&](const HotKey& k) { return k.id == before.id; });
    HotKey cooled = it != keys.end() ? *it : before;
    if (it == keys.end()) cooled.rate = cooled.share = cooled.shard_share = 0;
    cooled.hot = false;
    out.cooled.push_back(std::move(cooled));
  }
  std::sort(keys.begin(), keys.end(), [](const HotKey& a, const HotKey& b) {
    return a.rate != b.rate ? a.rate > b.rate : a.id < b.id;
  });
  for (std::size_t i = 0; i < keys.size(); ++i)
    if (i < top || keys[i].hot) out.keys.push_back(std::move(keys[i]));
  return out;
}

}  // namespace shardgate::router
