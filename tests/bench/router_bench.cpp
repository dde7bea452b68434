// Cost of the router per statement: analyze() and route() on typical texts.
// A benchmark, not a test: `build/bin/router_bench` prints ns per call.
#include <benchmark/benchmark.h>

#include <string>

#include "router/classify.h"
#include "router/route.h"

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

}  // namespace

BENCHMARK_MAIN();
