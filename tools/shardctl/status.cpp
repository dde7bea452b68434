#include "tools/shardctl/status.h"

// Boost.JSON header-only: its definitions are compiled in this one file.
#include <boost/json/src.hpp>
#include <cstdio>
#include <sstream>

#include "proxy/config/load_config.h"
#include "tools/shardctl/admin_client.h"

namespace shardgate::shardctl {

namespace json = boost::json;

namespace {

std::string text(const json::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  if (v.is_null()) return "-";
  if (v.is_bool()) return v.as_bool() ? "yes" : "no";
  return json::serialize(v);
}

}  // namespace

Result<std::string> fetch_status(const std::string& admin, bool as_json) {
  auto body = admin_get(admin, "/api/v1/backends");
  if (!body || as_json) return body;
  boost::system::error_code ec;
  json::value doc = json::parse(*body, ec);
  if (ec || !doc.is_object() || !doc.as_object().contains("backends"))
    return make_error("unexpected answer from the admin API: " + *body);
  const auto& root = doc.as_object();
  std::ostringstream out;
  out << "cluster " << text(root.at("cluster")) << "  topology v"
      << text(root.at("topology_version")) << "  clients " << text(root.at("clients")) << "\n";
  char line[256];
  std::snprintf(line, sizeof line, "%-18s %-6s %-8s %-8s %-4s %-12s %-10s %-6s %-6s %-7s %s\n",
                "BACKEND", "SHARD", "ROLE", "SEEN AS", "UP", "POSITION", "LAG", "OPEN", "IDLE",
                "WAITING", "LAST ERROR");
  out << line;
  for (const auto& b : root.at("backends").as_array()) {
    const auto& o = b.as_object();
    const auto& pool = o.at("pool").as_object();
    auto field = [&](const char* k) { return o.contains(k) ? text(o.at(k)) : std::string("-"); };
    // PostgreSQL: WAL LSN and bytes behind; MySQL: GTID sequence and transactions behind.
    const bool mysql = o.contains("gtid_seq");
    const std::string position = mysql ? "gtid " + field("gtid_seq") : field("lsn");
    const std::string lag = mysql ? field("lag_transactions") + " tx" : field("lag_bytes");
    std::snprintf(line, sizeof line, "%-18s %-6s %-8s %-8s %-4s %-12s %-10s %-6s %-6s %-7s %s\n",
                  field("name").c_str(), field("shard").c_str(), field("role").c_str(),
                  field("observed_role").c_str(), field("up").c_str(), position.c_str(),
                  lag.c_str(), text(pool.at("open")).c_str(), text(pool.at("idle")).c_str(),
                  text(pool.at("waiting")).c_str(), field("last_error").c_str());
    out << line;
  }
  return out.str();
}

Result<std::string> fetch_topology(const std::string& admin, bool as_json) {
  auto body = admin_get(admin, "/api/v1/topology");
  if (!body || as_json) return body;
  boost::system::error_code ec;
  json::value doc = json::parse(*body, ec);
  if (ec || !doc.is_object() || !doc.as_object().contains("shards"))
    return make_error("unexpected answer from the admin API: " + *body);
  const auto& root = doc.as_object();
  std::ostringstream out;
  out << "cluster " << text(root.at("cluster")) << "  topology v" << text(root.at("version"))
      << " (" << text(root.at("reason")) << ")\n";
  const std::string store = text(root.at("store"));
  out << "store " << (store.empty() ? "none (no data_dir)" : store) << "\n\n";
  char line[512];
  std::snprintf(line, sizeof line, "%-8s %-10s %-8s %s\n", "SHARD", "KEY RANGE", "DEFAULT",
                "MEMBERS");
  out << line;
  for (const auto& sv : root.at("shards").as_array()) {
    const auto& shard = sv.as_object();
    std::string members;
    for (const auto& mv : shard.at("members").as_array()) {
      const auto& m = mv.as_object();
      members += (members.empty() ? "" : ", ") + text(m.at("name")) + " (" + text(m.at("role")) +
                 " " + text(m.at("address")) + ")";
    }
    std::snprintf(line, sizeof line, "%-8s %-10s %-8s %s\n", text(shard.at("name")).c_str(),
                  text(shard.at("key_range")).c_str(), shard.at("default").as_bool() ? "yes" : "",
                  members.c_str());
    out << line;
  }
  const auto& tables = root.at("sharded_tables").as_array();
  out << "\nsharded tables:" << (tables.empty() ? " none" : "") << "\n";
  for (const auto& tv : tables) {
    const auto& t = tv.as_object();
    out << "  " << text(t.at("name")) << " by " << text(t.at("column")) << " ("
        << text(t.at("strategy")) << ", " << text(t.at("key_type")) << " key)";
    if (t.contains("ranges")) {
      for (const auto& rv : t.at("ranges").as_array()) {
        const auto& r = rv.as_object();
        out << " [" << (r.contains("from") ? text(r.at("from")) : "") << ", "
            << (r.contains("to") ? text(r.at("to")) : "") << ") -> " << text(r.at("shard"));
      }
    }
    out << "\n";
  }
  std::string reference;
  for (const auto& rv : root.at("reference_tables").as_array())
    reference += (reference.empty() ? "" : ", ") + text(rv);
  out << "reference tables: " << (reference.empty() ? "none" : reference) << "\n";
  return out.str();
}

Result<std::string> admin_from_config(const std::string& config_path) {
  auto cfg = config::load_config_file(config_path);
  if (!cfg) return cfg.error();
  if (cfg->admin().port() == 0)
    return make_error("the config sets no admin.port: the admin API is off");
  return cfg->admin().address() + ":" + std::to_string(cfg->admin().port());
}

}  // namespace shardgate::shardctl
