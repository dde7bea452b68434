#include "tools/shardctl/reshard.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <cstdio>
#include <sstream>

#include "proxy/config/load_config.h"
#include "router/isolate_plan.h"
#include "router/shard_map.h"
#include "tools/shardctl/admin_client.h"

namespace shardgate::shardctl {
namespace {

namespace json = boost::json;

std::string str(const json::object& o, const char* key) {
  return o.contains(key) && o.at(key).is_string() ? std::string(o.at(key).as_string()) : "";
}

// The topology as GET /api/v1/topology shows it, in the router's model
// (shards, key ranges, sharded tables; members are not needed to plan).
Result<router::Topology> topology_of(const json::object& root) {
  router::Topology t;
  for (const auto& sv : root.at("shards").as_array()) {
    const auto& s = sv.as_object();
    router::ShardInfo shard;
    shard.name = str(s, "name");
    const std::string text = str(s, "key_range");
    if (text == router::kSpareKeyRange) {
      shard.spare = true;
      shard.key_range = {0, 0, false};
    } else {
      auto ranges = router::parse_key_ranges(text);
      if (!ranges) return ranges.error();
      shard.key_range = ranges->front();
      shard.more_ranges.assign(ranges->begin() + 1, ranges->end());
    }
    t.shards.push_back(std::move(shard));
  }
  auto shard_index = [&](const std::string& name) {
    for (std::uint32_t i = 0; i < t.shards.size(); ++i)
      if (t.shards[i].name == name) return i;
    return 0u;
  };
  for (const auto& tv : root.at("sharded_tables").as_array()) {
    const auto& o = tv.as_object();
    router::ShardedTable table;
    table.name = str(o, "name");
    table.column = str(o, "column");
    table.strategy =
        str(o, "strategy") == "range" ? router::ShardStrategy::Range : router::ShardStrategy::Hash;
    table.key_type =
        str(o, "key_type") == "text" ? router::KeyType::Text : router::KeyType::Integer;
    if (o.contains("ranges")) {
      for (const auto& rv : o.at("ranges").as_array()) {
        const auto& r = rv.as_object();
        router::RangeRule rule;
        rule.has_from = r.contains("from");
        rule.from = rule.has_from ? r.at("from").to_number<std::int64_t>() : 0;
        rule.has_to = r.contains("to");
        rule.to = rule.has_to ? r.at("to").to_number<std::int64_t>() : 0;
        rule.shard = shard_index(str(r, "shard"));
        table.ranges.push_back(rule);
      }
    }
    t.sharding.tables.push_back(std::move(table));
  }
  return t;
}

std::string bound(const std::optional<std::int64_t>& v) {
  return v ? std::to_string(*v) : "";
}

std::string hex(std::uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string as_json(const router::IsolatePlan& p) {
  json::array slices;
  for (const auto& s : p.slices) {
    json::object o{{"shard", s.shard}, {"new", s.is_new}, {"holds_key", s.holds_key}};
    if (p.strategy == router::ShardStrategy::Hash) {
      o["key_range"] = router::format_key_range(s.range);
    } else {
      if (s.from) o["from"] = *s.from;
      if (s.to) o["to"] = *s.to;
    }
    slices.push_back(std::move(o));
  }
  json::object root{{"table", p.table},
                    {"column", p.column},
                    {"key", p.key},
                    {"strategy", p.strategy == router::ShardStrategy::Hash ? "hash" : "range"},
                    {"source_shard", p.source},
                    {"slices", std::move(slices)},
                    {"status", "planned; carried out by online resharding (not available yet)"}};
  if (p.strategy == router::ShardStrategy::Hash) {
    root["hash"] = hex(p.hash);
    root["source_key_range"] = router::format_key_range(p.source_range);
    json::array moving;
    for (const auto& m : p.moving_tables) moving.push_back(json::string(m));
    root["moving_tables"] = std::move(moving);
  }
  return json::serialize(root) + "\n";
}

std::string as_text(const router::IsolatePlan& p) {
  std::ostringstream out;
  const bool hash = p.strategy == router::ShardStrategy::Hash;
  out << "isolate " << p.table << "." << p.column << " = " << p.key;
  if (hash) out << " (keyspace hash " << hex(p.hash) << ")";
  out << "\ntoday on shard " << p.source;
  if (hash) out << " (key range " << router::format_key_range(p.source_range) << ")";
  out << "\n\nplanned " << (hash ? "key ranges" : "ranges of " + p.table) << ":\n";
  char line[256];
  for (const auto& s : p.slices) {
    const std::string range =
        hash ? router::format_key_range(s.range) : "[" + bound(s.from) + ", " + bound(s.to) + ")";
    std::snprintf(line, sizeof line, "  %-16s %-36s %s\n", s.shard.c_str(), range.c_str(),
                  s.holds_key ? "new shard: the key alone"
                  : s.is_new  ? "new shard: the keys above"
                              : "stays");
    out << line;
  }
  if (hash && !p.moving_tables.empty()) {
    out << "\nrows that move: those of key " << p.key << " in";
    for (const auto& m : p.moving_tables) out << " " << m;
    out << "\n(every hash-sharded table hashes the value alike, so joins on it stay on one "
           "shard)\n";
  }
  out << (hash ? "\nThis is a plan: `shardctl reshard start --isolate --table " + p.table +
                     " --key " + p.key +
                     " --into SPARE` carries it out online,\nwith a spare shard (key_range: "
                     "none) as the key's own; the source keeps both other slices.\n"
               : std::string("\nThis is a plan: write the rules into the config (range "
                             "sharding is not moved online).\n"));
  return out.str();
}

}  // namespace

Result<std::string> plan_isolation(const std::string& admin, const std::string& table,
                                   const std::string& key, const std::string& new_shard,
                                   bool as_json_output) {
  auto body = admin_get(admin, "/api/v1/topology");
  if (!body) return body.error();
  boost::system::error_code ec;
  json::value doc = json::parse(*body, ec);
  if (ec || !doc.is_object() || !doc.as_object().contains("shards"))
    return make_error("unexpected answer from the admin API: " + *body);
  auto topology = topology_of(doc.as_object());
  if (!topology) return topology.error();
  auto plan = router::plan_isolate(*topology, table, key, new_shard);
  if (!plan) return plan.error();
  return as_json_output ? as_json(*plan) : as_text(*plan);
}

namespace {

// A POST's answer: {"message": ...} or {"error": ...}.
Result<std::string> posted(const Result<AdminReply>& reply) {
  if (!reply) return reply.error();
  boost::system::error_code ec;
  json::value doc = json::parse(reply->body, ec);
  if (ec || !doc.is_object())
    return make_error("unexpected answer from the admin API: " + reply->body);
  const json::object& o = doc.as_object();
  if (o.contains("error")) return make_error(std::string(o.at("error").as_string()));
  return std::string(o.at("message").as_string()) + "\n";
}

}  // namespace

Result<std::string> reshard_step(const std::string& admin, const std::string& op,
                                 const std::map<std::string, std::string>& params) {
  std::string target = "/api/v1/reshard?op=" + op;
  auto encoded = [](const std::string& v) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : v) {
      if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
        out += static_cast<char>(c);
      } else {
        out += '%';
        out += kHex[c >> 4];
        out += kHex[c & 15];
      }
    }
    return out;
  };
  for (const auto& [k, v] : params)
    if (!v.empty()) target += "&" + k + "=" + encoded(v);
  return posted(admin_request(admin, true, target));
}

