// Which simple Queries the result cache may answer for a PostgreSQL client
// (the cache itself and its invalidation: session_cache.h).
#include "proxy/session/pg_session.h"

namespace shardgate::session {

std::optional<std::string> PgSession::cache_key_of(std::string_view sql,
                                                   const router::Statement& stmt,
                                                   router::CachePlan& plan) {
  const std::uint32_t hot_key_ttl = cache_.take_hot_key_ttl();
  if (!cache_.enabled()) return std::nullopt;
  // Inside a transaction a read sees the transaction's own snapshot and
  // writes; only reads outside one, on the primary when a server is held
  // (session mode), share answers.
  if (deferred_begin_ || !parked_.empty()) return std::nullopt;
  if (server_ && (tracker_.transaction_status() != 'I' ||
                  server_role_ != router::TargetRole::Primary || server_dirty_))
    return std::nullopt;
  auto p = router::cache_plan(sql, stmt, *ctx_.topology,
                              ctx_.config->result_cache().default_ttl_ms(), hot_key_ttl);
  if (!p) return std::nullopt;
  plan = std::move(*p);
  // Settings such as DateStyle, TimeZone or client_encoding change the
  // text of the answer.
  return cache_key('P', user_->name(), database_, server_ ? server_shard_ : round_shard_,
                   settings_sync_sql(settings_, {}), sql);
}

}  // namespace shardgate::session
