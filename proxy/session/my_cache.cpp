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
  // An XA branch the proxy began for BEGIN may not show in the status flags.
  return deferred_begin_.has_value() || !parked_.empty() || txn_xa_ ||
         (server_.conn && tracker_.in_transaction());
}

bool MySession::cache_allowed(std::string_view sql) const {
  // Inside a transaction a read sees its own snapshot and writes; a pinned
  // session has state (user variables, temporary tables) the key cannot
  // name; @variables in the text read such state.
  if (!cache_.enabled() || in_client_transaction() || !autocommit_ || pinned_ ||
      names_variable(sql))
    return false;
  return !server_.conn || server_.role == router::TargetRole::Primary;
}

// SET NAMES, time_zone, sql_mode ... and the capability flags change the
// bytes of the answer.
std::string MySession::cache_settings() const {
  std::string settings = std::to_string(capabilities_);
  for (const std::string& s : settings_) settings += ";" + s;
  return settings;
}

std::uint32_t MySession::cache_shard() const {
  return server_.conn ? server_shard_ : next_shard_.value_or(ctx_.topology->sharding.default_shard);
}

std::optional<std::string> MySession::cache_key_of(std::string_view sql,
                                                   const router::Statement& stmt,
                                                   router::CachePlan& plan) {
  const std::uint32_t hot_key_ttl = cache_.take_hot_key_ttl();
  if (!cache_allowed(sql)) return std::nullopt;
  auto p = router::cache_plan(sql, stmt, *ctx_.topology,
                              ctx_.config->result_cache().default_ttl_ms(), hot_key_ttl);
  if (!p) return std::nullopt;
  plan = std::move(*p);
  return cache_key('M', user_->name(), database_, cache_shard(), cache_settings(), sql);
}

std::optional<std::string> MySession::execute_cache_key(const MyClientStatement& st,
                                                        const mysql::StmtExecute& exec,
                                                        std::string_view payload,
                                                        router::CachePlan& plan) {
  const std::uint32_t hot_key_ttl = cache_.take_hot_key_ttl();
  // A cursor keeps rows on its server; long data is not in the payload.
  if (exec.flags != 0 || !st.long_data.empty() || !cache_allowed(st.query)) return std::nullopt;
  auto p = router::cache_plan(st.query, st.routing, *ctx_.topology,
                              ctx_.config->result_cache().default_ttl_ms(), hot_key_ttl);
  if (!p) return std::nullopt;
  plan = std::move(*p);
  // The payload after the statement id: flags, iterations, NULL bitmap,
  // types when sent, values. Values sent without types are read with the
  // types of an earlier execution: those are part of the key too.
  std::string text = st.query;
  text += '\0';
  text += st.param_types;
  text += '\0';
  text.append(payload.substr(std::min<std::size_t>(payload.size(), 5)));
  return cache_key('X', user_->name(), database_, cache_shard(), cache_settings(), text);
}

bool MySession::answer_or_fill(router::CachePlan& plan, std::string& key) {
  if (auto hit = cache_.lookup(plan, key)) {
    to_client_ += hit->bytes;
    seq_ = static_cast<std::uint8_t>(hit->last_seq + 1);
    return true;
  }
  if (!server_.conn) routing_.note_cache_fill();
  cache_.begin_fill(std::move(plan), std::move(key));
  return false;
}

}  // namespace shardgate::session
