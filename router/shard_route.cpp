#include "router/shard_route.h"

#include <algorithm>

#include "router/shard_map.h"

namespace shardgate::router {
namespace {

Result<KeyValue> key_of(const KeyExpr& k, std::span<const ParamValue> params) {
  const ShardedTable& table = *k.table;
  if (k.kind == KeyExpr::Kind::Literal) return key_from_text(table, k.literal);
  if (k.param >= params.size())
    return make_error("the statement's sharding key " + table.name + "." + table.column +
                      " is parameter " + std::to_string(k.param + 1) + ", but only " +
                      std::to_string(params.size()) + " parameters are bound");
  const ParamValue& p = params[k.param];
  if (p.form == ParamValue::Form::Null)
    return make_error("the sharding key " + table.name + "." + table.column +
                      " is bound to NULL: no shard holds NULL keys");
  if (p.form == ParamValue::Form::Text || table.key_type == KeyType::Text)
    return key_from_text(table, p.bytes);
  const std::string_view b = p.bytes;
  if (b.size() != 2 && b.size() != 4 && b.size() != 8)
    return make_error("the sharding key " + table.name + "." + table.column +
                      " is bound in binary as " + std::to_string(b.size()) +
                      " bytes, which is no integer type: bind it as int2, int4, int8 or text");
  std::uint64_t u = 0;
  for (char c : b) u = (u << 8) | static_cast<unsigned char>(c);
  const int shift = 64 - 8 * static_cast<int>(b.size());
  KeyValue key;
  key.type = KeyType::Integer;
  // Sign-extend from the sent width.
  key.integer = static_cast<std::int64_t>(u << shift) >> shift;
  return key;
}

std::string shard_list(const std::vector<std::uint32_t>& shards, const Topology& topology) {
  std::string out;
  for (std::uint32_t s : shards) out += (out.empty() ? "" : ", ") + topology.shards[s].name;
  return out;
}

// Spare shards hold no rows of their own yet (a resharding copy may be
// filling them): keyless statements must not see them.
std::vector<std::uint32_t> every_shard(const Topology& topology) {
  std::vector<std::uint32_t> all;
  all.reserve(topology.shards.size());
  for (std::uint32_t s = 0; s < topology.shards.size(); ++s)
    if (!topology.shards[s].spare) all.push_back(s);
  return all;
}

}  // namespace

Result<ShardTargets> resolve_shards(const ShardAnalysis& analysis,
                                    std::span<const ParamValue> params, const Topology& topology,
                                    bool with_keys) {
  if (analysis.refusal) return make_error(*analysis.refusal);
  ShardTargets out;
  const std::uint32_t home = topology.sharding.default_shard;
  switch (analysis.scope) {
    case ShardScope::None:
      out.shards = {home};
      return out;
    case ShardScope::Reference:
      if (analysis.writes_reference) {
        out.shards = every_shard(topology);
        out.every_shard = true;
      } else {
        out.shards = {home};
      }
      return out;
    case ShardScope::AllShards:
      if (analysis.writes && !topology.sharding.allow_scatter_writes)
        return make_error("the statement writes sharded table " + analysis.keyless->name +
                          " without its sharding key " + analysis.keyless->column +
                          ", so it would change every shard: add WHERE " +
                          analysis.keyless->column +
                          " = ..., or allow it with sharding.allow_scatter_writes");
      if (analysis.writes_reference)
        return make_error("the statement writes a reference table from sharded rows");
      out.shards = every_shard(topology);
      out.every_shard = true;
      break;
    case ShardScope::Keys:
      if (analysis.writes_reference)
        return make_error("the statement writes a reference table from sharded rows");
      for (const KeyExpr& k : analysis.keys) {
        auto key = key_of(k, params);
        if (!key) return key.error();
        auto shard = shard_of(*k.table, *key, topology);
        if (!shard) return shard.error();
        out.shards.push_back(*shard);
        if (!with_keys) continue;
        const auto table = static_cast<std::uint32_t>(k.table - topology.sharding.tables.data());
        out.keys.push_back({table, std::move(*key), *shard});
      }
      std::sort(out.shards.begin(), out.shards.end());
      out.shards.erase(std::unique(out.shards.begin(), out.shards.end()), out.shards.end());
      if (analysis.needs_one_shard && out.shards.size() > 1)
        return make_error(
            "the statement joins or combines rows whose sharding keys live on "
            "different shards (" +
            shard_list(out.shards, topology) +
            "), and no single shard can answer it: query each key separately");
      break;
  }
  if (!analysis.unsharded_table.empty() && (out.shards.size() != 1 || out.shards.front() != home))
    return make_error("the statement uses table " + analysis.unsharded_table +
                      ", which is not sharded and lives on shard " + topology.shards[home].name +
                      " only, together with sharded rows on shard " +
                      shard_list(out.shards, topology) +
                      ": declare it a reference table or query it separately");
  return out;
}

Result<std::vector<std::uint32_t>> shards_of_keys(const ShardAnalysis& analysis,
                                                  std::span<const ParamValue> params,
                                                  const Topology& topology) {
  std::vector<std::uint32_t> out;
  out.reserve(analysis.keys.size());
  for (const KeyExpr& k : analysis.keys) {
    auto key = key_of(k, params);
    if (!key) return key.error();
    auto shard = shard_of(*k.table, *key, topology);
    if (!shard) return shard.error();
    out.push_back(*shard);
  }
  return out;
}

}  // namespace shardgate::router
