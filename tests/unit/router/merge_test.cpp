// Scatter-gather: what each shard runs (plan_merge) and how the shards' rows
// combine (Merger), checked against the answer one database would give.
#include <gtest/gtest.h>

#include <algorithm>

#include "router/merge_plan.h"
#include "router/merger.h"

namespace shardgate::router {
namespace {

MergePlan plan(std::string_view sql, Dialect d = Dialect::Postgres) {
  auto p = plan_merge(sql, d);
  EXPECT_TRUE(p) << sql << ": " << (p ? "" : p.error().message());
  return p ? *p : MergePlan{};
}

std::string refusal(std::string_view sql, Dialect d = Dialect::Postgres) {
  auto p = plan_merge(sql, d);
  EXPECT_FALSE(p) << sql << " was planned as: " << (p ? p->shard_sql : "");
  return p ? "" : p.error().message();
}

TEST(MergePlan, ShardTextPushesLimitDownAndSplitsAvg) {
  struct Case {
    const char* sql;
    const char* shard_sql;
  } cases[] = {
      {"SELECT * FROM users", "SELECT * FROM users"},
      {"SELECT id FROM users ORDER BY id LIMIT 10", "SELECT id FROM users ORDER BY id LIMIT 10"},
      {"SELECT id FROM users ORDER BY id LIMIT 10 OFFSET 5",
       "SELECT id FROM users ORDER BY id LIMIT 15"},
      {"SELECT id FROM users ORDER BY id OFFSET 5 LIMIT 10",
       "SELECT id FROM users ORDER BY id LIMIT 15"},
      {"SELECT id FROM users ORDER BY id OFFSET 5", "SELECT id FROM users ORDER BY id"},
      {"SELECT id FROM users LIMIT ALL", "SELECT id FROM users"},
      {"SELECT count(*) FROM users", "SELECT count(*) FROM users"},
      {"SELECT avg(score) FROM users", "SELECT sum(score), count(score) FROM users"},
      {"SELECT name, avg(score) AS a, max(score) FROM users GROUP BY name ORDER BY a DESC LIMIT 3",
       "SELECT name, sum(score) AS a, max(score), count(score) FROM users GROUP BY name"},
      {"SELECT DISTINCT name FROM users ORDER BY name LIMIT 2",
       "SELECT DISTINCT name FROM users ORDER BY name"},
      {"SELECT id FROM users WHERE score > 3 ORDER BY score DESC, id LIMIT 4;",
       "SELECT id FROM users WHERE score > 3 ORDER BY score DESC, id LIMIT 4"},
  };
  for (const auto& c : cases) EXPECT_EQ(plan(c.sql).shard_sql, c.shard_sql) << c.sql;
  EXPECT_EQ(plan("SELECT id FROM users ORDER BY id LIMIT 5, 10", Dialect::Mysql).shard_sql,
            "SELECT id FROM users ORDER BY id LIMIT 15");
}

TEST(MergePlan, ReadsTheMergeShape) {
  const MergePlan p = plan(
      "SELECT name, count(*), avg(score) FROM users GROUP BY 1 ORDER BY 2 DESC "
      "LIMIT 3 OFFSET 1");
  EXPECT_TRUE(p.aggregating);
  EXPECT_EQ(p.aggregates,
            (std::vector<Aggregate>{Aggregate::None, Aggregate::Count, Aggregate::Avg}));
  ASSERT_EQ(p.group_by.size(), 1u);
  EXPECT_EQ(p.group_by[0].position, 1u);
  ASSERT_EQ(p.order_by.size(), 1u);
  EXPECT_EQ(p.order_by[0].column.position, 2u);
  EXPECT_TRUE(p.order_by[0].descending);
  EXPECT_EQ(p.offset, 1u);
  EXPECT_EQ(p.limit, 3u);
  ASSERT_EQ(p.avg_counts.size(), 1u);
  EXPECT_EQ(p.avg_counts[0], (std::pair<std::size_t, std::size_t>{2, 3}));
  const MergePlan by_expr =
      plan("SELECT name, count(*) FROM users GROUP BY name ORDER BY count(*)");
  EXPECT_EQ(by_expr.order_by[0].column.position, 2u);
  const MergePlan by_name = plan("SELECT u.name FROM users u ORDER BY u.name");
  EXPECT_EQ(by_name.order_by[0].column.name, "name");
}

TEST(MergePlan, RefusesWhatItCannotCombine) {
  const std::pair<const char*, const char*> cases[] = {
      {"SELECT count(DISTINCT name) FROM users", "count(DISTINCT"},
      {"SELECT count(*) + 1 FROM users", "inside an expression"},
      {"SELECT sum(score) / count(*) FROM users", "inside an expression"},
      {"SELECT array_agg(name) FROM users", "array_agg"},
      {"SELECT name, count(*) FROM users GROUP BY name HAVING count(*) > 1", "HAVING"},
      {"SELECT id FROM users ORDER BY lower(name)", "must name a selected column"},
      {"SELECT id FROM users ORDER BY id NULLS FIRST", "NULLS FIRST"},
      {"SELECT id FROM users LIMIT $1", "integer literals"},
      {"SELECT id FROM users FOR UPDATE", "locking reads"},
      {"SELECT DISTINCT ON (name) id FROM users", "DISTINCT ON"},
      {"SELECT row_number() OVER () FROM users", "window functions"},
      {"SELECT * , count(*) FROM users", "SELECT * with aggregates"},
      {"SELECT id FROM users GROUP BY lower(name)", "must name a selected column"},
      {"UPDATE users SET x = 1", "only SELECT"},
      {"SELECT id FROM users FETCH FIRST 3 ROWS ONLY", "FETCH"},
  };
  for (const auto& [sql, words] : cases) {
    const std::string e = refusal(sql);
    EXPECT_NE(e.find(words), std::string::npos) << sql << " -> " << e;
  }
}

// Runs a plan over per-shard rows the way the session does: push what the
// merger wants, pull what it gives.
std::vector<Row> merge(const MergePlan& p, std::vector<std::vector<Row>> shards,
                       const std::vector<std::string>& names, const std::vector<ValueKind>& kinds,
                       Dialect d = Dialect::Postgres) {
  Merger m(p, shards.size(), d);
  auto ok = m.set_columns(names, kinds);
  EXPECT_TRUE(ok) << (ok ? "" : ok.error().message());
  std::vector<std::size_t> at(shards.size(), 0);
  std::vector<Row> out;
  for (int guard = 0; guard < 100000 && !m.finished(); ++guard) {
    while (auto row = m.next()) out.push_back(std::move(*row));
    auto w = m.wants();
    if (!w) {
      if (!m.finished() && !m.next()) break;
      continue;
    }
    if (at[*w] < shards[*w].size())
      m.push(*w, shards[*w][at[*w]++]);
    else
      m.end(*w);
  }
  while (auto row = m.next()) out.push_back(std::move(*row));
  return out;
}

Row r(std::initializer_list<const char*> values) {
  Row row;
  for (const char* v : values) row.push_back(v ? std::optional<std::string>(v) : std::nullopt);
  return row;
}

TEST(Merger, ConcatenatesWithOffsetAndLimit) {
  const auto p = plan("SELECT id FROM users LIMIT 3 OFFSET 2");
  const auto out = merge(p, {{r({"1"}), r({"2"})}, {r({"3"}), r({"4"}), r({"5"})}, {r({"6"})}},
                         {"id"}, {ValueKind::Integer});
  EXPECT_EQ(out, (std::vector<Row>{r({"3"}), r({"4"}), r({"5"})}));
}

TEST(Merger, KWayMergeKeepsOrderAndReadsOneRowPerShard) {
  const auto p = plan("SELECT id, name FROM users ORDER BY name DESC, id");
  const auto out = merge(
      p, {{r({"3", "c"}), r({"1", "a"})}, {r({"9", nullptr}), r({"4", "c"}), r({"2", "b"})}, {}},
      {"id", "name"}, {ValueKind::Integer, ValueKind::Text});
  // PostgreSQL: NULL sorts last ascending, so first descending (each shard
  // returns its rows in that order too).
  EXPECT_EQ(out, (std::vector<Row>{r({"9", nullptr}), r({"3", "c"}), r({"4", "c"}), r({"2", "b"}),
                                   r({"1", "a"})}));
}

TEST(Merger, NumbersCompareAsNumbers) {
  const auto p = plan("SELECT v FROM t ORDER BY v LIMIT 4");
  const auto out = merge(p, {{r({"-10"}), r({"2"}), r({"100"})}, {r({"1.5"}), r({"30"})}}, {"v"},
                         {ValueKind::Number});
  EXPECT_EQ(out, (std::vector<Row>{r({"-10"}), r({"1.5"}), r({"2"}), r({"30"})}));
}

TEST(Merger, MysqlNullsFirstAndCaseInsensitiveText) {
  const auto p = plan("SELECT name FROM t ORDER BY name", Dialect::Mysql);
  const auto out = merge(p, {{r({"apple"}), r({"Cherry"})}, {r({nullptr}), r({"Banana"})}},
                         {"name"}, {ValueKind::TextCi}, Dialect::Mysql);
  EXPECT_EQ(out, (std::vector<Row>{r({nullptr}), r({"apple"}), r({"Banana"}), r({"Cherry"})}));
}

TEST(Merger, AggregatesCombineAcrossShards) {
  const auto p = plan("SELECT count(*), sum(score), min(score), max(name), avg(score) FROM users");
  // Shards return (count, sum, min, max, sum-for-avg, hidden count).
  const auto out = merge(p,
                         {{r({"2", "10", "3", "bob", "10", "2"})},
                          {r({"0", nullptr, nullptr, nullptr, nullptr, "0"})},
                          {r({"3", "5", "-1", "zed", "5", "3"})}},
                         {"count", "sum", "min", "max", "sum", "count"},
                         {ValueKind::Integer, ValueKind::Integer, ValueKind::Integer,
                          ValueKind::Text, ValueKind::Integer, ValueKind::Integer});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], r({"5", "15", "-1", "zed", "3.0000000000000000"}));
}