Result<std::string> add_shard_from_config(const std::string& admin, const std::string& config_path,
                                          const std::string& shard_name) {
  auto cfg = config::load_config_file(config_path);
  if (!cfg) return cfg.error();
  const config::Shard* shard = nullptr;
  for (const auto& cluster : cfg->clusters())
    for (const auto& s : cluster.shards())
      if (s.name() == shard_name) shard = &s;
  if (!shard) return make_error(config_path + " has no shard named " + shard_name);
  if (shard->key_range() != router::kSpareKeyRange)
    return make_error("shard " + shard_name + " in " + config_path +
                      " is not a spare: set its key_range: none (keys come with a cutover)");
  json::object body;
  body["name"] = shard->name();
  json::array backends;
  for (const auto& b : shard->backends()) {
    json::object o;
    o["name"] = b.name();
    o["host"] = b.host();
    o["port"] = b.port();
    o["role"] = b.role() == config::Backend::PRIMARY ? "primary" : "replica";
    if (!b.unix_socket_dir().empty()) o["unix_socket_dir"] = b.unix_socket_dir();
    if (!b.unix_socket().empty()) o["unix_socket"] = b.unix_socket();
    if (!b.zone().empty()) o["zone"] = b.zone();
    if (b.priority()) o["priority"] = b.priority();
    backends.push_back(std::move(o));
  }
  body["backends"] = std::move(backends);
  return posted(admin_request(admin, true, "/api/v1/shards", json::serialize(body)));
}

