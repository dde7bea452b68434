// Integration-test harness for sharding: a real four-shard sandbox per engine
// (`shardctl sandbox up --shards 4 --replicas 1`), its shardgate.yaml with a
// sharding section appended, and a shardgate in front. The ShardedPg* and
// ShardedMy* suites share them; a run that selects neither starts nothing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "router/topology.h"

namespace shardgate::it {

inline constexpr int kShards = 4;
inline constexpr int kShardReplicas = 1;

inline constexpr int kPgShardBasePort = 23432;  // shard s, member m: base + s*2 + m
inline constexpr int kPgShardProxyPort = 23532;
inline constexpr int kPgShardAdminPort = 23533;

inline constexpr int kMyShardBasePort = 24306;
inline constexpr int kMyShardProxyPort = 24336;
inline constexpr int kMyShardAdminPort = 24337;

// The sharding section both environments declare: users(id) and
// orders(user_id) hashed on integers, accounts(email) on text, countries a
// reference table. Anything else lives on the default shard s0.
inline constexpr const char* kShardingYaml =
    "    sharding:\n"
    "      reference_tables: [countries]\n"
    "      tables:\n"
    "        - {name: users, column: id}\n"
    "        - {name: orders, column: user_id}\n"
    "        - {name: accounts, column: email, key_type: text}\n";

int pg_shard_primary_port(int shard);
// The sharded sandboxes' shardgate.yaml (with the sharding section).
std::string pg_shard_config();
std::string my_shard_config();
int my_shard_primary_port(int shard);

// The topology the sandbox config declares, for computing where a key lives.
const router::Topology& declared_topology();
int shard_of_user(std::int64_t id);  // users.id / orders.user_id
int shard_of_account(const std::string& email);

// One key's row of `shardctl hotkeys` (its table output, as operators read it).
struct HotKeyRow {
  std::string shard;
  double rate = 0;
  bool hot = false;
};
// The row of (table, key) in `shardctl hotkeys --admin 127.0.0.1:admin_port`
// (with --shard when given); nullopt when the key is not listed. *output
// gets the whole table.
std::optional<HotKeyRow> hot_key_row(int admin_port, const std::string& table,
                                     const std::string& key, const std::string& shard = "",
                                     std::string* output = nullptr);

// Waits up to 15 s until `shardctl hotkeys` shows users key `key` hot (or,
// with hot false, no longer hot); prints how long that took and the table.
// *row: the key's last row.
bool wait_for_hot_key(int admin_port, const std::string& key, bool hot,
                      std::optional<HotKeyRow>* row);

// A proxy config for the hot-key tests: `source` with users spreading hot
// reads and caching them for a minute (hot keys only), every other read kept
// on the primary (routing.reads_on_primary),
// and listening on proxy_port / admin_port.
// The value of an unlabeled metric of the proxy whose admin API listens on
// admin_port (0 when it is not there).
std::uint64_t metric(int admin_port, const std::string& name);

// A proxy config for the result-cache tests: `source` with users results
// cached for a minute (so that a stale answer would show), on proxy_port /
// admin_port.
std::string cache_config(const std::string& name, const std::string& source, int sandbox_proxy,
                         int sandbox_admin, int proxy_port, int admin_port);

std::string hot_key_config(const std::string& name, const std::string& source, int sandbox_proxy,
                           int sandbox_admin, int proxy_port, int admin_port);

}  // namespace shardgate::it
