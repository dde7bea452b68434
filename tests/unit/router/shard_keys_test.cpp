// Sharding-key extraction, one row per statement, both dialects. The expected
// reading is written compactly:
//   N            no sharded or reference table (the default shard)
//   R / wR       reference tables read / written
//   K[t=v,..]    sharded rows with these keys ($n: bound parameter n)
//   K![..]       ... which must all be on one shard (joins, subqueries)
//   A[t]         a sharded table without a usable key: every shard
//   w...         the statement writes
//   X:text       refused; the message contains text
#include "router/shard_keys.h"

#include <gtest/gtest.h>

#include "router/classify.h"
#include "tests/unit/router/shard_fixture.h"

namespace shardgate::router {
namespace {

std::string describe(const ShardAnalysis& a) {
  if (a.refusal) return "X:" + *a.refusal;
  std::string out = a.writes ? "w" : "";
  switch (a.scope) {
    case ShardScope::None:
      return out + "N";
    case ShardScope::Reference:
      return out + "R";
    case ShardScope::AllShards:
      return out + "A[" + a.keyless->name + "]";
    case ShardScope::Keys:
      break;
  }
  out += a.needs_one_shard ? "K![" : "K[";
  for (std::size_t i = 0; i < a.keys.size(); ++i) {
    const KeyExpr& k = a.keys[i];
    out += (i ? "," : "") + k.table->name + "=" +
           (k.kind == KeyExpr::Kind::Param ? "$" + std::to_string(k.param + 1) : k.literal);
  }
  return out + "]";
}

struct Row {
  const char* sql;
  const char* expected;
};

// Every row is read three ways that must agree: afresh, through the plan
// cache on a miss, and through the cache on a hit.
void check(Dialect dialect, std::initializer_list<Row> rows) {
  const Topology topo = testing::four_shards();
  const AnalyzeOptions options;
  ShardPlanCache cache;
  for (const Row& row : rows) {
    const Statement stmt = analyze(row.sql, dialect, options);
    const std::string got = describe(analyze_shards(row.sql, dialect, stmt, topo));
    EXPECT_EQ(describe(cache.analyze(row.sql, dialect, stmt, topo)), got) << row.sql << " (miss)";
    EXPECT_EQ(describe(cache.analyze(row.sql, dialect, stmt, topo)), got) << row.sql << " (hit)";
    const std::string expected = row.expected;
    if (expected.starts_with("X:")) {
      EXPECT_TRUE(got.starts_with("X:") && got.find(expected.substr(2)) != std::string::npos)
          << row.sql << "\n  got: " << got << "\n  want: " << expected;
    } else {
      EXPECT_EQ(got, expected) << row.sql;
    }
  }
}

TEST(ShardKeys, PostgresPointStatements) {
  check(Dialect::Postgres,
        {
            {"SELECT * FROM users WHERE id = 5", "K[users=5]"},
            {"select * from users where id=5", "K[users=5]"},
            {"SELECT * FROM users WHERE id = $1", "K[users=$1]"},
            {"SELECT * FROM users WHERE id = $2 AND name = $1", "K[users=$2]"},
            {"SELECT * FROM users WHERE name = $1 AND id = $2", "K[users=$2]"},
            {"SELECT * FROM users WHERE 5 = id", "K[users=5]"},
            {"SELECT * FROM users WHERE $1 = id", "K[users=$1]"},
            {"SELECT * FROM users WHERE id = '5'", "K[users=5]"},
            {"SELECT * FROM users WHERE id = -5", "K[users=-5]"},
            {"SELECT * FROM users WHERE id=-5", "K[users=-5]"},
            {"SELECT * FROM users WHERE id = +5", "K[users=+5]"},
            {"SELECT * FROM users WHERE id = $1::bigint", "K[users=$1]"},
            {"SELECT * FROM users WHERE id = '5'::int8", "K[users=5]"},
            {"SELECT * FROM users WHERE id = 5::numeric(10)", "K[users=5]"},
            {"SELECT * FROM users WHERE users.id = 5", "K[users=5]"},
            {"SELECT * FROM public.users WHERE id = 5", "K[users=5]"},
            {"SELECT * FROM users u WHERE u.id = 5", "K[users=5]"},
            {"SELECT * FROM users AS u WHERE u.id = 5", "K[users=5]"},
            {"SELECT * FROM \"users\" WHERE \"id\" = 5", "K[users=5]"},
            {"SELECT * FROM users WHERE id = 5 AND name = 'x'", "K[users=5]"},
            {"SELECT * FROM users WHERE name = 'x' AND id = 5 AND age > 3", "K[users=5]"},
            {"SELECT * FROM users WHERE id = 5 ORDER BY name LIMIT 3", "K[users=5]"},
            {"SELECT * FROM users WHERE id = 5 FOR UPDATE", "K[users=5]"},
            {"SELECT count(*) FROM users WHERE id = 5 GROUP BY name HAVING count(*) > 1",
             "K[users=5]"},
            {"SELECT * FROM users WHERE (id = 5)", "A[users]"},
            {"SELECT * FROM users WHERE id = 5 OR id = 6", "A[users]"},
            {"SELECT * FROM users WHERE NOT id = 5", "A[users]"},
            {"SELECT * FROM users WHERE id <> 5", "A[users]"},
            {"SELECT * FROM users WHERE id > 5", "A[users]"},
            {"SELECT * FROM users WHERE id = 5 + 1", "A[users]"},
            {"SELECT * FROM users WHERE id = abs(5)", "A[users]"},
            {"SELECT * FROM users WHERE id = other_id", "A[users]"},
            {"SELECT * FROM users WHERE id = ANY($1)", "A[users]"},
            {"SELECT * FROM users WHERE id BETWEEN 1 AND 5", "A[users]"},
            {"SELECT * FROM users WHERE age BETWEEN 1 AND 5 AND id = 7", "K[users=7]"},
            {"SELECT * FROM users WHERE id IS NULL", "A[users]"},
            {"SELECT * FROM users WHERE name = E'a\\'b' AND id = 3", "K[users=3]"},
            {"SELECT * FROM users WHERE id = E'5'", "A[users]"},
            {"SELECT * FROM users WHERE id = $$5$$", "A[users]"},
            {"SELECT * FROM users", "A[users]"},
            {"SELECT * FROM users ORDER BY id LIMIT 10", "A[users]"},
            {"SELECT count(*) FROM users", "A[users]"},
            {"SELECT * FROM users WHERE other.id = 5", "A[users]"},
            {"SELECT * FROM users u WHERE x.id = 5", "A[users]"},
            {"SELECT 1", "N"},
            {"SELECT now()", "N"},
            {"SELECT * FROM logs WHERE id = 5", "N"},
            {"SELECT * FROM pg_catalog.pg_class", "N"},
            {"BEGIN", "N"},
            {"COMMIT", "N"},
            {"SET search_path = public", "N"},
            {"SHOW server_version", "N"},
            {"", "N"},
        });
}

TEST(ShardKeys, PostgresInLists) {
  check(Dialect::Postgres,
        {
            {"SELECT * FROM users WHERE id IN (1, 2, 3)", "K[users=1,users=2,users=3]"},
            {"SELECT * FROM users WHERE id IN ($1, $2)", "K[users=$1,users=$2]"},
            {"SELECT * FROM users WHERE id IN (1)", "K[users=1]"},
            {"SELECT * FROM users WHERE id IN (1, 2) AND id = 2", "K[users=2]"},
            {"SELECT * FROM users WHERE id = 2 AND id IN (1, 2)", "K[users=2]"},
            {"SELECT * FROM users WHERE id IN (1, 2+1)", "A[users]"},
            {"SELECT * FROM users WHERE id NOT IN (1, 2)", "A[users]"},
            {"SELECT * FROM users WHERE id IN (SELECT user_id FROM orders)",
             "X:subquery reads sharded table orders without its sharding key"},
            {"SELECT * FROM users WHERE id IN (SELECT user_id FROM orders WHERE user_id = 4)",
             "X:users is read without its key"},
            {"SELECT * FROM users WHERE id = 4 AND id IN (SELECT user_id FROM orders WHERE "
             "user_id = 4)",
             "K![orders=4,users=4]"},
        });
}

TEST(ShardKeys, PostgresWrites) {
  check(Dialect::Postgres,
        {
            {"INSERT INTO users (id, name) VALUES (5, 'a')", "wK[users=5]"},
            {"INSERT INTO users (name, id) VALUES ('a', 5)", "wK[users=5]"},
            {"INSERT INTO users (id, name) VALUES ($1, $2)", "wK[users=$1]"},
            {"INSERT INTO users (name, id) VALUES ($1, $2)", "wK[users=$2]"},
            {"INSERT INTO users(id,name) VALUES(1,'a'),(2,'b'),(3,'c')",
             "wK[users=1,users=2,users=3]"},
            {"INSERT INTO users (id, name) VALUES (1, 'a') RETURNING *", "wK[users=1]"},
            {"INSERT INTO users (id, name) VALUES (1, lower('A'))", "wK[users=1]"},
            {"INSERT INTO users (id, tags) VALUES (1, ARRAY[1,2])", "wK[users=1]"},
            {"INSERT INTO users (id, name) VALUES (1, 'a') ON CONFLICT (id) DO NOTHING",
             "wK[users=1]"},
            {"INSERT INTO users (id, name) VALUES (1, 'a') ON CONFLICT (id) DO UPDATE SET "
             "name = excluded.name",
             "wK[users=1]"},
            {"INSERT INTO users (id, name) VALUES (1, 'a') ON CONFLICT (name) DO UPDATE SET id "
             "= 2",
             "X:changes the sharding key users.id"},
            {"INSERT INTO public.users (id) VALUES (9)", "wK[users=9]"},
            {"INSERT INTO users AS u (id) VALUES (9)", "wK[users=9]"},
            {"INSERT INTO users VALUES (1, 'a')", "X:must list its columns"},
            {"INSERT INTO users (name) VALUES ('a')", "X:must list its columns"},
            {"INSERT INTO users (id, name) VALUES (DEFAULT, 'a')", "X:as an expression"},
            {"INSERT INTO users (id, name) VALUES (nextval('s'), 'a')", "X:as an expression"},
            {"INSERT INTO users (id, name) VALUES (1 + 1, 'a')", "X:as an expression"},
            {"INSERT INTO users (id, name) SELECT id, name FROM old_users", "X:INSERT ... SELECT"},
            {"INSERT INTO users DEFAULT VALUES", "X:DEFAULT VALUES"},
            {"INSERT INTO logs (msg) VALUES ('x')", "N"},
            {"INSERT INTO logs (msg) SELECT name FROM users",
             "X:from sharded table rows is not supported"},
            {"INSERT INTO countries (code) VALUES ('de')", "wR"},
            {"UPDATE users SET name = 'x' WHERE id = 5", "wK[users=5]"},
            {"UPDATE users SET name = $1 WHERE id = $2", "wK[users=$2]"},
            {"UPDATE users u SET name = 'x' WHERE u.id = 5", "wK[users=5]"},
            {"UPDATE ONLY users SET name = 'x' WHERE id = 5", "wK[users=5]"},
            {"UPDATE users SET name = 'x' WHERE id = 5 RETURNING id", "wK[users=5]"},
            {"UPDATE users SET id = 6 WHERE id = 5", "X:changes the sharding key users.id"},
            {"UPDATE users SET name = 'x', id = 6 WHERE id = 5",
             "X:changes the sharding key users.id"},
            {"UPDATE users u SET u.id = 6 WHERE id = 5", "X:changes the sharding key"},
            {"UPDATE users SET (name, id) = ('x', 6) WHERE id = 5", "X:changes the sharding key"},
            {"UPDATE users SET name = 'x'", "wA[users]"},
            {"UPDATE users SET name = 'x' WHERE name = 'y'", "wA[users]"},
            {"UPDATE orders SET total = 0 WHERE user_id = 3", "wK[orders=3]"},
            {"UPDATE orders SET user_id = 3 WHERE id = 4", "X:changes the sharding key orders"},
            {"UPDATE orders SET total = 0 FROM users WHERE orders.user_id = users.id AND users.id "
             "= 3",
             "wK[users=3]"},
            {"DELETE FROM users WHERE id = 5", "wK[users=5]"},
            {"DELETE FROM users WHERE id IN (5, 6)", "wK[users=5,users=6]"},
            {"DELETE FROM users WHERE id = $1", "wK[users=$1]"},
            {"DELETE FROM users", "wA[users]"},
            {"DELETE FROM users WHERE name = 'x'", "wA[users]"},
            {"DELETE FROM countries WHERE code = 'de'", "wR"},
            {"UPDATE countries SET name = 'x'", "wR"},
            {"DELETE FROM logs", "N"},
            {"TRUNCATE users", "wA[users]"},
            {"TRUNCATE TABLE countries", "wR"},
            {"CREATE TABLE users (id bigint primary key, name text)", "wA[users]"},
            {"CREATE TABLE IF NOT EXISTS users(id bigint)", "wA[users]"},
            {"CREATE INDEX users_name ON users (name)", "wA[users]"},
            {"ALTER TABLE users ADD COLUMN age int", "wA[users]"},
            {"DROP TABLE users", "wA[users]"},
            {"CREATE TABLE logs (id int)", "N"},
            {"COPY users FROM STDIN", "X:COPY into sharded table users"},
            {"COPY users TO STDOUT", "A[users]"},
        });
}

TEST(ShardKeys, PostgresJoins) {
  check(
      Dialect::Postgres,
      {
          {"SELECT * FROM users u JOIN orders o ON o.user_id = u.id WHERE u.id = 5", "K[users=5]"},
          {"SELECT * FROM users u JOIN orders o ON o.user_id = u.id WHERE o.user_id = $1",
           "K[orders=$1]"},
          {"SELECT * FROM users u JOIN orders o ON u.id = o.user_id AND o.total > 3 WHERE u.id "
           "= 5",
           "K[users=5]"},
          {"SELECT * FROM users u LEFT JOIN orders o ON o.user_id = u.id WHERE u.id = 5",
           "K[users=5]"},
          {"SELECT * FROM users u, orders o WHERE o.user_id = u.id AND u.id = 5", "K[users=5]"},
          {"SELECT * FROM users u JOIN orders o ON o.user_id = u.id", "A[users]"},
          {"SELECT * FROM users JOIN orders USING (id)", "X:without equating their sharding keys"},
          {"SELECT * FROM users u JOIN orders o ON o.id = u.id WHERE u.id = 5",
           "X:without equating their sharding keys"},
          {"SELECT * FROM users u JOIN orders o ON o.note = u.name",
           "X:without equating their sharding keys"},
          {"SELECT * FROM users u JOIN orders o ON o.user_id = u.id OR o.x = 1 WHERE u.id = 5",
           "X:without equating their sharding keys"},
          {"SELECT * FROM users u, orders o WHERE u.id = 5 AND o.user_id = 5",
           "K![users=5,orders=5]"},
          {"SELECT * FROM users a JOIN users b ON a.id = b.id WHERE a.id = 1", "K[users=1]"},
          {"SELECT * FROM users a JOIN users b ON a.name = b.name WHERE a.id = 1",
           "X:without equating their sharding keys"},
          {"SELECT * FROM users u JOIN events e ON e.id = u.id WHERE u.id = 1",
           "X:sharded differently"},
          {"SELECT * FROM events e JOIN items i ON e.id = i.id WHERE e.id = 1",
           "X:sharded differently"},
          {"SELECT * FROM users u JOIN countries c ON c.code = u.country WHERE u.id = 1",
           "K[users=1]"},
          {"SELECT * FROM users u JOIN countries c ON c.code = u.country", "A[users]"},
          {"SELECT * FROM countries", "R"},
          {"SELECT * FROM countries WHERE code = 'de'", "R"},
          {"SELECT * FROM users u JOIN logs l ON l.user_id = u.id WHERE u.id = 1", "K[users=1]"},
          {"SELECT * FROM accounts WHERE email = 'a@b.c'", "K[accounts=a@b.c]"},
          {"SELECT * FROM accounts WHERE email = 'it''s'", "K[accounts=it's]"},
          {"SELECT * FROM accounts WHERE email = $1", "K[accounts=$1]"},
          {"SELECT * FROM events WHERE id = 150", "K[events=150]"},
      });
}

TEST(ShardKeys, PostgresSubqueriesUnionsAndMultiStatements) {
  check(
      Dialect::Postgres,
      {
          {"WITH x AS (SELECT * FROM users WHERE id = 3) SELECT * FROM x", "K[users=3]"},
          {"WITH x AS (SELECT * FROM users) SELECT count(*) FROM x",
           "X:subquery reads sharded table users without its sharding key"},
          {"SELECT * FROM (SELECT * FROM users WHERE id = 2) t", "K[users=2]"},
          {"SELECT (SELECT count(*) FROM orders WHERE user_id = 2) FROM users WHERE id = 2",
           "K![orders=2,users=2]"},
          {"SELECT * FROM users WHERE id = 1 UNION SELECT * FROM users WHERE id = 2",
           "K![users=1,users=2]"},
          {"SELECT * FROM users WHERE id = 1 UNION ALL SELECT * FROM users",
           "X:UNION/INTERSECT/EXCEPT branch"},
          {"SELECT * FROM users WHERE id = 1; SELECT * FROM users WHERE id = 2",
           "K![users=1,users=2]"},
          {"BEGIN; UPDATE users SET name = 'a' WHERE id = 1; COMMIT", "wK[users=1]"},
          {"SELECT 1; SELECT * FROM users", "X:one of several statements"},
          {"SELECT * FROM users WHERE id = 1; SELECT * FROM users", "X:one of several statements"},
          {"EXPLAIN SELECT * FROM users WHERE id = 3", "K[users=3]"},
          {"EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM users WHERE id = 3", "K[users=3]"},
          {"EXPLAIN SELECT * FROM users", "A[users]"},
          {"SELECT * FROM (users u JOIN orders o ON o.user_id = u.id) WHERE u.id = 1",
           "X:parenthesized join"},
          {"WITH d AS (DELETE FROM users WHERE id = 4 RETURNING *) SELECT * FROM d", "wK[users=4]"},
          {"SELECT * FROM users WHERE id = 'unterminated", "X:cannot read this statement"},
          {"SELECT * FROM users WHERE name = 'a\\' AND id = 5",
           "K[users=5]"},  // standard_conforming_strings: the backslash is a character
      });
}

TEST(ShardKeys, MysqlStatements) {
  check(Dialect::Mysql,
        {
            {"SELECT * FROM users WHERE id = 5", "K[users=5]"},
            {"SELECT * FROM users WHERE id = ?", "K[users=$1]"},
            {"SELECT * FROM users WHERE name = ? AND id = ?", "K[users=$2]"},
            {"SELECT * FROM `users` WHERE `id` = 5", "K[users=5]"},
            {"SELECT * FROM USERS WHERE ID = 5", "K[users=5]"},
            {"SELECT * FROM app.users WHERE id = 5", "K[users=5]"},
            {"SELECT * FROM users WHERE id = \"5\"", "K[users=5]"},
            {"SELECT * FROM users WHERE id IN (?, ?, ?)", "K[users=$1,users=$2,users=$3]"},
            {"SELECT * FROM users WHERE id = 5 || id = 6", "A[users]"},
            {"SELECT * FROM users WHERE id = 5 XOR name = 'a'", "A[users]"},
            {"SELECT * FROM users WHERE id = 5 LOCK IN SHARE MODE", "K[users=5]"},
            {"SELECT SQL_CALC_FOUND_ROWS * FROM users WHERE id = 5 LIMIT 1", "K[users=5]"},
            {"SELECT * FROM users WHERE name = 'a\\'b' AND id = 5", "K[users=5]"},
            {"SELECT * FROM users WHERE name = 'x\\' AND id = 6 -- ' AND id = 7",
             "X:backslash in a string"},
            {"SELECT * FROM users WHERE id = '5\\0'", "A[users]"},
            {"SELECT * FROM users", "A[users]"},
            {"SELECT * FROM users u STRAIGHT_JOIN orders o ON o.user_id = u.id WHERE u.id = 1",
             "K[users=1]"},
            {"SELECT * FROM users USE INDEX (PRIMARY) WHERE id = 1", "K[users=1]"},
            {"INSERT INTO users (id, name) VALUES (?, ?)", "wK[users=$1]"},
            {"INSERT INTO users (name, id) VALUES (?, ?), (?, ?)", "wK[users=$2,users=$4]"},
            {"INSERT IGNORE INTO users (id) VALUES (1)", "wK[users=1]"},
            {"INSERT LOW_PRIORITY users (id) VALUES (1)", "wK[users=1]"},
            {"INSERT INTO users (id, n) VALUE (1, 2)", "wK[users=1]"},
            {"REPLACE INTO users (id, name) VALUES (1, 'a')", "wK[users=1]"},
            {"INSERT INTO users SET id = 3, name = 'x'", "wK[users=3]"},
            {"INSERT INTO users SET name = 'x', id = ?", "wK[users=$1]"},
            {"INSERT INTO users SET name = 'x'", "X:must set its sharding key"},
            {"INSERT INTO users (id, n) VALUES (1, 2) ON DUPLICATE KEY UPDATE n = n + 1",
             "wK[users=1]"},
            {"INSERT INTO users (id, n) VALUES (1, 2) ON DUPLICATE KEY UPDATE id = 3",
             "X:changes the sharding key"},
            {"UPDATE users SET name = ? WHERE id = ?", "wK[users=$2]"},
            {"UPDATE LOW_PRIORITY users SET name = 'a' WHERE id = 1", "wK[users=1]"},
            {"UPDATE users SET id = 2 WHERE id = 1", "X:changes the sharding key"},
            {"UPDATE users u JOIN orders o ON o.user_id = u.id SET o.total = 1 WHERE u.id = 4",
             "wK[users=4]"},
            {"UPDATE users SET name = 'a' WHERE id = 1 LIMIT 1", "wK[users=1]"},
            {"UPDATE users SET name = 'a' ORDER BY id LIMIT 1", "wA[users]"},
            {"DELETE FROM users WHERE id = ?", "wK[users=$1]"},
            {"DELETE FROM users WHERE id = 1 LIMIT 1", "wK[users=1]"},
            {"DELETE QUICK FROM users WHERE id = 1", "wK[users=1]"},
            {"DELETE FROM users", "wA[users]"},
            {"SELECT * FROM countries", "R"},
            {"INSERT INTO countries (code) VALUES ('de')", "wR"},
            {"SELECT @@version", "N"},
            {"SELECT LAST_INSERT_ID()", "N"},
            {"SET NAMES utf8mb4", "N"},
            {"USE app", "N"},
            {"SHOW TABLES", "N"},
            {"START TRANSACTION", "N"},
            {"SELECT * FROM accounts WHERE email = 'x@y'", "K[accounts=x@y]"},
        });
}

// "x@y" is a string in MySQL's default mode and a column name under
// ANSI_QUOTES; the proxy reads the default mode (as the classifier does) and
// looks twice only where a backslash could change where a string ends.
TEST(ShardKeys, MysqlDoubleQuotedKeyWithoutBackslash) {
  const Topology topo = testing::four_shards();
  const char* sql = "SELECT * FROM accounts WHERE email = \"x@y\"";
  const Statement stmt = analyze(sql, Dialect::Mysql, AnalyzeOptions{});
  EXPECT_EQ(describe(analyze_shards(sql, Dialect::Mysql, stmt, topo)), "K[accounts=x@y]");
}

TEST(ShardKeys, NoShardingConfiguredSkipsAnalysis) {
  Topology topo;
  topo.shards.resize(1);
  const char* sql = "SELECT * FROM users WHERE id = 5";
  const Statement stmt = analyze(sql, Dialect::Postgres, AnalyzeOptions{});
  EXPECT_EQ(describe(analyze_shards(sql, Dialect::Postgres, stmt, topo)), "N");
}

TEST(ShardKeys, UnshardedTableNextToShardedRowsIsNamed) {
  const Topology topo = testing::four_shards();
  const char* sql = "SELECT * FROM users u JOIN logs l ON l.user_id = u.id WHERE u.id = 1";
  const Statement stmt = analyze(sql, Dialect::Postgres, AnalyzeOptions{});
  EXPECT_EQ(analyze_shards(sql, Dialect::Postgres, stmt, topo).unsharded_table, "logs");
  const char* cte = "WITH x AS (SELECT * FROM users WHERE id = 3) SELECT * FROM x";
  const Statement s2 = analyze(cte, Dialect::Postgres, AnalyzeOptions{});
  EXPECT_EQ(analyze_shards(cte, Dialect::Postgres, s2, topo).unsharded_table, "");
}

class PlanCacheTest : public ::testing::Test {
 protected:
  std::string run(const std::string& sql, Dialect d = Dialect::Postgres) {
    return describe(cache.analyze(sql, d, analyze(sql, d, AnalyzeOptions{}), topo));
  }
  Topology topo = testing::four_shards();
  ShardPlanCache cache{3};
};

TEST_F(PlanCacheTest, OneAnalysisPerShapeWithEachTextsLiterals) {
  EXPECT_EQ(run("SELECT * FROM users WHERE id = 5"), "K[users=5]");
  EXPECT_EQ(run("SELECT * FROM users WHERE id = 77"), "K[users=77]");
  EXPECT_EQ(run("select * from users where id = 8"), "K[users=8]");  // another spelling: a shape
  EXPECT_EQ(run("SELECT  *  FROM users WHERE id=9 -- note"), "K[users=9]");
  EXPECT_EQ(cache.misses(), 2u);
  EXPECT_EQ(cache.hits(), 2u);
  EXPECT_EQ(run("SELECT * FROM users WHERE id = -5"), "K[users=-5]");
  EXPECT_EQ(run("SELECT * FROM users WHERE id = -6"), "K[users=-6]");
  EXPECT_EQ(run("SELECT * FROM users WHERE id=-7"), "K[users=-7]");
  EXPECT_EQ(run("SELECT * FROM users WHERE id=-8"), "K[users=-8]");
}

TEST_F(PlanCacheTest, ListsRowsAndStringsRebind) {
  EXPECT_EQ(run("SELECT * FROM users WHERE id IN (1, 2, 3)"), "K[users=1,users=2,users=3]");
  EXPECT_EQ(run("SELECT * FROM users WHERE id IN (4, 5, 6)"), "K[users=4,users=5,users=6]");
  EXPECT_EQ(run("INSERT INTO users (name, id) VALUES ('a', 1), ('b', 2)"), "wK[users=1,users=2]");
  EXPECT_EQ(run("INSERT INTO users (name, id) VALUES ('c', 3), ('it''s', 4)"),
            "wK[users=3,users=4]");
  EXPECT_EQ(run("SELECT * FROM accounts WHERE email = 'x@y'"), "K[accounts=x@y]");
  EXPECT_EQ(run("SELECT * FROM accounts WHERE email = 'o''neil@y'"), "K[accounts=o'neil@y]");
  EXPECT_GE(cache.hits(), 3u);
}

TEST_F(PlanCacheTest, StringsAndNumbersAreDifferentShapes) {
  EXPECT_EQ(run("SELECT * FROM users WHERE id = '5'"), "K[users=5]");
  EXPECT_EQ(run("SELECT * FROM users WHERE id = 6"), "K[users=6]");
  EXPECT_EQ(cache.misses(), 2u);
  // E'' strings are part of the shape: never keys.
  EXPECT_EQ(run("SELECT * FROM users WHERE id = E'5'"), "A[users]");
}

TEST_F(PlanCacheTest, BackslashesAreNeverCached) {
  EXPECT_EQ(run("SELECT * FROM users WHERE name = 'a\\' AND id = 5", Dialect::Mysql),
            run("SELECT * FROM users WHERE name = 'a\\' AND id = 5", Dialect::Mysql));
  EXPECT_EQ(cache.hits() + cache.misses(), 0u);
}

TEST_F(PlanCacheTest, BoundedAndClearedWithANewTopology) {
  run("SELECT * FROM users WHERE id = 1");
  run("SELECT * FROM orders WHERE user_id = 1");
  run("SELECT * FROM accounts WHERE email = 'a'");
  run("SELECT * FROM events WHERE id = 1");  // evicts users
  EXPECT_EQ(cache.size(), 3u);
  run("SELECT * FROM users WHERE id = 2");
  EXPECT_EQ(cache.misses(), 5u);
  Topology next = topo;
  next.version = 2;
  next.sharding.tables[0].column = "uid";
  const std::string sql = "SELECT * FROM users WHERE uid = 3";
  EXPECT_EQ(describe(cache.analyze(sql, Dialect::Postgres,
                                   analyze(sql, Dialect::Postgres, AnalyzeOptions{}), next)),
            "K[users=3]");
  EXPECT_EQ(cache.size(), 1u);
}

}  // namespace
}  // namespace shardgate::router
