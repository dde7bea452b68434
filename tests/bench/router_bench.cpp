// Cost of the router per statement: analyze() and route() on typical texts.
// A benchmark, not a test: `build/bin/router_bench` prints ns per call.
#include <benchmark/benchmark.h>

#include <chrono>
#include <string>

#include "router/classify.h"
#include "router/hot_keys.h"
#include "router/merge_plan.h"
#include "router/merger.h"
#include "router/route.h"
#include "router/shard_keys.h"
#include "router/shard_map.h"
#include "router/shard_route.h"

namespace {

using namespace shardgate::router;

void analyze_text(benchmark::State& state, const std::string& sql) {
  const AnalyzeOptions options;
  for (auto _ : state) benchmark::DoNotOptimize(analyze(sql, Dialect::Postgres, options));
}

void BM_AnalyzeSelect100(benchmark::State& state) {
  analyze_text(state,
               "SELECT id, name, email FROM users u WHERE u.tenant_id = $1 AND u.status = 'active' "
               "LIMIT 50");
}
BENCHMARK(BM_AnalyzeSelect100);

void BM_AnalyzePgbenchSelect(benchmark::State& state) {
  analyze_text(state, "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;");
}
BENCHMARK(BM_AnalyzePgbenchSelect);

void BM_AnalyzeUpdate(benchmark::State& state) {
  analyze_text(state, "UPDATE pgbench_accounts SET abalance = abalance + -4212 WHERE aid = 48213;");
}
BENCHMARK(BM_AnalyzeUpdate);

void BM_AnalyzeAndRoute(benchmark::State& state) {
  const AnalyzeOptions options;
  const std::string sql = "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;";
  const SessionView view;
  for (auto _ : state)
    benchmark::DoNotOptimize(route(analyze(sql, Dialect::Postgres, options), view));
}
BENCHMARK(BM_AnalyzeAndRoute);

Topology four_shards() {
  Topology t;
  const auto ranges = even_key_ranges(4);
  for (std::uint32_t s = 0; s < 4; ++s) {
    ShardInfo info;
    info.name = "s" + std::to_string(s);
    info.key_range = ranges[s];
    t.shards.push_back(info);
  }
  ShardedTable accounts;
  accounts.name = "pgbench_accounts";
  accounts.column = "aid";
  t.sharding.tables.push_back(accounts);
  return t;
}

// Everything the data path does for a keyed simple query on a sharded
// cluster: classify, read the key, hash it, find the shard.
void BM_ShardRouteLiteral(benchmark::State& state) {
  const AnalyzeOptions options;
  const Topology topo = four_shards();
  const std::string sql = "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;";
  for (auto _ : state) {
    const Statement stmt = analyze(sql, Dialect::Postgres, options);
    const ShardAnalysis a = analyze_shards(sql, Dialect::Postgres, stmt, topo);
    benchmark::DoNotOptimize(resolve_shards(a, {}, topo));
  }
}
BENCHMARK(BM_ShardRouteLiteral);

// The same through the worker's plan cache (a hit: the shape was seen):
// lexing for the shape and rebinding the literal replace the shard analysis.
void BM_ShardRouteLiteralCached(benchmark::State& state) {
  const AnalyzeOptions options;
  const Topology topo = four_shards();
  ShardPlanCache cache;
  const std::string sql = "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;";
  for (auto _ : state) {
    const Statement stmt = analyze(sql, Dialect::Postgres, options);
    const ShardAnalysis a = cache.analyze(sql, Dialect::Postgres, stmt, topo);
    benchmark::DoNotOptimize(resolve_shards(a, {}, topo));
  }
}
BENCHMARK(BM_ShardRouteLiteralCached);

// A prepared statement's execution once its analysis is known (what a plan
// cache hit leaves): bind the parameter, hash it, find the shard.
void BM_ShardResolveBoundParameter(benchmark::State& state) {
  const AnalyzeOptions options;
  const Topology topo = four_shards();
  const std::string sql = "SELECT abalance FROM pgbench_accounts WHERE aid = $1";
  const ShardAnalysis a =
      analyze_shards(sql, Dialect::Postgres, analyze(sql, Dialect::Postgres, options), topo);
  const ParamValue param{ParamValue::Form::Text, "48213"};
  for (auto _ : state) benchmark::DoNotOptimize(resolve_shards(a, {&param, 1}, topo));
}
BENCHMARK(BM_ShardResolveBoundParameter);

// Scatter-gather merge throughput: 4 shards x 25,000 sorted rows of two
// columns through the k-way merge (items_per_second = merged rows/s), and
// the same rows through GROUP BY with COUNT/SUM.
void merge_rows(benchmark::State& state, const char* sql, std::size_t groups) {
  const MergePlan plan = *plan_merge(sql, Dialect::Postgres);
  constexpr std::size_t kShards = 4, kPerShard = 25000;
  std::vector<std::vector<Row>> shards(kShards);
  for (std::size_t i = 0; i < kShards * kPerShard; ++i) {
    Row row{std::to_string(groups ? i % groups : i), std::to_string(i * 7 % 1000)};
    if (groups) row.insert(row.begin() + 1, std::string("1"));  // the shard's count
    shards[i % kShards].push_back(std::move(row));
  }
  const std::vector<std::string> names =
      groups ? std::vector<std::string>{"k", "count", "sum"} : std::vector<std::string>{"k", "v"};
  const std::vector<ValueKind> kinds(names.size(), ValueKind::Integer);
  for (auto _ : state) {
    Merger m(plan, kShards, Dialect::Postgres);
    (void)m.set_columns(names, kinds);
    std::vector<std::size_t> at(kShards, 0);
    std::size_t out = 0;
    while (!m.finished()) {
      while (auto row = m.next()) {
        benchmark::DoNotOptimize(row);
        ++out;
      }
      auto w = m.wants();
      if (!w) break;
      if (at[*w] < shards[*w].size())
        m.push(*w, shards[*w][at[*w]++]);
      else
        m.end(*w);
    }
    while (m.next()) ++out;
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kShards * kPerShard));
}

void BM_MergeOrdered(benchmark::State& state) {
  merge_rows(state, "SELECT k, v FROM t ORDER BY k", 0);
}
BENCHMARK(BM_MergeOrdered)->Unit(benchmark::kMillisecond);

void BM_MergeGroupBy(benchmark::State& state) {
  merge_rows(state, "SELECT k, count(*), sum(v) FROM t GROUP BY k", 1000);
}
BENCHMARK(BM_MergeGroupBy)->Unit(benchmark::kMillisecond);

}  // namespace

// What hot-key detection adds to each routed statement: the clock read, the
// key's id and label, the mutex, the Space-Saving update (Zipf-like keys:
// mostly tracked, sometimes a replacement).
static void BM_HotKeyRecord(benchmark::State& state) {
  shardgate::router::HotKeyRecorder recorder({1.0, 256});
  shardgate::router::KeyValue key;
  std::uint64_t i = 0;
  for (auto _ : state) {
    const double now =
        std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
    // One key in 8 is drawn from a large space, the rest from 100 heavy ones.
    key.integer = static_cast<std::int64_t>((i & 7) ? (i * 2654435761u) % 100 : i);
    recorder.record_key(static_cast<std::uint32_t>(i & 3), 0, key, now);
    ++i;
  }
}
BENCHMARK(BM_HotKeyRecord);

BENCHMARK_MAIN();
