// Writes over several shards: a multi-row INSERT splits into each shard's
// rows (text kept byte for byte, tail clauses on every part); other writes
// run as they are on every target.
#include "router/write_split.h"

#include <gtest/gtest.h>

#include "router/classify.h"
#include "tests/unit/router/shard_fixture.h"

namespace shardgate::router {
namespace {

using testing::four_shards;
using testing::ok;

WritePlan plan(const std::string& sql, Dialect dialect = Dialect::Postgres) {
  static const Topology topo = four_shards();
  const Statement stmt = analyze(sql, dialect, {});
  const ShardAnalysis analysis = analyze_shards(sql, dialect, stmt, topo);
  const ShardTargets targets = ok(resolve_shards(analysis, {}, topo));
  return ok(plan_write(sql, dialect, analysis, targets, topo));
}

std::vector<std::pair<std::uint32_t, std::string>> parts(const WritePlan& p) {
  std::vector<std::pair<std::uint32_t, std::string>> out;
  for (const auto& w : p.writes) out.emplace_back(w.shard, w.sql);
  return out;
}

using Parts = std::vector<std::pair<std::uint32_t, std::string>>;

TEST(WriteSplit, MultiRowInsertGivesEachShardItsRows) {
  // events: [..100) on s0, [100, 200) on s1, [200..) on s2.
  EXPECT_EQ(parts(plan("INSERT INTO events (id, v) VALUES (1, 'a'), (150, 'b'), (2, 'c'), (300, "
                       "'d') RETURNING id")),
            (Parts{{0, "INSERT INTO events (id, v) VALUES (1, 'a'), (2, 'c') RETURNING id"},
                   {1, "INSERT INTO events (id, v) VALUES (150, 'b') RETURNING id"},
                   {2, "INSERT INTO events (id, v) VALUES (300, 'd') RETURNING id"}}));
  // Nested parentheses, strings with commas and parentheses, comments.
  EXPECT_EQ(parts(plan("insert /* x */ into events (v, id) values (lower('(a, b)'), 5),\n"
                       "  (coalesce(NULL, 'x'), 120) ON CONFLICT (id) DO NOTHING")),
            (Parts{{0,
                    "insert /* x */ into events (v, id) values (lower('(a, b)'), 5) ON "
                    "CONFLICT (id) DO NOTHING"},
                   {1,
                    "insert /* x */ into events (v, id) values (coalesce(NULL, 'x'), 120) ON "
                    "CONFLICT (id) DO NOTHING"}}));
  EXPECT_EQ(parts(plan("INSERT INTO events (id) VALUES (1), (150) ON DUPLICATE KEY UPDATE v = 1",
                       Dialect::Mysql)),
            (Parts{{0, "INSERT INTO events (id) VALUES (1) ON DUPLICATE KEY UPDATE v = 1"},
                   {1, "INSERT INTO events (id) VALUES (150) ON DUPLICATE KEY UPDATE v = 1"}}));
  EXPECT_EQ(parts(plan("REPLACE INTO events (id) VALUES (1), (250)", Dialect::Mysql)),
            (Parts{{0, "REPLACE INTO events (id) VALUES (1)"},
                   {2, "REPLACE INTO events (id) VALUES (250)"}}));
}

TEST(WriteSplit, OtherWritesRunUnchangedOnEveryTarget) {
  const std::string in_list = "UPDATE events SET v = 1 WHERE id IN (1, 150, 250)";
  EXPECT_EQ(parts(plan(in_list)), (Parts{{0, in_list}, {1, in_list}, {2, in_list}}));
  const std::string del = "DELETE FROM events WHERE id IN (5, 199)";
  const WritePlan d = plan(del);
  EXPECT_FALSE(d.reference);
  EXPECT_EQ(parts(d), (Parts{{0, del}, {1, del}}));
  const std::string ref =
      "INSERT INTO countries (code, name) VALUES ('it', 'Italy'), ('es', 'Spain')";
  const WritePlan r = plan(ref);
  EXPECT_TRUE(r.reference);
  EXPECT_EQ(parts(r), (Parts{{0, ref}, {1, ref}, {2, ref}, {3, ref}}));
}

TEST(WriteSplit, InsertsThatCannotBeSplitAreRefused) {
  static const Topology topo = four_shards();
  const std::string sql = "WITH x AS (SELECT 1) INSERT INTO events (id) VALUES (1), (150)";
  const Statement stmt = analyze(sql, Dialect::Postgres, {});
  ShardAnalysis analysis;
  analysis.scope = ShardScope::AllShards;
  analysis.writes = true;
  ShardTargets targets;
  targets.shards = {0, 1};
  auto p = plan_write(sql, Dialect::Postgres, analysis, targets, topo);
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().message().find("plain INSERT ... VALUES"), std::string::npos);
  (void)stmt;
}

TEST(WriteSplit, RowSpans) {
  const InsertRows r = insert_row_spans("INSERT INTO t (a) VALUES (1),(2) , ( 3 )", Dialect::Mysql);
  EXPECT_TRUE(r.insert);
  ASSERT_EQ(r.rows.size(), 3u);
  EXPECT_EQ(r.rows[2].end - r.rows[2].begin, 5u);
  EXPECT_FALSE(insert_row_spans("UPDATE t SET a = 1", Dialect::Mysql).insert);
  EXPECT_TRUE(insert_row_spans("INSERT INTO t SELECT 1", Dialect::Mysql).rows.empty());
  EXPECT_TRUE(insert_row_spans("INSERT INTO t VALUES ('unterminated", Dialect::Postgres).insert);
}

TEST(WriteSplit, ReturningIsAKeywordNotText) {
  EXPECT_TRUE(has_returning("DELETE FROM t WHERE id IN (1, 2) RETURNING id", Dialect::Postgres));
  EXPECT_TRUE(has_returning("delete from t returning *", Dialect::Mysql));
  EXPECT_FALSE(has_returning("UPDATE t SET note = 'returning' WHERE id = 1", Dialect::Postgres));
  EXPECT_FALSE(has_returning("UPDATE t SET v = 1 /* returning */", Dialect::Mysql));
  EXPECT_TRUE(has_returning("UPDATE t SET v = 'unterminated", Dialect::Mysql));
}

TEST(WriteSplit, PostgresDdlThatCannotRunInATransactionBlock) {
  EXPECT_TRUE(runs_outside_transaction("CREATE INDEX CONCURRENTLY i ON users (name)"));
  EXPECT_TRUE(runs_outside_transaction("drop index concurrently if exists i"));
  EXPECT_TRUE(runs_outside_transaction("REINDEX TABLE CONCURRENTLY users"));
  EXPECT_TRUE(runs_outside_transaction("/* x */ ALTER SYSTEM SET work_mem = '8MB'"));
  EXPECT_TRUE(runs_outside_transaction("CREATE DATABASE other"));
  EXPECT_TRUE(runs_outside_transaction("DROP TABLESPACE t"));
  EXPECT_FALSE(runs_outside_transaction("CREATE INDEX i ON users (name)"));
  EXPECT_FALSE(runs_outside_transaction("ALTER TABLE users ADD COLUMN concurrent int"));
  EXPECT_FALSE(runs_outside_transaction("COMMENT ON TABLE users IS 'concurrently'"));
  EXPECT_FALSE(runs_outside_transaction("ALTER TABLE users ALTER COLUMN system TYPE int"));
}

}  // namespace
}  // namespace shardgate::router
