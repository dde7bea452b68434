// `shardctl reshard isolate`: the layout that gives one sharding-key value
// (a hot key) a shard of its own, as a plan for online resharding to carry
// out. Pure: (topology, table, key) -> plan.
//
// Hash sharding: the source shard's key range is cut around the key's
// 64-bit hash into up to three slices; the middle one, [hash, hash + 1),
// holds the key alone (with every other table's rows of the same key value,
// which keeps joins on the key on one shard). Range sharding: the table's
// rule that covers the key is cut into [from, key), [key, key + 1), [key + 1, to).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "router/topology.h"

namespace shardgate::router {

struct PlannedSlice {
  std::string shard;  // an existing shard's name, or a new one
  bool is_new = false;
  bool holds_key = false;
  KeyRange range;                        // Hash
  std::optional<std::int64_t> from, to;  // Range: [from, to), unbounded when absent
};

struct IsolatePlan {
  std::string table, column, key;
  ShardStrategy strategy = ShardStrategy::Hash;
  std::uint64_t hash = 0;            // Hash: the key's place in the keyspace
  std::string source;                // the shard that holds the key today
  KeyRange source_range;             // Hash: its slice today
  std::vector<PlannedSlice> slices;  // what replaces the source's slice (Hash) or rule (Range)
  std::vector<std::string> moving_tables;  // Hash: tables whose rows of this value move too
};

// new_shard: the isolated slice's shard name ("" -> "<table>-<key>").
Result<IsolatePlan> plan_isolate(const Topology& topology, std::string_view table,
                                 std::string_view key, std::string new_shard);

}  // namespace shardgate::router
