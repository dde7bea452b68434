// DDL through the proxy runs on every shard, spares included (they take rows
// later, into the same schema): DDL of a sharded or reference table, and DDL
// that names no table (DROP INDEX, CREATE EXTENSION ...). DDL of unsharded
// tables alone stays on the default shard. DDL that would have to share its
// round with other statements is refused.
#include <gtest/gtest.h>

#include "proxy/session/shard_choice.h"
#include "router/classify.h"
#include "tests/unit/router/shard_fixture.h"

namespace shardgate::session {
namespace {

struct Chosen {
  Result<std::optional<std::uint32_t>> shard;
  std::optional<router::WritePlan> plan;
};

Chosen choose(const router::Topology& t, std::vector<std::string> sqls) {
  router::ShardPlanCache plans;
  ShardChoice choice(t, plans, router::HotKeyTap{});
  for (const auto& sql : sqls)
    choice.add(router::analyze(sql, router::Dialect::Postgres, {}), sql, router::Dialect::Postgres,
               {});
  return {choice.result(), choice.several_writes()};
}

router::Topology with_spare() {
  router::Topology t = router::testing::four_shards();
  router::ShardInfo spare = t.shards.back();
  spare.name = "s4";
  spare.spare = true;
  spare.primary = 4;
  t.shards.push_back(spare);
  return t;
}

TEST(ShardChoiceDdl, DdlOfAShardedTableRunsOnEveryShardSparesIncluded) {
  const router::Topology t = with_spare();
  for (const char* sql :
       {"CREATE TABLE users (id bigint PRIMARY KEY, name text)",
        "ALTER TABLE users ADD COLUMN nick text", "CREATE INDEX users_name ON users (name)",
        "DROP TABLE orders", "TRUNCATE accounts", "ALTER TABLE countries ADD COLUMN iso3 text"}) {
    const Chosen c = choose(t, {sql});
    ASSERT_TRUE(c.shard) << sql << ": " << c.shard.error().message();
    ASSERT_TRUE(c.plan) << sql;
    EXPECT_TRUE(c.plan->schema_change) << sql;
    EXPECT_TRUE(c.plan->reference) << sql << ": the client hears one shard's answer";
    ASSERT_EQ(c.plan->writes.size(), 5u) << sql;
    for (std::uint32_t s = 0; s < 5; ++s) {
      EXPECT_EQ(c.plan->writes[s].shard, s);
      EXPECT_EQ(c.plan->writes[s].sql, sql);
    }
  }
}

TEST(ShardChoiceDdl, DdlOfAnUnshardedTableStaysOnTheDefaultShard) {
  const Chosen c = choose(with_spare(), {"CREATE TABLE logs (id serial PRIMARY KEY, msg text)"});
  ASSERT_TRUE(c.shard);
  EXPECT_FALSE(c.plan);
}

TEST(ShardChoiceDdl, DdlThatWouldShareItsRoundIsRefused) {
  const router::Topology t = with_spare();
  Chosen c = choose(t, {"SELECT 1", "ALTER TABLE users ADD COLUMN nick text"});
  ASSERT_FALSE(c.shard);
  EXPECT_NE(
      c.shard.error().message().find("DDL runs on every shard (it names sharded table users)"),
      std::string::npos)
      << c.shard.error().message();
  c = choose(t, {"ALTER TABLE users ADD COLUMN a text; ALTER TABLE users ADD COLUMN b text"});
  ASSERT_FALSE(c.shard) << "a multi-statement query";
}

}  // namespace
}  // namespace shardgate::session
