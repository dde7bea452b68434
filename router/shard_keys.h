// Which shards a statement needs: the sharding-key predicates and INSERT rows
// it gives for each sharded table it names, read from the statement's tokens
// without a full parse. Pure: (text, topology) -> ShardAnalysis. Parameters
// are left as references ($1, ?) for resolve_shards() (router/shard_route.h),
// so one analysis serves every execution of a prepared statement.
//
// Fails closed: a sharded table the analysis cannot pin to keys is reported as
// needing every shard, and a statement that no set of shards can answer
// correctly (a join on a non-key column, a key change) carries a refusal.
#pragma once

#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "router/statement.h"
#include "router/topology.h"

namespace shardgate::router {

// A sharding-key value as the statement gives it.
struct KeyExpr {
  enum class Kind : std::uint8_t { Literal, Param };
  const ShardedTable* table = nullptr;
  Kind kind = Kind::Literal;
  std::string literal;      // Literal: its value (quotes removed)
  std::uint32_t param = 0;  // Param: 0-based index of the bound parameter
  // Literal: which literal of the statement it is (0-based, in text order)
  // and the sign written before it, so that a cached analysis of the same
  // statement shape takes this execution's value.
  std::int32_t literal_token = -1;
  std::string sign;

  bool operator==(const KeyExpr&) const = default;
};

enum class ShardScope : std::uint8_t {
  None,       // no sharded or reference table: the default shard
  Reference,  // reference tables (and unsharded ones): one shard answers a read
  Keys,       // sharded rows with the listed keys only
  AllShards,  // a sharded table without a usable key: every shard
};

struct ShardAnalysis {
  ShardScope scope = ShardScope::None;
  std::vector<KeyExpr> keys;              // Keys: the shards of these keys
  const ShardedTable* keyless = nullptr;  // AllShards: the table that has no key
  bool writes = false;            // INSERT/UPDATE/DELETE/DDL of a sharded or reference table
  bool writes_reference = false;  // ... of a reference table (every shard must get it)
  // The keys must all land on one shard: joins, subqueries and several
  // statements are answered by one server, not merged.
  bool needs_one_shard = false;
  // Names a table that lives on the default shard only, next to sharded ones.
  std::string unsharded_table;
  std::optional<std::string> refusal;  // why no set of shards can run it correctly

  bool operator==(const ShardAnalysis&) const = default;
};

// `stmt` is analyze()'s reading of the same text (its table names and kind).
ShardAnalysis analyze_shards(std::string_view sql, Dialect dialect, const Statement& stmt,
                             const Topology& topology);

// analyze_shards() once per statement shape: the text with its literals
// (numbers, quoted strings) replaced is the key; a hit takes the cached
// analysis with this text's literal values. Least recently used shapes go
// beyond `capacity`. Not thread-safe: one per worker thread. Text with a
// backslash is always analyzed afresh (its reading depends on settings).
class ShardPlanCache {
 public:
  explicit ShardPlanCache(std::size_t capacity = 4096) : capacity_(capacity) {}

  ShardAnalysis analyze(std::string_view sql, Dialect dialect, const Statement& stmt,
                        const Topology& topology);

  std::uint64_t hits() const { return hits_; }
  std::uint64_t misses() const { return misses_; }
  std::size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    ShardAnalysis analysis;
    std::list<std::string>::iterator lru;
  };
  std::size_t capacity_;
  const Topology* topology_ = nullptr;  // analyses point into it
  std::uint64_t version_ = 0;
  std::list<std::string> lru_;  // most recent first
  std::unordered_map<std::string, Entry> entries_;
  std::uint64_t hits_ = 0;
  std::uint64_t misses_ = 0;
};

}  // namespace shardgate::router
