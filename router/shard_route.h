// The shards one execution of a statement needs: its ShardAnalysis with the
// parameters of this execution bound. Pure; refusals come back as errors whose
// message the session sends to the client as is.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "router/shard_keys.h"
#include "router/shard_map.h"
#include "router/topology.h"

namespace shardgate::router {

// A bound parameter as the protocol delivered it. Binary integers are
// big-endian of 2, 4 or 8 bytes (PostgreSQL's int2/int4/int8 send format;
// the MySQL session converts its own binary values to text).
struct ParamValue {
  enum class Form : std::uint8_t { Null, Text, Binary };
  Form form = Form::Null;
  std::string_view bytes;
};

// One sharding-key value of the statement and where it lives.
struct ResolvedKey {
  std::uint32_t table = 0;  // index in Topology::sharding.tables
  KeyValue value;
  std::uint32_t shard = 0;
};

struct ShardTargets {
  std::vector<std::uint32_t> shards;  // sorted, no duplicates, never empty
  bool every_shard = false;           // the statement has no key: all shards take it
  std::vector<ResolvedKey> keys;      // ShardScope::Keys: each key, in statement order
};

// with_keys: fill ShardTargets::keys (hot-key counting and resharding want
// them; routing alone does not, and skips the allocation).
Result<ShardTargets> resolve_shards(const ShardAnalysis& analysis,
                                    std::span<const ParamValue> params, const Topology& topology,
                                    bool with_keys = true);

// The shard of each of analysis.keys, in order (a multi-row INSERT: the
// shard of each row).
Result<std::vector<std::uint32_t>> shards_of_keys(const ShardAnalysis& analysis,
                                                  std::span<const ParamValue> params,
                                                  const Topology& topology);

}  // namespace shardgate::router
