// Cost of the router per statement: analyze() and route() on typical texts.
// A benchmark, not a test: `build/bin/router_bench` prints ns per call.
#include <benchmark/benchmark.h>

#include <string>

#include "router/classify.h"
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

}  // namespace

BENCHMARK_MAIN();
