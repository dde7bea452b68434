#include "router/isolate_plan.h"

#include <gtest/gtest.h>

#include "router/shard_map.h"
#include "tests/unit/router/shard_fixture.h"

namespace shardgate::router {
namespace {

using testing::four_shards;
using testing::ok;

TEST(IsolatePlan, HashKeyGetsASliceOfItsOwnCutFromItsShard) {
  const Topology t = four_shards();
  const IsolatePlan p = ok(plan_isolate(t, "users", "7", ""));
  KeyValue k;
  k.integer = 7;
  const std::uint64_t h = key_hash(k);
  EXPECT_EQ(p.hash, h);
  const std::uint32_t source = *shard_of(t.sharding.tables[0], k, t);
  EXPECT_EQ(p.source, t.shards[source].name);
  ASSERT_EQ(p.slices.size(), 3u);
  EXPECT_EQ(p.slices[0].shard, p.source);
  EXPECT_FALSE(p.slices[0].is_new);
  EXPECT_EQ(p.slices[1].shard, "users-7");
  EXPECT_TRUE(p.slices[1].holds_key);
  EXPECT_EQ(p.slices[2].shard, p.source + "-hi");
  EXPECT_TRUE(p.slices[2].is_new);
  // The new layout still tiles the keyspace, and the key lands alone.
  std::vector<KeyRange> ranges;
  for (std::uint32_t s = 0; s < t.shards.size(); ++s) {
    if (s != source) {
      ranges.push_back(t.shards[s].key_range);
      continue;
    }
    for (const auto& slice : p.slices) ranges.push_back(slice.range);
  }
  EXPECT_TRUE(check_key_ranges_tile(ranges));
  EXPECT_TRUE(p.slices[1].range.contains(h));
  EXPECT_FALSE(p.slices[1].range.contains(h + 1));
  EXPECT_FALSE(p.slices[0].range.contains(h));
  EXPECT_EQ(p.moving_tables, (std::vector<std::string>{"users.id", "orders.user_id"}))
      << "text-keyed accounts hashes other bytes";
}

TEST(IsolatePlan, RangeKeyCutsItsRule) {
  const Topology t = four_shards();  // events: [,100) s0, [100,200) s1, [200,) s2
  IsolatePlan p = ok(plan_isolate(t, "events", "150", "celebrity"));
  EXPECT_EQ(p.source, "s1");
  ASSERT_EQ(p.slices.size(), 3u);
  EXPECT_EQ(p.slices[0].from, 100);
  EXPECT_EQ(p.slices[0].to, 150);
  EXPECT_EQ(p.slices[1].shard, "celebrity");
  EXPECT_EQ(p.slices[1].from, 150);
  EXPECT_EQ(p.slices[1].to, 151);
  EXPECT_EQ(p.slices[2].shard, "s1");
  EXPECT_EQ(p.slices[2].from, 151);
  EXPECT_EQ(p.slices[2].to, 200);
  p = ok(plan_isolate(t, "events", "100", "celebrity"));
  ASSERT_EQ(p.slices.size(), 2u) << "nothing below the key in its rule";
  EXPECT_TRUE(p.slices[0].holds_key);
  p = ok(plan_isolate(t, "events", "-5", "celebrity"));
  ASSERT_EQ(p.slices.size(), 3u);
  EXPECT_FALSE(p.slices[0].from) << "the rule is unbounded below";
}

TEST(IsolatePlan, Refusals) {
  const Topology t = four_shards();
  EXPECT_FALSE(plan_isolate(t, "logs", "1", ""));
  EXPECT_FALSE(plan_isolate(t, "users", "abc", "")) << "not an integer";
  EXPECT_FALSE(plan_isolate(t, "users", "7", "s2")) << "an existing shard's name";
}

}  // namespace
}  // namespace shardgate::router
