// The cluster as the data path sees it: shards, their members and key ranges,
// and which tables are sharded on which column. Built whole from the config
// (and later from the topology store), published as
// std::shared_ptr<const Topology>, never mutated after publication.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace shardgate::router {

enum class MemberRole { Primary, Replica };

struct BackendInfo {
  std::uint32_t index = 0;  // position in Topology::backends, stable for a version
  std::string name;
  std::string host;
  std::uint16_t port = 0;
  std::string unix_socket_dir;  // PostgreSQL: connect to the socket in this directory when set
  std::string unix_socket;      // MySQL: connect to this socket file when set
  MemberRole role = MemberRole::Replica;
  std::uint32_t shard = 0;
  std::string zone;
  std::uint32_t priority = 0;  // promotion tie-break: higher wins
  // An old primary after a failover: no statement goes to it until it
  // rejoins as a replica (a new topology version clears it).
  bool fenced = false;
};

// A slice [start, end) of the 64-bit keyspace that hashed sharding keys fall
// into; `end_is_max` marks the slice that runs to 2^64 (not representable).
struct KeyRange {
  std::uint64_t start = 0;
  std::uint64_t end = 0;
  bool end_is_max = true;

  bool contains(std::uint64_t h) const { return h >= start && (end_is_max || h < end); }
};

struct ShardInfo {
  std::string name;
  std::uint32_t primary = 0;            // index into backends
  std::vector<std::uint32_t> replicas;  // indexes into backends
  KeyRange key_range;                   // hash sharding: the keyspace slice it owns
  // Further slices it owns (config: "40-48,49-80"): a shard whose middle
  // went to another (one key isolated) keeps the parts on both sides.
  std::vector<KeyRange> more_ranges;
  // Owns no keys yet (config key_range: none): a resharding target that gets
  // no statement of a sharded table until a cutover gives it a range.
  bool spare = false;
  std::uint64_t epoch = 0;  // grows by one with every failover of the shard

  bool owns(std::uint64_t hash) const {
    if (spare) return false;
    if (key_range.contains(hash)) return true;
    for (const KeyRange& r : more_ranges)
      if (r.contains(hash)) return true;
    return false;
  }
};

enum class ShardStrategy {
  Hash,  // xxh3-64 of the key, looked up in the shards' key ranges
  Range  // the raw integer key, looked up in the table's own ranges
};

// How key text is compared: an integer column's 7, '7' and $1 = "7" are one key.
enum class KeyType { Integer, Text };

// Range sharding: integer keys in [from, to) live on `shard`; an absent bound
// is unbounded.
struct RangeRule {
  bool has_from = false;
  std::int64_t from = 0;
  bool has_to = false;
  std::int64_t to = 0;
  std::uint32_t shard = 0;
};

struct ShardedTable {
  std::string name;    // lower case; schema-qualified only when the config says so
  std::string column;  // lower case
  ShardStrategy strategy = ShardStrategy::Hash;
  KeyType key_type = KeyType::Integer;
  std::vector<RangeRule> ranges;  // Range strategy only, sorted by `from`
  // Reads of a hot key of this table may go to any healthy replica, even
  // under a reads-on-primary policy (config: spread_hot_reads).
  bool spread_hot_reads = false;
  // Reads of only opted-in tables are served from the result cache for this
  // long (config: cache_ttl_ms; 0: not cached).
  std::uint32_t cache_ttl_ms = 0;
  // Reads of hot keys only are cached this long (config: hot_key_cache_ttl_ms).
  std::uint32_t hot_key_cache_ttl_ms = 0;
};

struct ShardingSchema {
  std::vector<ShardedTable> tables;
  std::vector<std::string> reference_tables;  // same rows on every shard
  std::uint32_t default_shard = 0;            // unsharded tables and statements without tables
  bool allow_scatter_writes = false;          // keyless writes to sharded tables go everywhere

  bool empty() const { return tables.empty() && reference_tables.empty(); }
};

struct Topology {
  std::uint64_t version = 1;
  std::string reason;  // why this version exists ("failover of shard s0 ...")
  std::int64_t updated_unix_ms = 0;
  std::string cluster;
  std::vector<BackendInfo> backends;
  std::vector<ShardInfo> shards;
  ShardingSchema sharding;
};

}  // namespace shardgate::router
