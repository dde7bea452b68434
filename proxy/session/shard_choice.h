// Which shard a round goes to, whatever the protocol. The statements of a
// round (one query text, or the executions of an extended-protocol batch)
// each need the shard their keys live on; they must agree. Statements that
// name no sharded or unsharded table (SET, SELECT 1, reference-table reads)
// go wherever the round goes.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "proxy/reshard/reshard_watch.h"
#include "router/hot_keys.h"
#include "router/shard_keys.h"
#include "router/shard_route.h"
#include "router/statement.h"
#include "router/topology.h"
#include "router/write_split.h"

namespace shardgate::session {

// Sharding is in play when the cluster has more than one shard; with one,
// every statement goes to it and no statement is analyzed for keys.
inline bool sharding_active(const router::Topology& t) {
  return t.shards.size() > 1;
}

class ShardChoice {
 public:
  // A lone read over several shards is run by the caller on each and its
  // rows merged (scatter-gather), a lone write on each of its shards in one
  // transaction; among other statements they are refused.
  // plans: the worker's cache of analyses by statement shape; hot_keys:
  // where each statement's keys and shards are counted.
  ShardChoice(const router::Topology& topology, router::ShardPlanCache& plans,
              router::HotKeyTap hot_keys)
      : topology_(topology), plans_(plans), hot_keys_(hot_keys) {}

  // While a resharding job copies `slice`, writes into it are collected in
  // moved() (call before add).
  void watch_moves(const MovingSlice* slice) { slice_ = slice; }
  const MovedWrites& moved() const { return moved_; }

  // Folds in one statement executed with `params`.
  void add(const router::Statement& stmt, std::string_view sql, router::Dialect dialect,
           std::span<const router::ParamValue> params);

  // The shard the round needs; nullopt when nothing in it constrains the shard.
  // The error is a refusal for the client.
  Result<std::optional<std::uint32_t>> result() const;

  // A lone read that needs these shards (two or more); empty otherwise.
  const std::vector<std::uint32_t>& several() const { return several_; }
  // A lone write that needs several shards: how it runs on each (several()
  // is empty then).
  const std::optional<router::WritePlan>& several_writes() const { return write_plan_; }
  // The round needs several shards: several(), several_writes(), or a lone
  // write with bound parameters over several shards, whose plan is left to
  // the text with the parameters written in (its rows split by literals).
  bool needs_several() const {
    return !several_.empty() || write_plan_.has_value() || unplanned_write_;
  }
  // Every statement of the round reads a hot key of a table that spreads
  // hot reads over replicas.
  bool hot_read() const { return statements_ > 0 && hot_reads_ == statements_; }
  // Every statement of the round reads hot keys of tables with
  // hot_key_cache_ttl_ms: the shortest of those; 0 otherwise.
  std::uint32_t hot_key_cache_ttl_ms() const {
    return statements_ > 0 && hot_cacheable_ == statements_ ? hot_cache_ttl_ : 0;
  }

 private:
  void count(const router::ShardTargets& targets, bool read);
  void note_moves(const router::ShardAnalysis& analysis, const router::ShardTargets& targets);
  std::string several_shards_refusal(const router::ShardAnalysis& analysis,
                                     const std::vector<std::uint32_t>& shards) const;

  const router::Topology& topology_;
  router::ShardPlanCache& plans_;
  router::HotKeyTap hot_keys_;
  const MovingSlice* slice_ = nullptr;
  MovedWrites moved_;
  int hot_reads_ = 0;
  int hot_cacheable_ = 0;
  std::uint32_t hot_cache_ttl_ = UINT32_MAX;
  int statements_ = 0;
  bool begin_led_ = false;
  std::optional<std::uint32_t> shard_;
  std::vector<std::uint32_t> several_;
  std::optional<router::WritePlan> write_plan_;
  bool unplanned_write_ = false;
  std::optional<std::string> error_;
};

// COMMIT PREPARED, COMMIT AND CHAIN, COMMIT RELEASE are COMMIT to the
// classifier; the proxy ends a transaction over several shards only for a
// plain COMMIT / END / ROLLBACK.
bool plain_transaction_end(std::string_view sql);

}  // namespace shardgate::session
