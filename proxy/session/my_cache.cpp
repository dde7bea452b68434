// Which COM_QUERY statements the result cache may answer for a MySQL client
// (the cache itself and its invalidation: session_cache.h).
#include "proxy/session/my_session.h"

namespace shardgate::session {

bool MySession::in_client_transaction() const {
  return deferred_begin_.has_value() || !parked_.empty() ||
         (server_.conn && tracker_.in_transaction());
}

std::optional<std::string> MySession::cache_key_of(std::string_view sql,
                                                   const router::Statement& stmt,
                                                   router::CachePlan& plan) const {
  if (!cache_.enabled()) return std::nullopt;
  // Inside a transaction a read sees its own snapshot and writes; a pinned
  // session has state (user variables, temporary tables) the key cannot
  // name; @variables in the text read such state.
  if (in_client_transaction() || !autocommit_ || pinned_ || sql.find('@') != std::string_view::npos)
    return std::nullopt;
  if (server_.conn && server_.role != router::TargetRole::Primary) return std::nullopt;
  auto p =
      router::cache_plan(sql, stmt, *ctx_.topology, ctx_.config->result_cache().default_ttl_ms());
  if (!p) return std::nullopt;
  plan = std::move(*p);
  // SET NAMES, time_zone, sql_mode ... and the capability flags change the
  // bytes of the answer.
  std::string settings = std::to_string(capabilities_);
  for (const std::string& s : settings_) settings += ";" + s;
  const std::uint32_t shard =
      server_.conn ? server_shard_ : next_shard_.value_or(ctx_.topology->sharding.default_shard);
  return cache_key('M', user_->name(), database_, shard, settings, sql);
}

}  // namespace shardgate::session