TEST(Merger, GroupByMergesGroupsThenOrdersAndLimits) {
  const auto p = plan(
      "SELECT name, count(*), sum(score) FROM users GROUP BY name ORDER BY 2 DESC, "
      "name LIMIT 2");
  const auto out =
      merge(p,
            {{r({"a", "2", "4"}), r({"b", "1", "1"})},
             {r({"a", "1", "1"}), r({"c", "3", "9"})},
             {r({"b", "2", "2.5"})}},
            {"name", "count", "sum"}, {ValueKind::Text, ValueKind::Integer, ValueKind::Number});
  EXPECT_EQ(out, (std::vector<Row>{r({"a", "3", "5"}), r({"b", "3", "3.5"})}));
}

TEST(Merger, DistinctAcrossShards) {
  const auto p = plan("SELECT DISTINCT name FROM users ORDER BY name");
  const auto out = merge(p, {{r({"a"}), r({"b"})}, {r({"a"}), r({"c"})}, {r({"b"})}}, {"name"},
                         {ValueKind::Text});
  EXPECT_EQ(out, (std::vector<Row>{r({"a"}), r({"b"}), r({"c"})}));
}

TEST(Merger, AvgOfNoRowsIsNull) {
  const auto p = plan("SELECT avg(score) FROM users");
  const auto out = merge(p, {{r({nullptr, "0"})}, {r({nullptr, "0"})}}, {"sum", "count"},
                         {ValueKind::Integer, ValueKind::Integer});
  EXPECT_EQ(out, (std::vector<Row>{r({nullptr})}));
}

