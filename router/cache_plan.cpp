#include "router/cache_plan.h"

#include <algorithm>
#include <cctype>

namespace shardgate::router {

std::string cache_table_key(std::string_view table) {
  const auto dot = table.rfind('.');
  if (dot != std::string_view::npos) table.remove_prefix(dot + 1);
  std::string out;
  for (char c : table)
    if (c != '"' && c != '`') out += c;
  return out;
}

namespace {

// Functions whose answer belongs to one session or server connection.
constexpr std::string_view kSessionFunctions[] = {
    "last_insert_id",    "found_rows",        "row_count",        "connection_id",
    "pg_backend_pid",    "currval",           "lastval",          "current_setting",
    "inet_server_port",  "inet_client_port",  "txid_current",     "pg_current_xact_id",
    "pg_my_temp_schema", "pg_is_in_recovery", "inet_server_addr", "@@"};

bool names_session_function(std::string_view sql) {
  std::string lower(sql);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (std::string_view f : kSessionFunctions)
    if (lower.find(f) != std::string::npos) return true;
  return false;
}

}  // namespace

std::optional<CachePlan> cache_plan(std::string_view sql, const Statement& stmt,
                                    const Topology& topology, std::uint32_t default_ttl_ms,
                                    std::uint32_t hot_key_ttl_ms) {
  if (stmt.kind != StatementKind::Read || stmt.needs_primary || stmt.multi_statement ||
      stmt.locking_read || stmt.writes_in_function || stmt.hints.role != HintRole::None ||
      stmt.tables.empty() || names_session_function(sql))
    return std::nullopt;
  CachePlan plan;
  std::optional<std::uint32_t> ttl = stmt.hints.cache_ttl_ms;
  if (ttl && *ttl == 0) ttl = default_ttl_ms;
  bool every_table_opted_in = true;
  std::uint32_t table_ttl = UINT32_MAX;
  for (const std::string& name : stmt.tables) {
    const std::string key = cache_table_key(name);
    plan.tables.push_back(key);
    const auto it =
        std::find_if(topology.sharding.tables.begin(), topology.sharding.tables.end(),
                     [&](const ShardedTable& t) { return cache_table_key(t.name) == key; });
    if (it == topology.sharding.tables.end() || it->cache_ttl_ms == 0) {
      every_table_opted_in = false;
    } else {
      table_ttl = std::min(table_ttl, it->cache_ttl_ms);
    }
  }
  if (!ttl && every_table_opted_in) ttl = table_ttl;
  if (!ttl && hot_key_ttl_ms > 0) ttl = hot_key_ttl_ms;
  if (!ttl || *ttl == 0) return std::nullopt;
  plan.ttl_ms = *ttl;
  std::sort(plan.tables.begin(), plan.tables.end());
  plan.tables.erase(std::unique(plan.tables.begin(), plan.tables.end()), plan.tables.end());
  return plan;
}

}  // namespace shardgate::router