Result<std::string> reshard_status(const std::string& admin, bool as_json_output) {
  auto body = admin_get(admin, "/api/v1/reshard");
  if (!body) return body.error();
  if (as_json_output) return *body;
  boost::system::error_code ec;
  json::value doc = json::parse(*body, ec);
  if (ec || !doc.is_object()) return make_error("unexpected answer from the admin API: " + *body);
  const json::object& o = doc.as_object();
  const std::string state(o.at("state").as_string());
  if (state == "none") return std::string("no resharding job\n");
  auto num = [&](const char* k) { return o.at(k).to_number<double>(); };
  auto str = [&](const char* k) { return std::string(o.at(k).as_string()); };
  std::ostringstream out;
  out << "job " << o.at("id").to_number<std::uint64_t>() << ": " << str("kind") << " "
      << str("source") << " -> " << str("target") << ", slice " << str("moving_range") << " ("
      << str("source") << " keeps " << str("source_after") << ", " << str("target") << " gets "
      << str("target_after") << ")\n";
  out << "state: " << state << "\n";
  const double total = num("rows_estimate"), read = num("rows_read");
  const double share = total > 0 ? std::min(1.0, read / total) : (state == "copying" ? 0 : 1);
  const int filled = static_cast<int>(share * 30);
  char line[256];
  std::snprintf(line, sizeof line,
                "copy:  [%s%s] %3.0f%%  %.0f of ~%.0f source rows read, %.0f copied, %.1f MB, "
                "%.0f rows/s, ETA %.0f s\n",
                std::string(filled, '#').c_str(), std::string(30 - filled, '.').c_str(),
                share * 100, read, total, num("rows_copied"), num("bytes_copied") / 1e6,
                num("rows_per_second"), num("eta_seconds"));
  out << line;
  out << "catch-up: " << num("keys_applied") << " keys re-copied, " << num("keys_pending")
      << " pending; " << num("rows_repaired") << " rows repaired\n";
  const auto& pauses = o.at("pauses_ms").as_array();
  if (!pauses.empty()) {
    out << "write pauses (ms):";
    for (const auto& p : pauses) out << " " << static_cast<int>(p.to_number<double>());
    out << "\n";
  }
  if (o.at("topology_version").to_number<std::uint64_t>() > 0)
    out << "cut over to topology v" << o.at("topology_version").to_number<std::uint64_t>() << "\n";
  if (num("rows_cleaned") > 0) out << "cleanup removed " << num("rows_cleaned") << " rows\n";
  out << str("message") << "\n";
  return out.str();
}

}  // namespace shardgate::shardctl
