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

#include "common/result.h"
#include "router/shard_route.h"
#include "router/statement.h"
#include "router/topology.h"

namespace shardgate::session {

// Sharding is in play when the cluster has more than one shard; with one,
// every statement goes to it and no statement is analyzed for keys.
inline bool sharding_active(const router::Topology& t) {
  return t.shards.size() > 1;
}

class ShardChoice {
 public:
  explicit ShardChoice(const router::Topology& topology) : topology_(topology) {}

  // Folds in one statement executed with `params`.
  void add(const router::Statement& stmt, std::string_view sql, router::Dialect dialect,
           std::span<const router::ParamValue> params);

  // The shard the round needs; nullopt when nothing in it constrains the shard.
  // The error is a refusal for the client.
  Result<std::optional<std::uint32_t>> result() const;

 private:
  const router::Topology& topology_;
  std::optional<std::uint32_t> shard_;
  std::optional<std::string> error_;
};

// The refusal for a statement that needs shard `wanted` inside a transaction
// already running on shard `current`.
std::string cross_shard_transaction_message(const router::Topology& topology, std::uint32_t current,
                                            std::uint32_t wanted);

}  // namespace shardgate::session
