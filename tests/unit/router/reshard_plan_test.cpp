#include "router/reshard_plan.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "router/shard_map.h"
#include "tests/unit/router/shard_fixture.h"

namespace shardgate::router {
namespace {

using testing::four_shards;
using testing::ok;

// four_shards plus a spare s4 that owns nothing.
Topology with_spare() {
  Topology t = four_shards();
  ShardInfo spare;
  spare.name = "s4";
  spare.spare = true;
  spare.key_range = {0, 0, false};
  t.shards.push_back(spare);
  return t;
}

// The owners' ranges after the plan, in keyspace order, tile the keyspace.
void expect_tiles_after(const Topology& t, const ReshardPlan& p) {
  std::vector<KeyRange> ranges;
  for (std::uint32_t s = 0; s < t.shards.size(); ++s) {
    if (s == p.source) {
      if (!p.source_spare_after) ranges.push_back(p.source_after);
    } else if (s == p.target) {
      ranges.push_back(p.target_after);
    } else if (!t.shards[s].spare) {
      ranges.push_back(t.shards[s].key_range);
    }
  }
  std::sort(ranges.begin(), ranges.end(),
            [](const KeyRange& a, const KeyRange& b) { return a.start < b.start; });
  EXPECT_TRUE(check_key_ranges_tile(ranges));
}

TEST(ReshardPlan, SplitMovesTheUpperHalfToTheSpare) {
  const Topology t = with_spare();  // s1 owns 40-80
  const ReshardPlan p = ok(plan_split(t, "s1", "s4", std::nullopt));
  EXPECT_EQ(p.source, 1u);
  EXPECT_EQ(p.target, 4u);
  EXPECT_EQ(format_key_range(p.moving), "60-80");
  EXPECT_EQ(format_key_range(p.source_after), "40-60");
  EXPECT_EQ(format_key_range(p.target_after), "60-80");
  EXPECT_FALSE(p.source_spare_after);
  EXPECT_EQ(p.tables, (std::vector<std::string>{"users", "orders", "accounts"}))
      << "range-sharded tables do not move with the keyspace";
  expect_tiles_after(t, p);
  EXPECT_EQ(describe(p, t),
            "split: rows of 60-80 move from s1 to s4; s1 then owns 40-60, s4 owns 60-80");
}

TEST(ReshardPlan, SplitOfTheLastShardKeepsTheOpenEnd) {
  const Topology t = with_spare();
  const ReshardPlan p = ok(plan_split(t, "s3", "s4", *parse_key_boundary("f0")));
  EXPECT_EQ(format_key_range(p.moving), "f0-");
  EXPECT_EQ(format_key_range(p.source_after), "c0-f0");
  EXPECT_TRUE(p.target_after.end_is_max);
  expect_tiles_after(t, p);
}

TEST(ReshardPlan, SplitRefusals) {
  const Topology t = with_spare();
  auto refused = [](const Result<ReshardPlan>& r, const std::string& part) {
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find(part), std::string::npos) << r.error().message();
  };
  refused(plan_split(t, "s1", "s2", std::nullopt), "owns 80-c0 already");
  refused(plan_split(t, "s4", "s1", std::nullopt), "is a spare");
  refused(plan_split(t, "s9", "s4", std::nullopt), "no shard is named 's9'");
  refused(plan_split(t, "s1", "s4", *parse_key_boundary("40")), "not inside");
  refused(plan_split(t, "s1", "s4", *parse_key_boundary("90")), "not inside");
  Topology range_only = with_spare();
  range_only.sharding.tables.erase(range_only.sharding.tables.begin(),
                                   range_only.sharding.tables.begin() + 3);
  refused(plan_split(range_only, "s1", "s4", std::nullopt), "no hash-sharded table");
}

TEST(ReshardPlan, MergeHandsAWholeShardToANeighbour) {
  const Topology t = with_spare();
  ReshardPlan p = ok(plan_merge(t, "s2", "s1"));
  EXPECT_EQ(format_key_range(p.moving), "80-c0");
  EXPECT_TRUE(p.source_spare_after);
  EXPECT_EQ(format_key_range(p.target_after), "40-c0");
  expect_tiles_after(t, p);
  p = ok(plan_merge(t, "s2", "s3"));
  EXPECT_EQ(format_key_range(p.target_after), "80-");
  expect_tiles_after(t, p);
  EXPECT_FALSE(plan_merge(t, "s1", "s3")) << "not neighbours";
  EXPECT_FALSE(plan_merge(t, "s0", "s1")) << "the default shard stays";
  EXPECT_FALSE(plan_merge(t, "s1", "s4")) << "into a spare is a split's job";
}

TEST(ReshardPlan, RebalanceMovesTheBoundaryEitherWay) {
  const Topology t = with_spare();
  ReshardPlan p = ok(plan_rebalance(t, "s1", "s2", *parse_key_boundary("70")));
  EXPECT_EQ(p.source, 1u);
  EXPECT_EQ(format_key_range(p.moving), "70-80");
  EXPECT_EQ(format_key_range(p.target_after), "70-c0");
  expect_tiles_after(t, p);
  p = ok(plan_rebalance(t, "s1", "s2", *parse_key_boundary("90")));
  EXPECT_EQ(p.source, 2u);
  EXPECT_EQ(format_key_range(p.moving), "80-90");
  EXPECT_EQ(format_key_range(p.source_after), "90-c0");
  EXPECT_EQ(format_key_range(p.target_after), "40-90");
  expect_tiles_after(t, p);
  EXPECT_FALSE(plan_rebalance(t, "s2", "s1", *parse_key_boundary("70"))) << "left first";
  EXPECT_FALSE(plan_rebalance(t, "s1", "s2", *parse_key_boundary("80"))) << "unchanged";
  EXPECT_FALSE(plan_rebalance(t, "s1", "s2", *parse_key_boundary("c0"))) << "empties s2";
}

TEST(ReshardPlan, SpareShardsTakeNoKeysAndNoScatter) {
  const Topology t = with_spare();
  for (std::int64_t i = 0; i < 2000; ++i) {
    KeyValue k;
    k.integer = i;
    EXPECT_NE(*shard_of(t.sharding.tables[0], k, t), 4u);
  }
}

TEST(ReshardPlan, IsolateCutsTheKeysPointOutOfItsShard) {
  Topology t = with_spare();
  KeyValue seven;
  seven.integer = 7;
  const std::uint64_t h = key_hash(seven);
  const std::uint32_t home = *shard_of(t.sharding.tables[0], seven, t);
  const ReshardPlan p = ok(plan_isolate_key(t, "users", "7", "s4"));
  EXPECT_EQ(p.kind, ReshardKind::Isolate);
  EXPECT_EQ(p.source, home);
  EXPECT_TRUE(p.moving.contains(h));
  EXPECT_FALSE(p.moving.contains(h + 1));
  EXPECT_FALSE(p.moving.contains(h - 1));
  ASSERT_EQ(p.source_after_more.size(), 1u) << "both sides of the key stay";
  EXPECT_EQ(p.source_after.end, h);
  EXPECT_EQ(p.source_after_more[0].start, h + 1);
  // Applied: the key maps to s4 alone, its neighbours stay, and the
  // keyspace is still tiled once.
  t.shards[home].key_range = p.source_after;
  t.shards[home].more_ranges = p.source_after_more;
  t.shards[4].spare = false;
  t.shards[4].key_range = p.target_after;
  EXPECT_EQ(*shard_of(t.sharding.tables[0], seven, t), 4u);
  EXPECT_EQ(*shard_of(t.sharding.tables[1], seven, t), 4u) << "orders.user_id = 7 too";
  std::vector<KeyRange> all;
  for (const auto& s : t.shards) {
    all.push_back(s.key_range);
    all.insert(all.end(), s.more_ranges.begin(), s.more_ranges.end());
  }
  std::sort(all.begin(), all.end(), [](auto& a, auto& b) { return a.start < b.start; });
  EXPECT_TRUE(check_key_ranges_tile(all));
  const std::string after = source_ranges_after(p);
  EXPECT_NE(after.find(','), std::string::npos) << after;
  auto parsed = parse_key_ranges(after);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->size(), 2u);
  EXPECT_EQ(format_shard_ranges(t.shards[home]), after);
  // A shard of several slices is not split, merged or rebalanced.
  EXPECT_FALSE(plan_split(t, t.shards[home].name, "s4", std::nullopt));
  EXPECT_FALSE(plan_isolate_key(t, "users", "7", "s3")) << "s3 is no spare";
  EXPECT_FALSE(plan_isolate_key(t, "events", "7", "s4")) << "range-sharded";
}

TEST(ReshardPlan, Boundaries) {
  EXPECT_EQ(*parse_key_boundary("80"), 0x8000000000000000ull);
  EXPECT_EQ(format_key_boundary(0x4c00000000000000ull), "4c");
  EXPECT_FALSE(parse_key_boundary(""));
  EXPECT_FALSE(parse_key_boundary("zz"));
}

}  // namespace
}  // namespace shardgate::router