TEST(Merger, UnknownOrderByNameIsAnError) {
  const auto p = plan("SELECT id FROM users ORDER BY missing");
  Merger m(p, 2, Dialect::Postgres);
  auto r1 = m.set_columns({"id"}, {ValueKind::Integer});
  ASSERT_FALSE(r1);
  EXPECT_NE(r1.error().message().find("ORDER BY missing must be a selected column"),
            std::string::npos);
}

TEST(Merger, PlainColumnOutsideGroupByIsAnError) {
  const auto p = plan("SELECT name, id, count(*) FROM users GROUP BY name");
  Merger m(p, 2, Dialect::Postgres);
  auto r1 = m.set_columns({"name", "id", "count"},
                          {ValueKind::Text, ValueKind::Integer, ValueKind::Integer});
  ASSERT_FALSE(r1);
  EXPECT_NE(r1.error().message().find("neither aggregated nor in GROUP BY"), std::string::npos);
}

TEST(Merger, ManyShardsBoundedHeads) {
  // 4 shards x 500 sorted rows: the k-way merge yields a sorted whole.
  std::vector<std::vector<Row>> shards(4);
  for (int i = 0; i < 2000; ++i) shards[i % 4].push_back(r({std::to_string(i).c_str()}));
  const auto out =
      merge(plan("SELECT id FROM t ORDER BY id"), shards, {"id"}, {ValueKind::Integer});
  ASSERT_EQ(out.size(), 2000u);
  for (int i = 0; i < 2000; ++i) EXPECT_EQ(*out[i][0], std::to_string(i));
}

}  // namespace
}  // namespace shardgate::router
