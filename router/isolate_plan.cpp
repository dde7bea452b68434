#include "router/isolate_plan.h"

#include <algorithm>
#include <limits>

#include "router/shard_map.h"

namespace shardgate::router {
namespace {

Result<IsolatePlan> plan_hash(const Topology& t, const ShardedTable& table, const KeyValue& key,
                              IsolatePlan plan, std::string new_shard) {
  const std::uint64_t h = key_hash(key);
  auto shard = shard_of(table, key, t);
  if (!shard) return shard.error();
  const ShardInfo& source = t.shards[*shard];
  // The slice of the shard that holds the key (a shard may own several).
  KeyRange range = source.key_range;
  for (const KeyRange& r : source.more_ranges)
    if (r.contains(h)) range = r;
  plan.hash = h;
  plan.source = source.name;
  plan.source_range = range;
  const bool last = h == std::numeric_limits<std::uint64_t>::max();
  const bool below = h > range.start;
  const bool above = !last && (range.end_is_max || h + 1 < range.end);
  if (!below && !above)
    return make_error("key " + plan.key + " of " + plan.table + " already has shard " +
                      source.name + " to itself (key range " + format_key_range(range) + ")");
  if (below) {
    PlannedSlice lo;
    lo.shard = source.name;
    lo.range = {range.start, h, false};
    plan.slices.push_back(lo);
  }
  PlannedSlice alone;
  alone.shard = std::move(new_shard);
  alone.is_new = true;
  alone.holds_key = true;
  alone.range = {h, last ? 0 : h + 1, last};
  plan.slices.push_back(alone);
  if (above) {
    PlannedSlice hi;
    // The source keeps its name for the lower slice when there is one.
    hi.shard = below ? source.name + "-hi" : source.name;
    hi.is_new = below;
    hi.range = {h + 1, range.end, range.end_is_max};
    plan.slices.push_back(hi);
  }
  // Every hash-sharded table with the same key type hashes this value to
  // the same place: its rows of the value move as well.
  for (const ShardedTable& other : t.sharding.tables)
    if (other.strategy == ShardStrategy::Hash && other.key_type == table.key_type)
      plan.moving_tables.push_back(other.name + "." + other.column);
  return plan;
}

Result<IsolatePlan> plan_range(const Topology& t, const ShardedTable& table, std::int64_t k,
                               IsolatePlan plan, std::string new_shard) {
  const auto rule = std::find_if(table.ranges.begin(), table.ranges.end(), [&](const RangeRule& r) {
    return (!r.has_from || k >= r.from) && (!r.has_to || k < r.to);
  });
  if (rule == table.ranges.end())
    return make_error("no range of " + table.name + " covers key " + plan.key);
  plan.source = t.shards[rule->shard].name;
  const bool last = k == std::numeric_limits<std::int64_t>::max();
  const bool below = !rule->has_from || k > rule->from;
  const bool above = !last && (!rule->has_to || k + 1 < rule->to);
  if (!below && !above)
    return make_error("key " + plan.key + " of " + plan.table + " already has a range to itself");
  auto slice = [&](std::string shard, bool is_new, bool holds, std::optional<std::int64_t> from,
                   std::optional<std::int64_t> to) {
    PlannedSlice s;
    s.shard = std::move(shard);
    s.is_new = is_new;
    s.holds_key = holds;
    s.from = from;
    s.to = to;
    plan.slices.push_back(std::move(s));
  };
  const std::optional<std::int64_t> from =
      rule->has_from ? std::optional<std::int64_t>(rule->from) : std::nullopt;
  const std::optional<std::int64_t> to =
      rule->has_to ? std::optional<std::int64_t>(rule->to) : std::nullopt;
  // Range rules may send several ranges to one shard: the source keeps both sides.
  if (below) slice(plan.source, false, false, from, k);
  slice(std::move(new_shard), true, true, k,
        last ? std::nullopt : std::optional<std::int64_t>(k + 1));
  if (above) slice(plan.source, false, false, k + 1, to);
  return plan;
}

}  // namespace

Result<IsolatePlan> plan_isolate(const Topology& t, std::string_view table_name,
                                 std::string_view key_text, std::string new_shard) {
  const auto table = std::find_if(t.sharding.tables.begin(), t.sharding.tables.end(),
                                  [&](const ShardedTable& st) { return st.name == table_name; });
  if (table == t.sharding.tables.end())
    return make_error("'" + std::string(table_name) +
                      "' is not a sharded table (shardctl topology lists them)");
  auto key = key_from_text(*table, key_text);
  if (!key) return key.error();
  IsolatePlan plan;
  plan.table = table->name;
  plan.column = table->column;
  plan.key = key->type == KeyType::Integer ? std::to_string(key->integer) : key->text;
  plan.strategy = table->strategy;
  if (new_shard.empty()) new_shard = table->name + "-" + plan.key;
  for (const ShardInfo& s : t.shards)
    if (s.name == new_shard)
      return make_error("shard '" + new_shard + "' exists already: choose another --new-shard");
  if (table->strategy == ShardStrategy::Range)
    return plan_range(t, *table, key->integer, std::move(plan), std::move(new_shard));
  return plan_hash(t, *table, *key, std::move(plan), std::move(new_shard));
}

}  // namespace shardgate::router
