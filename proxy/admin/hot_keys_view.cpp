#include "proxy/admin/hot_keys_view.h"

#include <boost/json.hpp>

namespace shardgate::admin {
namespace {

namespace json = boost::json;

// Keys shown in the metrics: a label per key is a time series per key, so
// only the heaviest few.
constexpr std::size_t kMetricKeys = 10;

std::string shard_name(const router::Topology& t, std::uint32_t shard) {
  return shard < t.shards.size() ? t.shards[shard].name : "shard#" + std::to_string(shard);
}

// Prometheus label values escape backslash, quote and newline.
std::string label(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

Result<HotKeysQuery> parse_hot_keys_query(const std::string& query) {
  HotKeysQuery out;
  std::size_t pos = 0;
  while (pos < query.size()) {
    std::size_t end = query.find('&', pos);
    if (end == std::string::npos) end = query.size();
    const std::string part = query.substr(pos, end - pos);
    pos = end + 1;
    if (part.empty()) continue;
    if (part.rfind("shard=", 0) == 0) {
      out.shard = part.substr(6);
      continue;
    }
    return make_error("unknown parameter '" + part + "': /api/v1/hotkeys takes shard=NAME");
  }
  return out;
}

Result<std::string> hot_keys_json(const HotKeyWatch* watch, const router::HotKeySettings* settings,
                                  const router::Topology& topology, const HotKeysQuery& query) {
  std::optional<std::uint32_t> only;
  if (query.shard) {
    for (std::uint32_t s = 0; s < topology.shards.size(); ++s)
      if (topology.shards[s].name == *query.shard) only = s;
    if (!only) return make_error("no shard is named '" + *query.shard + "'");
  }
  json::object root;
  if (!watch || !settings) {
    root["enabled"] = false;
    root["reason"] =
        "hot-key detection is off: it needs sharded tables (sharding.tables) and "
        "sharding.hot_keys.disabled unset";
    return json::serialize(root) + "\n";
  }
  const auto report = watch->latest();
  const auto& th = watch->thresholds();
  root["enabled"] = true;
  root["window_ms"] = static_cast<std::int64_t>(settings->window_seconds * 1000);
  root["capacity"] = settings->capacity;
  root["thresholds"] = {{"share", th.share}, {"rate", th.rate}, {"min_rate", th.min_rate}};
  root["total_rate"] = report->total_rate;
  root["skew"] = report->skew;
  root["memory_bytes"] = report->memory_bytes;
  root["max_shard_memory_bytes"] = report->max_shard_memory_bytes;
  root["became_hot_total"] = watch->became_hot_total();
  root["cooled_total"] = watch->cooled_total();
  json::array shards;
  for (const auto& s : report->shards) {
    if (only && s.shard != *only) continue;
    shards.push_back(
        {{"shard", shard_name(topology, s.shard)}, {"rate", s.rate}, {"share", s.share}});
  }
  root["shards"] = std::move(shards);
  json::array keys;
  for (const auto& k : report->keys) {
    if (only && k.shard != *only) continue;
    keys.push_back({{"table", k.table},
                    {"key", k.key},
                    {"shard", shard_name(topology, k.shard)},
                    {"rate", k.rate},
                    {"rate_error", k.rate_error},
                    {"share", k.share},
                    {"shard_share", k.shard_share},
                    {"hot", k.hot}});
  }
  root["keys"] = std::move(keys);
  return json::serialize(root) + "\n";
}

std::string hot_keys_metrics(const HotKeyWatch* watch, const router::Topology& topology) {
  if (!watch) return {};
  const auto report = watch->latest();
  std::string out;
  out += "# HELP shardgate_hot_keys Keys that pass the hot-key thresholds now\n";
  out += "# TYPE shardgate_hot_keys gauge\n";
  out += "shardgate_hot_keys " + std::to_string(report->hot.size()) + "\n";
  out += "# HELP shardgate_hot_key_rate Statements per second of the heaviest keys\n";
  out += "# TYPE shardgate_hot_key_rate gauge\n";
  for (std::size_t i = 0; i < report->keys.size() && i < kMetricKeys; ++i) {
    const auto& k = report->keys[i];
    out += "shardgate_hot_key_rate{table=\"" + label(k.table) + "\",key=\"" + label(k.key) +
           "\",shard=\"" + label(shard_name(topology, k.shard)) + "\",hot=\"" +
           (k.hot ? "true" : "false") + "\"} " + std::to_string(k.rate) + "\n";
  }
  out += "# HELP shardgate_shard_load_share Fraction of the routed statements each shard took\n";
  out += "# TYPE shardgate_shard_load_share gauge\n";
  for (const auto& s : report->shards)
    out += "shardgate_shard_load_share{shard=\"" + label(shard_name(topology, s.shard)) + "\"} " +
           std::to_string(s.share) + "\n";
  out += "# HELP shardgate_shard_load_skew Busiest shard's statement rate over the mean shard's\n";
  out += "# TYPE shardgate_shard_load_skew gauge\n";
  out += "shardgate_shard_load_skew " + std::to_string(report->skew) + "\n";
  out += "# HELP shardgate_hot_key_events_total Keys that became hot, and that cooled down\n";
  out += "# TYPE shardgate_hot_key_events_total counter\n";
  out += "shardgate_hot_key_events_total{event=\"hot\"} " +
         std::to_string(watch->became_hot_total()) + "\n";
  out += "shardgate_hot_key_events_total{event=\"cooled\"} " +
         std::to_string(watch->cooled_total()) + "\n";
  return out;
}

}  // namespace shardgate::admin
