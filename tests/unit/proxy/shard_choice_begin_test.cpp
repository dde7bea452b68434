// A BEGIN that leads a round (JDBC sends it in the same extended batch as
// the transaction's first statement) leaves that statement alone in it, so
// a read or write over several shards may follow it; anywhere else, a
// statement over several shards still needs a round of its own.
#include <gtest/gtest.h>

#include "proxy/session/shard_choice.h"
#include "router/classify.h"
#include "tests/unit/router/shard_fixture.h"

namespace shardgate::session {
namespace {

struct Round {
  bool ok = false;
  bool several = false;
};

Round route(std::vector<std::string> sqls) {
  const router::Topology t = router::testing::four_shards();
  router::ShardPlanCache plans;
  ShardChoice choice(t, plans, router::HotKeyTap{});
  for (const auto& sql : sqls)
    choice.add(router::analyze(sql, router::Dialect::Postgres, {}), sql, router::Dialect::Postgres,
               {});
  return {choice.result().has_value(), choice.needs_several()};
}

TEST(ShardChoiceBegin, ALeadingBeginLeavesAStatementOverSeveralShardsAlone) {
  const Round write = route({"BEGIN", "UPDATE users SET name = 'x' WHERE id IN (1, 2, 3, 4, 5)"});
  EXPECT_TRUE(write.ok);
  EXPECT_TRUE(write.several);
  const Round read = route({"BEGIN ISOLATION LEVEL REPEATABLE READ", "SELECT count(*) FROM users"});
  EXPECT_TRUE(read.ok);
  EXPECT_TRUE(read.several);
}

TEST(ShardChoiceBegin, OtherwiseAStatementOverSeveralShardsMustBeAlone) {
  EXPECT_FALSE(route({"SELECT 1", "SELECT count(*) FROM users"}).ok);
  EXPECT_FALSE(route({"BEGIN", "SELECT count(*) FROM users", "SELECT 1"}).ok);
  EXPECT_FALSE(route({"BEGIN", "BEGIN", "SELECT count(*) FROM users"}).ok);
  // A leading BEGIN with a keyed statement: that statement's shard, as before.
  const Round keyed = route({"BEGIN", "SELECT name FROM users WHERE id = 7"});
  EXPECT_TRUE(keyed.ok);
  EXPECT_FALSE(keyed.several);
}

}  // namespace
}  // namespace shardgate::session
