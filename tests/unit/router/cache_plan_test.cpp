#include "router/cache_plan.h"

#include <gtest/gtest.h>

#include "router/classify.h"
#include "tests/unit/router/shard_fixture.h"

namespace shardgate::router {
namespace {

Topology cached_users() {
  Topology t = testing::four_shards();
  t.sharding.tables[0].cache_ttl_ms = 5000;  // users
  t.sharding.tables[1].cache_ttl_ms = 2000;  // orders
  return t;
}

std::optional<CachePlan> plan_of(const char* sql, Dialect d = Dialect::Postgres) {
  static const Topology t = cached_users();
  return cache_plan(sql, analyze(sql, d, AnalyzeOptions{}), t, 1000);
}

TEST(CachePlan, ReadsOfOptedInTablesOnly) {
  auto p = plan_of("SELECT name FROM users WHERE id = 7");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->ttl_ms, 5000u);
  EXPECT_EQ(p->tables, std::vector<std::string>{"users"});
  p = plan_of("SELECT * FROM users u JOIN orders o ON o.user_id = u.id WHERE u.id = 1");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->ttl_ms, 2000u) << "the shortest time to live of its tables";
  EXPECT_EQ(p->tables, (std::vector<std::string>{"orders", "users"}));
  EXPECT_FALSE(plan_of("SELECT * FROM users JOIN accounts ON true"))
      << "a table not opted in keeps the read out";
  EXPECT_FALSE(plan_of("SELECT 1")) << "no table";
}

TEST(CachePlan, NeverWritesLocksOrSessionState) {
  for (const char* sql : {
           "UPDATE users SET name = 'x' WHERE id = 1",
           "SELECT * FROM users WHERE id = 1 FOR UPDATE",
           "SELECT nextval('s') FROM users",
           "SELECT * FROM users WHERE id = 1; SELECT 1",
           "/* shardgate:primary */ SELECT * FROM users WHERE id = 1",
           "/* shardgate:replica */ SELECT * FROM users WHERE id = 1",
           "WITH d AS (DELETE FROM users RETURNING *) SELECT * FROM d",
       })
    EXPECT_FALSE(plan_of(sql)) << sql;
  EXPECT_FALSE(plan_of("SELECT LAST_INSERT_ID() FROM users", Dialect::Mysql));
  EXPECT_FALSE(plan_of("SELECT connection_id(), name FROM users WHERE id = 1", Dialect::Mysql));
  EXPECT_FALSE(plan_of("SELECT @@port FROM users WHERE id = 1", Dialect::Mysql));
  EXPECT_FALSE(plan_of("SELECT pg_backend_pid(), name FROM users WHERE id = 1"));
}

TEST(CachePlan, HintOptsAnyTableIn) {
  auto p = plan_of("/* shardgate:cache */ SELECT * FROM logs WHERE id = 3");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->ttl_ms, 1000u) << "the configured default";
  p = plan_of("/* shardgate:cache ttl_ms=300 */ SELECT * FROM users WHERE id = 3");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->ttl_ms, 300u) << "the hint's time to live wins";
  EXPECT_FALSE(plan_of("/* shardgate:cache */ DELETE FROM logs"));
}

TEST(CachePlan, HotKeysOfATableOptIn) {
  static const Topology t = cached_users();
  const char* sql = "SELECT balance FROM accounts WHERE email = 'a@b'";
  const Statement s = analyze(sql, Dialect::Postgres, AnalyzeOptions{});
  EXPECT_FALSE(cache_plan(sql, s, t, 1000, 0));
  auto p = cache_plan(sql, s, t, 1000, 250);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->ttl_ms, 250u);
  EXPECT_FALSE(cache_plan("SELECT pg_is_in_recovery() FROM accounts", s, t, 1000, 250))
      << "an answer that depends on the server";
}

TEST(CachePlan, TableKeysIgnoreSchemaAndQuotes) {
  EXPECT_EQ(cache_table_key("public.users"), "users");
  EXPECT_EQ(cache_table_key("\"users\""), "users");
  EXPECT_EQ(cache_table_key("`app`.`users`"), "users");
}

}  // namespace
}  // namespace shardgate::router
