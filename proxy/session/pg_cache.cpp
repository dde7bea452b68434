// Which reads the result cache may answer for a PostgreSQL client: simple
// Queries, and extended batches that execute a named prepared statement
// (Bind, Describe portal, Execute, Sync: what drivers send for a prepared
// read). The cache itself and its invalidation: session_cache.h.
#include "proxy/protocol/postgres/frame.h"
#include "proxy/protocol/postgres/messages.h"
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
                   settings_sync_sql(settings_.get(), {}), sql);
}

namespace {

// The batch at the front of `in` when it is exactly Bind of a named
// statement to the unnamed portal, an optional Describe of that portal, an
// Execute of all its rows and a Sync, all received: its size and the
// statement's name; nullopt otherwise (anything else is not cached).
struct CacheableBatch {
  std::size_t size = 0;
  std::string_view statement;
};

std::optional<CacheableBatch> cacheable_batch(std::string_view in, std::uint32_t max_size) {
  CacheableBatch out;
  int step = 0;  // 0: Bind, 1: Describe or Execute, 2: Sync
  while (true) {
    auto d = pg::decode_frame(in.substr(out.size), max_size);
    if (d.status != pg::DecodeStatus::Frame) return std::nullopt;
    const pg::Frame& f = d.frame;
    out.size += f.size;
    if (step == 0) {
      auto b = f.type == 'B' ? pg::parse_bind(f.body) : std::nullopt;
      if (!b || !b->portal.empty() || b->statement.empty()) return std::nullopt;
      out.statement = b->statement;
      step = 1;
    } else if (step == 1 && f.type == 'D') {
      auto desc = pg::parse_describe_or_close(f.body);
      if (!desc || desc->kind != 'P' || !desc->name.empty()) return std::nullopt;
    } else if (step == 1 && f.type == 'E') {
      auto e = pg::parse_execute(f.body);
      if (!e || !e->portal.empty() || e->max_rows != 0) return std::nullopt;
      step = 2;
    } else if (step == 2 && f.type == 'S') {
      return out;
    } else {
      return std::nullopt;
    }
  }
}

}  // namespace

// Before a batch attaches a server: a cached answer ends it here; a miss
// is marked to be kept.
asio::awaitable<std::optional<Result<void>>> PgSession::answer_batch_from_cache() {
  const std::uint32_t hot_key_ttl = cache_.take_hot_key_ttl();
  if (!cache_.enabled() || deferred_begin_ || !parked_.empty() || server_) co_return std::nullopt;
  const auto batch = cacheable_batch(in_.readable(), max_message_size_);
  if (!batch) co_return std::nullopt;
  const PreparedStatement* ps = prepared_.find(batch->statement);
  if (!ps) co_return std::nullopt;
  // The statement's full analysis (tables included); drivers run the same
  // one over and over, so it is usually the one analyzed last.
  const std::string query = ps->query;
  const router::Statement& stmt = analyze_parse(query);
  auto plan = router::cache_plan(query, stmt, *ctx_.topology,
                                 ctx_.config->result_cache().default_ttl_ms(), hot_key_ttl);
  if (!plan) co_return std::nullopt;
  // The batch names the statement and carries the parameters: with the
  // statement's text it is the key.
  std::string text = query;
  text += '\0';
  text.append(in_.readable().substr(0, batch->size));
  std::string key = cache_key('E', user_->name(), database_, round_shard_,
                              settings_sync_sql(settings_.get(), {}), text);
  if (auto hit = cache_.lookup(*plan, key)) {
    in_.consume(batch->size);
    batch_routed_ = false;
    to_client_ += hit->bytes;
    to_client_ += pg::ready_for_query('I');
    co_return co_await flush_client();
  }
  routing_.note_cache_fill();
  cache_.begin_fill(std::move(*plan), std::move(key));
  co_return std::nullopt;
}

}  // namespace shardgate::session
