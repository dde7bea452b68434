#include "router/shard_route.h"

#include <gtest/gtest.h>

#include "router/classify.h"
#include "router/shard_map.h"
#include "tests/unit/router/shard_fixture.h"

namespace shardgate::router {
namespace {

using testing::ok;

class ShardRoute : public ::testing::Test {
 protected:
  Topology topo = testing::four_shards();

  Result<ShardTargets> resolve(std::string_view sql, std::vector<ParamValue> params = {},
                               Dialect dialect = Dialect::Postgres) {
    const Statement stmt = analyze(sql, dialect, AnalyzeOptions{});
    analysis = analyze_shards(sql, dialect, stmt, topo);
    return resolve_shards(analysis, params, topo);
  }
  std::uint32_t home_of(std::int64_t id) {
    KeyValue k;
    k.integer = id;
    return ok(shard_of(topo.sharding.tables[0], k, topo));
  }
  static std::string error_of(const Result<ShardTargets>& r) {
    return r ? std::string("(no error)") : r.error().message();
  }
  ShardAnalysis analysis;
};

ParamValue text(std::string_view v) {
  return {ParamValue::Form::Text, v};
}
ParamValue binary(std::string_view v) {
  return {ParamValue::Form::Binary, v};
}

TEST_F(ShardRoute, LiteralKeyGoesToItsShard) {
  for (int id : {1, 2, 3, 42, -7, 1000000}) {
    auto r = resolve("SELECT * FROM users WHERE id = " + std::to_string(id));
    ASSERT_TRUE(r) << error_of(r);
    EXPECT_EQ(r->shards, std::vector<std::uint32_t>{home_of(id)}) << id;
    EXPECT_FALSE(r->every_shard);
  }
}

TEST_F(ShardRoute, LiteralTextAndParameterFormsAgree) {
  const std::uint32_t want = home_of(42);
  EXPECT_EQ(resolve("SELECT * FROM users WHERE id = '42'")->shards[0], want);
  EXPECT_EQ(resolve("SELECT * FROM users WHERE id = $1", {text("42")})->shards[0], want);
  EXPECT_EQ(resolve("SELECT * FROM users WHERE id = $1", {text(" 042")})->shards[0], want);
  const std::string int8("\0\0\0\0\0\0\0\x2a", 8), int4("\0\0\0\x2a", 4), int2("\0\x2a", 2);
  EXPECT_EQ(resolve("SELECT * FROM users WHERE id = $1", {binary(int8)})->shards[0], want);
  EXPECT_EQ(resolve("SELECT * FROM users WHERE id = $1", {binary(int4)})->shards[0], want);
  EXPECT_EQ(resolve("SELECT * FROM users WHERE id = $1", {binary(int2)})->shards[0], want);
  EXPECT_EQ(resolve("SELECT * FROM users WHERE id = ?", {text("42")}, Dialect::Mysql)->shards[0],
            want);
}

TEST_F(ShardRoute, NegativeBinaryIntegersSignExtend) {
  const std::string minus_one4("\xff\xff\xff\xff", 4);
  EXPECT_EQ(resolve("SELECT * FROM users WHERE id = $1", {binary(minus_one4)})->shards[0],
            home_of(-1));
}

TEST_F(ShardRoute, BadParametersAreErrors) {
  auto r = resolve("SELECT * FROM users WHERE id = $2", {text("1")});
  EXPECT_NE(error_of(r).find("parameter 2, but only 1"), std::string::npos) << error_of(r);
  r = resolve("SELECT * FROM users WHERE id = $1", {ParamValue{}});
  EXPECT_NE(error_of(r).find("bound to NULL"), std::string::npos);
  r = resolve("SELECT * FROM users WHERE id = $1", {binary("abc")});
  EXPECT_NE(error_of(r).find("3 bytes"), std::string::npos);
  r = resolve("SELECT * FROM users WHERE id = $1", {text("x")});
  EXPECT_NE(error_of(r).find("integer column"), std::string::npos);
}

TEST_F(ShardRoute, InListAndMultiRowInsertSpanShards) {
  std::vector<std::uint32_t> want;
  std::string list;
  for (int id = 1; id <= 20; ++id) {
    want.push_back(home_of(id));
    list += (id > 1 ? "," : "") + std::to_string(id);
  }
  std::sort(want.begin(), want.end());
  want.erase(std::unique(want.begin(), want.end()), want.end());
  auto r = resolve("SELECT * FROM users WHERE id IN (" + list + ")");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->shards, want);
  EXPECT_EQ(want.size(), 4u);
}

TEST_F(ShardRoute, JoinsOfKeysOnDifferentShardsAreRefused) {
  int a = 1, b = 2;
  while (home_of(b) == home_of(a)) ++b;
  auto r = resolve("SELECT * FROM users u, orders o WHERE u.id = " + std::to_string(a) +
                   " AND o.user_id = " + std::to_string(b));
  EXPECT_NE(error_of(r).find("no single shard can answer it"), std::string::npos) << error_of(r);
  r = resolve("SELECT * FROM users u, orders o WHERE u.id = " + std::to_string(a) +
              " AND o.user_id = " + std::to_string(a));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->shards.size(), 1u);
}

TEST_F(ShardRoute, KeylessStatements) {
  auto r = resolve("SELECT * FROM users");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->every_shard);
  EXPECT_EQ(r->shards.size(), 4u);
  r = resolve("DELETE FROM users WHERE name = 'x'");
  EXPECT_NE(error_of(r).find("writes sharded table users without its sharding key id"),
            std::string::npos);
  topo.sharding.allow_scatter_writes = true;
  r = resolve("DELETE FROM users WHERE name = 'x'");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->every_shard);
}

TEST_F(ShardRoute, ReferenceTables) {
  auto r = resolve("SELECT * FROM countries");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->shards, std::vector<std::uint32_t>{0});
  r = resolve("INSERT INTO countries (code) VALUES ('de')");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->shards.size(), 4u);
  EXPECT_TRUE(r->every_shard);
}

TEST_F(ShardRoute, UnshardedTablesLiveOnTheDefaultShard) {
  EXPECT_EQ(resolve("SELECT * FROM logs")->shards, std::vector<std::uint32_t>{0});
  topo.sharding.default_shard = 2;
  EXPECT_EQ(resolve("SELECT 1")->shards, std::vector<std::uint32_t>{2});
  int off = 1;
  while (home_of(off) == 2) ++off;
  auto r = resolve("SELECT * FROM users u JOIN logs l ON l.user_id = u.id WHERE u.id = " +
                   std::to_string(off));
  EXPECT_NE(error_of(r).find("table logs, which is not sharded"), std::string::npos) << error_of(r);
}

TEST_F(ShardRoute, RangeTables) {
  EXPECT_EQ(resolve("SELECT * FROM events WHERE id = 150")->shards, std::vector<std::uint32_t>{1});
  EXPECT_EQ(resolve("SELECT * FROM items WHERE id = 5")->shards, std::vector<std::uint32_t>{3});
}

TEST_F(ShardRoute, RefusalsPassThrough) {
  auto r = resolve("UPDATE users SET id = 1 WHERE id = 2");
  EXPECT_NE(error_of(r).find("changes the sharding key"), std::string::npos);
}

}  // namespace
}  // namespace shardgate::router
