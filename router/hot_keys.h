// Hot-key detection: which (table, sharding-key value) pairs take an outsized
// share of the statements, per shard and overall, and how evenly the shards
// are loaded.
//
// Each worker thread records into its own HotKeyRecorder (one DecayingTopK
// per shard, under a mutex only the periodic reader contends for). The
// reader merges every worker's samples with evaluate_hot_keys(), a pure
// function that applies the thresholds with hysteresis, so detection is
// table-tested without threads or clocks.
#pragma once

#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "router/decaying_top_k.h"
#include "router/shard_map.h"
#include "router/topology.h"

namespace shardgate::router {

struct HotKeySettings {
  double window_seconds = 1.0;  // decay time constant: rates are over about this long
  std::size_t capacity = 256;   // keys tracked per shard and worker
};

struct HotKeyThresholds {
  double share = 0.05;   // of all statements the proxy routed
  double rate = 0;       // statements per second; 0: no rate threshold
  double min_rate = 50;  // a key below this rate is never hot by share alone
  double cool = 0.8;     // a hot key cools below this fraction of the thresholds
};

// The identity of one key of one sharded table (its index in
// Topology::sharding.tables): the keyspace hash of the value mixed with the
// table, so equal values of different tables are different keys.
std::uint64_t hot_key_id(std::uint32_t table, const KeyValue& key);

// The key as shown to operators: an integer in decimal, text as is.
std::string key_label(const KeyValue& key);

// One worker's statements by shard.
class HotKeyRecorder {
 public:
  explicit HotKeyRecorder(HotKeySettings settings) : settings_(settings) {}

  void record_key(std::uint32_t shard, std::uint32_t table, const KeyValue& key, double now);
  void record_unkeyed(std::uint32_t shard, double now);

  struct ShardSample {
    double total = 0;  // decayed statement count of the shard
    double floor = 0;  // the most an untracked key may have
    std::vector<DecayingTopK::Item> items;
    std::size_t memory_bytes = 0;
  };
  // Every shard seen so far, decayed to `now`, by shard index.
  std::vector<ShardSample> sample(double now) const;

 private:
  DecayingTopK& shard(std::uint32_t s);

  HotKeySettings settings_;
  mutable std::mutex mutex_;
  std::vector<DecayingTopK> shards_;
};

// What the data path holds of detection: its worker's recorder and the ids
// the last report found hot (sorted).
struct HotKeyTap {
  HotKeyRecorder* recorder = nullptr;  // null: detection is off
  std::span<const std::uint64_t> hot;
};

struct HotKey {
  std::uint64_t id = 0;
  std::uint32_t shard = 0;
  std::string table;
  std::string key;
  double rate = 0;         // statements per second
  double rate_error = 0;   // the rate may be overestimated by up to this
  double share = 0;        // of every shard's statements
  double shard_share = 0;  // of its shard's statements
  bool hot = false;
};

struct ShardLoad {
  std::uint32_t shard = 0;
  double rate = 0;   // statements per second
  double share = 0;  // of every shard's statements
};

struct HotKeyReport {
  std::vector<HotKey> keys;  // heaviest first, at most the top asked for, hot ones always
  std::vector<ShardLoad> shards;
  double total_rate = 0;
  // The busiest shard's rate over the mean shard rate: 1 is even, N is all
  // on one of N shards; 0 without traffic.
  double skew = 0;
  std::vector<std::uint64_t> hot;          // ids of hot keys, sorted
  std::vector<HotKey> became_hot;          // since the previous report
  std::vector<HotKey> cooled;              // hot in the previous report, no longer
  std::size_t memory_bytes = 0;            // every worker's summaries
  std::size_t max_shard_memory_bytes = 0;  // the largest one shard holds on one worker
};

// Merges the workers' samples (rates over settings.window_seconds) and
// applies the thresholds; `previous` is the last report (hysteresis and
// transitions). `top` bounds the keys listed.
HotKeyReport evaluate_hot_keys(std::span<const std::vector<HotKeyRecorder::ShardSample>> per_worker,
                               const HotKeySettings& settings, const HotKeyThresholds& thresholds,
                               const Topology& topology, const HotKeyReport& previous,
                               std::size_t top);

}  // namespace shardgate::router
