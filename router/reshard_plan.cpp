#include "router/reshard_plan.h"

#include <algorithm>

#include "router/shard_map.h"

namespace shardgate::router {

namespace {

Result<std::uint32_t> find_shard(const Topology& t, std::string_view name) {
  for (std::uint32_t s = 0; s < t.shards.size(); ++s)
    if (t.shards[s].name == name) return s;
  std::string known;
  for (const auto& s : t.shards) known += (known.empty() ? "" : ", ") + s.name;
  return make_error("no shard is named '" + std::string(name) + "' (the shards are " + known + ")");
}

// The exclusive end of a range as a 65-bit value, so the last slice compares.
unsigned __int128 end_of(const KeyRange& r) {
  return r.end_is_max ? static_cast<unsigned __int128>(1) << 64 : r.end;
}

std::vector<std::string> moving_tables(const Topology& t) {
  std::vector<std::string> out;
  for (const auto& table : t.sharding.tables)
    if (table.strategy == ShardStrategy::Hash) out.push_back(table.name);
  return out;
}

Result<void> check_owner(const Topology& t, std::uint32_t s, const char* role) {
  if (t.shards[s].spare)
    return make_error(std::string(role) + " shard " + t.shards[s].name +
                      " is a spare (key_range: none) and owns no keys");
  if (!t.shards[s].more_ranges.empty())
    return make_error(std::string(role) + " shard " + t.shards[s].name + " owns several slices (" +
                      format_shard_ranges(t.shards[s]) +
                      "): split, merge and rebalance move shards of one slice");
  return {};
}

Result<void> check_hash_tables(const Topology& t) {
  if (moving_tables(t).empty())
    return make_error(
        "the cluster has no hash-sharded table, so no rows would move: resharding moves "
        "slices of the hashed keyspace (range-sharded tables move by editing their ranges)");
  return {};
}

}  // namespace

std::string format_key_boundary(std::uint64_t boundary) {
  std::string text = format_key_range({boundary, 0, true});
  text.pop_back();  // the '-' of an open end
  return text.empty() ? "0" : text;
}

const char* reshard_kind_name(ReshardKind kind) {
  switch (kind) {
    case ReshardKind::Split:
      return "split";
    case ReshardKind::Merge:
      return "merge";
    case ReshardKind::Rebalance:
      return "rebalance";
    case ReshardKind::Isolate:
      return "isolate";
  }
  return "?";
}

Result<std::uint64_t> parse_key_boundary(std::string_view text) {
  if (text.empty()) return make_error("the boundary is empty: write leading hex digits (\"80\")");
  auto r = parse_key_range(std::string(text) + "-");
  if (!r)
    return make_error("boundary '" + std::string(text) +
                      "': write leading hex digits of "
                      "the 64-bit keyspace (\"80\" is its middle)");
  return r->start;
}

Result<ReshardPlan> plan_split(const Topology& t, std::string_view source_name,
                               std::string_view target_name,
                               std::optional<std::uint64_t> boundary) {
  if (auto ok = check_hash_tables(t); !ok) return ok.error();
  auto source = find_shard(t, source_name);
  if (!source) return source.error();
  auto target = find_shard(t, target_name);
  if (!target) return target.error();
  if (auto ok = check_owner(t, *source, "source"); !ok) return ok.error();
  if (!t.shards[*target].spare)
    return make_error("target shard " + t.shards[*target].name + " owns " +
                      format_key_range(t.shards[*target].key_range) +
                      " already: a split moves rows to a spare shard (key_range: none); "
                      "add one with `shardctl sandbox up --spare-shards N` or use rebalance");
  const KeyRange& r = t.shards[*source].key_range;
  const unsigned __int128 end = end_of(r);
  const std::uint64_t at =
      boundary ? *boundary : static_cast<std::uint64_t>(r.start + (end - r.start) / 2);
  if (at <= r.start || at >= end)
    return make_error("boundary " + format_key_boundary(at) + " is not inside shard " +
                      t.shards[*source].name + "'s range " + format_key_range(r));
  ReshardPlan p;
  p.kind = ReshardKind::Split;
  p.source = *source;
  p.target = *target;
  p.moving = {at, r.end, r.end_is_max};
  p.source_after = {r.start, at, false};
  p.target_after = p.moving;
  p.tables = moving_tables(t);
  return p;
}

Result<ReshardPlan> plan_merge(const Topology& t, std::string_view source_name,
                               std::string_view into_name) {
  if (auto ok = check_hash_tables(t); !ok) return ok.error();
  auto source = find_shard(t, source_name);
  if (!source) return source.error();
  auto into = find_shard(t, into_name);
  if (!into) return into.error();
  if (*source == *into) return make_error("a shard cannot merge into itself");
  if (auto ok = check_owner(t, *source, "source"); !ok) return ok.error();
  if (auto ok = check_owner(t, *into, "target"); !ok) return ok.error();
  if (*source == t.sharding.default_shard)
    return make_error("shard " + t.shards[*source].name +
                      " is the default shard (unsharded tables live there) and cannot be "
                      "merged away; merge its neighbour into it instead");
  const KeyRange& s = t.shards[*source].key_range;
  const KeyRange& i = t.shards[*into].key_range;
  ReshardPlan p;
  p.kind = ReshardKind::Merge;
  p.source = *source;
  p.target = *into;
  p.moving = s;
  p.source_spare_after = true;
  if (end_of(i) == s.start)
    p.target_after = {i.start, s.end, s.end_is_max};
  else if (end_of(s) == i.start)
    p.target_after = {s.start, i.end, i.end_is_max};
  else
    return make_error("shards " + t.shards[*source].name + " (" + format_key_range(s) + ") and " +
                      t.shards[*into].name + " (" + format_key_range(i) +
                      ") are not neighbours in the keyspace: only adjacent ranges merge");
  p.tables = moving_tables(t);
  return p;
}

Result<ReshardPlan> plan_rebalance(const Topology& t, std::string_view left_name,
                                   std::string_view right_name, std::uint64_t boundary) {
  if (auto ok = check_hash_tables(t); !ok) return ok.error();
  auto left = find_shard(t, left_name);
  if (!left) return left.error();
  auto right = find_shard(t, right_name);
  if (!right) return right.error();
  if (auto ok = check_owner(t, *left, "left"); !ok) return ok.error();
  if (auto ok = check_owner(t, *right, "right"); !ok) return ok.error();
  const KeyRange& l = t.shards[*left].key_range;
  const KeyRange& r = t.shards[*right].key_range;
  if (l.end_is_max || l.end != r.start)
    return make_error("shard " + t.shards[*left].name + " (" + format_key_range(l) +
                      ") does not end where " + t.shards[*right].name + " (" + format_key_range(r) +
                      ") begins: name the left neighbour first");
  if (boundary <= l.start || boundary >= end_of(r) || boundary == l.end)
    return make_error("the new boundary must lie inside " + format_key_range(l) + " or " +
                      format_key_range(r) + " and differ from the current one");
  ReshardPlan p;
  p.kind = ReshardKind::Rebalance;
  p.source_after = {};
  if (boundary < l.end) {  // left shrinks: its top moves right
    p.source = *left;
    p.target = *right;
    p.moving = {boundary, l.end, false};
    p.source_after = {l.start, boundary, false};
    p.target_after = {boundary, r.end, r.end_is_max};
  } else {  // right shrinks: its bottom moves left
    p.source = *right;
    p.target = *left;
    p.moving = {r.start, boundary, false};
    p.source_after = {boundary, r.end, r.end_is_max};
    p.target_after = {l.start, boundary, false};
  }
  p.tables = moving_tables(t);
  return p;
}

Result<ReshardPlan> plan_isolate_key(const Topology& t, std::string_view table_name,
                                     std::string_view key_text, std::string_view target_name) {
  const ShardedTable* table = nullptr;
  for (const auto& st : t.sharding.tables)
    if (st.name == table_name) table = &st;
  if (!table) return make_error("table " + std::string(table_name) + " is not sharded");
  if (table->strategy != ShardStrategy::Hash)
    return make_error("table " + table->name +
                      " is range-sharded: give the key a rule of its own in the config instead");
  auto key = key_from_text(*table, key_text);
  if (!key) return key.error();
  auto source = shard_of(*table, *key, t);
  if (!source) return source.error();
  auto target = find_shard(t, target_name);
  if (!target) return target.error();
  if (!t.shards[*target].spare)
    return make_error("target shard " + t.shards[*target].name +
                      " is not a spare: a key is isolated into a spare shard (key_range: none)");
  const std::uint64_t h = key_hash(*key);
  const ShardInfo& s = t.shards[*source];
  std::vector<KeyRange> kept{s.key_range};
  kept.insert(kept.end(), s.more_ranges.begin(), s.more_ranges.end());
  std::vector<KeyRange> after;
  for (const KeyRange& r : kept) {
    if (!r.contains(h)) {
      after.push_back(r);
      continue;
    }
    if (h > r.start) after.push_back({r.start, h, false});
    const bool last = h == UINT64_MAX;
    if (!last && (r.end_is_max || h + 1 < r.end)) after.push_back({h + 1, r.end, r.end_is_max});
  }
  if (after.empty())
    return make_error("key " + std::string(key_text) + " of " + table->name + " has shard " +
                      s.name + " to itself already");
  std::sort(after.begin(), after.end(),
            [](const KeyRange& a, const KeyRange& b) { return a.start < b.start; });
  ReshardPlan p;
  p.kind = ReshardKind::Isolate;
  p.source = *source;
  p.target = *target;
  p.moving = {h, h == UINT64_MAX ? 0 : h + 1, h == UINT64_MAX};
  p.source_after = after.front();
  p.source_after_more.assign(after.begin() + 1, after.end());
  p.target_after = p.moving;
  p.tables = moving_tables(t);
  return p;
}

std::string source_ranges_after(const ReshardPlan& p) {
  if (p.source_spare_after) return std::string(kSpareKeyRange);
  std::vector<KeyRange> all{p.source_after};
  all.insert(all.end(), p.source_after_more.begin(), p.source_after_more.end());
  return format_key_ranges(all);
}

std::string describe(const ReshardPlan& p, const Topology& t) {
  const std::string& source = t.shards[p.source].name;
  const std::string& target = t.shards[p.target].name;
  std::string out =
      std::string(reshard_kind_name(p.kind)) + ": rows of " + format_key_range(p.moving) +
      " move from " + source + " to " + target + "; " + source + " then owns " +
      (p.source_spare_after ? std::string("nothing (spare)") : source_ranges_after(p)) + ", " +
      target + " owns " + format_key_range(p.target_after);
  return out;
}

}  // namespace shardgate::router
