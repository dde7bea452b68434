// What a session tells a resharding job: the keys its writes put into the
// moving slice (by table and key text), the tables it wrote without a key,
// and nothing for reads or for keys outside the slice.
#include <gtest/gtest.h>

#include "proxy/session/shard_choice.h"
#include "router/classify.h"
#include "router/shard_map.h"
#include "tests/unit/router/shard_fixture.h"

namespace shardgate::session {
namespace {

// users and orders of the shard that holds users.id = 7 move, in the slice
// from key 7's hash to the end of that shard.
struct Moving {
  router::Topology topology = router::testing::four_shards();
  MovingSlice slice;
  Moving() {
    topology.sharding.allow_scatter_writes = true;
    router::KeyValue seven;
    seven.integer = 7;
    slice.source = *router::shard_of(topology.sharding.tables[0], seven, topology);
    slice.range = topology.shards[slice.source].key_range;
    slice.tables = {true, true, false, false, false};
  }
  MovedWrites moved(const std::string& sql) {
    router::ShardPlanCache plans;
    ShardChoice choice(topology, plans, router::HotKeyTap{});
    choice.watch_moves(&slice);
    const auto stmt = router::analyze(sql, router::Dialect::Postgres, {});
    choice.add(stmt, sql, router::Dialect::Postgres, {});
    EXPECT_TRUE(choice.result()) << sql;
    return choice.moved();
  }
  // A key of users whose hash is outside the slice.
  std::int64_t elsewhere() const {
    router::KeyValue k;
    for (k.integer = 1;; ++k.integer)
      if (!slice.range.contains(router::key_hash(k))) return k.integer;
  }
};

TEST(ShardChoiceMoves, WritesIntoTheSliceNameTheirKeys) {
  Moving m;
  MovedWrites w = m.moved("UPDATE users SET name = 'x' WHERE id = 7");
  ASSERT_EQ(w.keys.size(), 1u);
  EXPECT_EQ(w.keys[0].table, 0u);
  EXPECT_EQ(w.keys[0].key, "7");
  w = m.moved("DELETE FROM orders WHERE user_id = '7'");
  ASSERT_EQ(w.keys.size(), 1u);
  EXPECT_EQ(w.keys[0].table, 1u);
  EXPECT_EQ(w.keys[0].key, "7") << "one text for 7 and '7'";
  w = m.moved("INSERT INTO users (id, name) VALUES (7, 'a'), (" + std::to_string(m.elsewhere()) +
              ", 'b')");
  ASSERT_EQ(w.keys.size(), 1u) << "only the row in the slice";
}

TEST(ShardChoiceMoves, ReadsAndOtherKeysNameNothing) {
  Moving m;
  EXPECT_TRUE(m.moved("SELECT * FROM users WHERE id = 7").empty());
  EXPECT_TRUE(
      m.moved("UPDATE users SET name = 'x' WHERE id = " + std::to_string(m.elsewhere())).empty());
  EXPECT_TRUE(m.moved("UPDATE accounts SET n = 1 WHERE email = 'a@b'").empty())
      << "accounts does not move";
}

TEST(ShardChoiceMoves, KeylessWritesDirtyTheirTable) {
  Moving m;
  const MovedWrites w = m.moved("UPDATE users SET name = 'x'");
  EXPECT_TRUE(w.keys.empty());
  EXPECT_EQ(w.tables, std::vector<std::uint32_t>{0});
}

}  // namespace
}  // namespace shardgate::session
