// Whether a statement's result may come from the proxy's result cache, and
// which tables' writes make it stale. Pure: (statement, topology) -> plan.
//
// Cached: a read (not locking, no writing or session-bound function, no
// primary/replica hint (a fill must come from the primary), one
// statement) whose every table is opted in (sharded tables with
// cache_ttl_ms), or any such read with a /* shardgate:cache */ hint. The
// session adds what else must hold (no open transaction, one target).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "router/statement.h"
#include "router/topology.h"

namespace shardgate::router {

struct CachePlan {
  std::uint32_t ttl_ms = 0;
  std::vector<std::string> tables;  // invalidation keys (cache_table_key) of the tables read
};

// `sql` is the text `stmt` was read from: answers of functions that depend
// on the session or connection (LAST_INSERT_ID(), currval(),
// pg_backend_pid() ...) are never shared.
// hot_key_ttl_ms: the statement reads only hot keys of tables with
// hot_key_cache_ttl_ms (ShardChoice::hot_key_cache_ttl_ms), which opts it in
// for that long when its tables are not opted in otherwise.
std::optional<CachePlan> cache_plan(std::string_view sql, const Statement& stmt,
                                    const Topology& topology, std::uint32_t default_ttl_ms,
                                    std::uint32_t hot_key_ttl_ms = 0);

// The name under which writes invalidate a table: without schema or
// quotes, so "public.users", "\"users\"" and users are one table (tables of
// the same name in different schemas share it: a write to one also drops
// the other's entries, never the reverse mistake).
std::string cache_table_key(std::string_view table);

}  // namespace shardgate::router
