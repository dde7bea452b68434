#include "proxy/metrics.h"

namespace shardgate {

std::string render_prometheus(const std::vector<const Metrics*>& per_thread,
                              const std::string& extra) {
  std::string out;
  auto counter = [&](const char* name, const char* help, std::uint64_t value) {
    out += std::string("# HELP shardgate_") + name + " " + help + "\n";
    out += std::string("# TYPE shardgate_") + name + " counter\n";
    out += std::string("shardgate_") + name + " " + std::to_string(value) + "\n";
  };
#define SHARDGATE_RENDER_COUNTER(name, help)                                            \
  {                                                                                     \
    std::uint64_t sum = 0;                                                              \
    for (const Metrics* m : per_thread) sum += m->name.load(std::memory_order_relaxed); \
    counter(#name, help, sum);                                                          \
  }
  SHARDGATE_COUNTERS(SHARDGATE_RENDER_COUNTER)
#undef SHARDGATE_RENDER_COUNTER

  std::int64_t clients = 0;
  for (const Metrics* m : per_thread)
    clients += m->clients_connected.load(std::memory_order_relaxed);
  out += "# HELP shardgate_clients_connected Client connections open now\n";
  out += "# TYPE shardgate_clients_connected gauge\n";
  out += "shardgate_clients_connected " + std::to_string(clients) + "\n";

  out +=
      "# HELP shardgate_statement_latency_seconds Time from a client's statement to the server's "
      "answer relayed\n";
  out += "# TYPE shardgate_statement_latency_seconds histogram\n";
  std::uint64_t cumulative = 0;
  std::uint64_t sum_us = 0;
  for (std::size_t i = 0; i <= LatencyHistogram::kBoundsUs.size(); ++i) {
    for (const Metrics* m : per_thread) cumulative += m->statement_latency.bucket(i);
    const std::string le = i < LatencyHistogram::kBoundsUs.size()
                               ? std::to_string(LatencyHistogram::kBoundsUs[i] / 1e6)
                               : std::string("+Inf");
    out += "shardgate_statement_latency_seconds_bucket{le=\"" + le + "\"} " +
           std::to_string(cumulative) + "\n";
  }
  for (const Metrics* m : per_thread) sum_us += m->statement_latency.sum_us();
  out += "shardgate_statement_latency_seconds_sum " + std::to_string(sum_us / 1e6) + "\n";
  out += "shardgate_statement_latency_seconds_count " + std::to_string(cumulative) + "\n";
  out += extra;
  return out;
}

}  // namespace shardgate
