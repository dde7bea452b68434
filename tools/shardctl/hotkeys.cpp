#include "tools/shardctl/hotkeys.h"

#include <boost/json.hpp>
#include <cstdio>
#include <sstream>

#include "tools/shardctl/admin_client.h"

namespace shardgate::shardctl {
namespace {

namespace json = boost::json;

double number(const json::value& v) {
  if (v.is_double()) return v.as_double();
  if (v.is_int64()) return static_cast<double>(v.as_int64());
  if (v.is_uint64()) return static_cast<double>(v.as_uint64());
  return 0;
}

std::string text(const json::value& v) {
  return v.is_string() ? std::string(v.as_string()) : json::serialize(v);
}

}  // namespace

Result<std::string> fetch_hot_keys(const std::string& admin,
                                   const std::optional<std::string>& shard, bool as_json) {
  auto reply = admin_request(admin, false, "/api/v1/hotkeys" + (shard ? "?shard=" + *shard : ""));
  if (!reply) return reply.error();
  boost::system::error_code ec;
  json::value doc = json::parse(reply->body, ec);
  if (ec || !doc.is_object())
    return make_error("unexpected answer from the admin API: " + reply->body);
  const auto& root = doc.as_object();
  if (reply->status != 200)
    return make_error(root.contains("error") ? text(root.at("error")) : reply->body);
  if (as_json) return reply->body;
  if (!root.at("enabled").as_bool()) return text(root.at("reason")) + "\n";
  std::ostringstream out;
  char line[512];
  const auto& th = root.at("thresholds").as_object();
  std::snprintf(line, sizeof line,
                "window %.0f ms, %.0f keys per shard and thread (%.1f KB per shard at most)\n"
                "hot at >= %.1f%% of statements and >= %.0f/s",
                number(root.at("window_ms")), number(root.at("capacity")),
                number(root.at("max_shard_memory_bytes")) / 1024, number(th.at("share")) * 100,
                number(th.at("min_rate")));
  out << line;
  if (number(th.at("rate")) > 0) {
    std::snprintf(line, sizeof line, ", or >= %.0f/s", number(th.at("rate")));
    out << line;
  }
  std::snprintf(line, sizeof line, "\ntotal %.0f statements/s, shard skew %.2f (1 = even)\n\n",
                number(root.at("total_rate")), number(root.at("skew")));
  out << line;
  std::snprintf(line, sizeof line, "%-10s %10s %7s\n", "SHARD", "RATE/S", "SHARE");
  out << line;
  for (const auto& sv : root.at("shards").as_array()) {
    const auto& s = sv.as_object();
    std::snprintf(line, sizeof line, "%-10s %10.0f %6.1f%%\n", text(s.at("shard")).c_str(),
                  number(s.at("rate")), number(s.at("share")) * 100);
    out << line;
  }
  const auto& keys = root.at("keys").as_array();
  out << "\n";
  if (keys.empty()) {
    out << "no keys seen in the window\n";
    return out.str();
  }
  std::snprintf(line, sizeof line, "%-16s %-24s %-10s %10s %8s %7s %9s %s\n", "TABLE", "KEY",
                "SHARD", "RATE/S", "+/-", "SHARE", "OF SHARD", "HOT");
  out << line;
  for (const auto& kv : keys) {
    const auto& k = kv.as_object();
    std::snprintf(line, sizeof line, "%-16s %-24s %-10s %10.0f %8.0f %6.1f%% %8.1f%% %s\n",
                  text(k.at("table")).c_str(), text(k.at("key")).c_str(),
                  text(k.at("shard")).c_str(), number(k.at("rate")), number(k.at("rate_error")),
                  number(k.at("share")) * 100, number(k.at("shard_share")) * 100,
                  k.at("hot").as_bool() ? "yes" : "");
    out << line;
  }
  return out.str();
}

}  // namespace shardgate::shardctl
