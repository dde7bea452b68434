// What a resharding job moves: one slice of the hashed keyspace from a source
// shard to a target shard, and the key ranges both own afterwards. Pure
// functions of the topology, so `shardctl reshard plan` and the job agree and
// the rules are table-tested.
//
// One shard owns one contiguous slice (router/topology.h), so every move
// leaves both shards contiguous:
//  - split: the upper part of a shard, from a boundary (default: its middle),
//    goes to a spare shard (key_range: none);
//  - merge: a whole shard goes to a neighbour, and becomes a spare;
//  - rebalance: the boundary between two neighbours moves;
//  - isolate: the one-point slice of a key's hash goes to a spare; its shard
//    keeps the parts on both sides (a shard may own several slices).
// Adding shards and rebalancing is spares plus splits and boundary moves.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "router/topology.h"

namespace shardgate::router {

enum class ReshardKind { Split, Merge, Rebalance, Isolate };

const char* reshard_kind_name(ReshardKind kind);

struct ReshardPlan {
  ReshardKind kind = ReshardKind::Split;
  std::uint32_t source = 0;  // shard indexes in the topology it was planned on
  std::uint32_t target = 0;
  KeyRange moving;                          // the slice whose rows move from source to target
  KeyRange source_after;                    // meaningless when source_spare_after
  std::vector<KeyRange> source_after_more;  // isolate: the part above the key
  bool source_spare_after = false;
  KeyRange target_after;
  // Hash-sharded tables: their rows in `moving` move. Range-sharded and
  // unsharded tables stay where they are.
  std::vector<std::string> tables;
};

// Splits `source` at `boundary` (the first hash value that moves; default:
// the middle of its range) into itself and the spare `target`.
Result<ReshardPlan> plan_split(const Topology& topology, std::string_view source,
                               std::string_view target, std::optional<std::uint64_t> boundary);
// Moves all of `source` into its neighbour `into`; source becomes a spare.
Result<ReshardPlan> plan_merge(const Topology& topology, std::string_view source,
                               std::string_view into);
// Moves the boundary between neighbours `left` and `right` (left's range ends
// where right's begins) to `boundary`; rows move toward whichever shrank less.
Result<ReshardPlan> plan_rebalance(const Topology& topology, std::string_view left,
                                   std::string_view right, std::uint64_t boundary);

// Gives the slice of `key`'s hash in hash-sharded `table` to the spare
// `target`.
Result<ReshardPlan> plan_isolate_key(const Topology& topology, std::string_view table,
                                     std::string_view key, std::string_view target);

// The source's ranges after the plan, as the config writes them ("none" when
// it gives everything away).
std::string source_ranges_after(const ReshardPlan& plan);

// A boundary in the notation of key ranges: leading hex nibbles ("80", "4c").
Result<std::uint64_t> parse_key_boundary(std::string_view text);
std::string format_key_boundary(std::uint64_t boundary);

// One line for operators: "split s0 (-80) at 40: 40-80 moves to s2".
std::string describe(const ReshardPlan& plan, const Topology& topology);

}  // namespace shardgate::router
