// Which COM_QUERY statements the result cache may answer for a MySQL client
// (the cache itself and its invalidation: session_cache.h).
#include "proxy/session/my_session.h"

namespace shardgate::session {
namespace {

// An @ outside quotes: a user variable (@x) or a system one (@@x), state of
// the session the cache key cannot name.
bool names_variable(std::string_view sql) {
  char quote = 0;
  for (std::size_t i = 0; i < sql.size(); ++i) {
    const char c = sql[i];
    if (quote) {
      if (c == '\\')
        ++i;  // MySQL strings escape with a backslash
      else if (c == quote)
        quote = 0;
    } else if (c == '\'' || c == '"' || c == '`') {
      quote = c;
    } else if (c == '@') {
      return true;
    }
  }
  return false;
}

}  // namespace

bool MySession::in_client_transaction() const {
  return deferred_begin_.has_value() || !parked_.empty() ||
         (server_.conn && tracker_.in_transaction());
}

std::optional<std::string> MySession::cache_key_of(std::string_view sql,
                                                   const router::Statement& stmt,
                                                   router::CachePlan& plan) {
  const std::uint32_t hot_key_ttl = cache_.take_hot_key_ttl();
  if (!cache_.enabled()) return std::nullopt;
  // Inside a transaction a read sees its own snapshot and writes; a pinned
  // session has state (user variables, temporary tables) the key cannot
  // name; @variables in the text read such state.
  if (in_client_transaction() || !autocommit_ || pinned_ || names_variable(sql))
    return std::nullopt;
  if (server_.conn && server_.role != router::TargetRole::Primary) return std::nullopt;
  auto p = router::cache_plan(sql, stmt, *ctx_.topology,
                              ctx_.config->result_cache().default_ttl_ms(), hot_key_ttl);
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
