// Sharding for a PostgreSQL client session: the shard a query or an extended
// batch needs (session/shard_choice.h), transactions begun lazily so that
// their first statement picks the shard, and refusals that behave like the
// server's own errors.
//
// A refusal inside a transaction must leave it failed, as a server error
// would (25P02 for what follows, COMMIT answered by ROLLBACK). Rather than
// imitate that state machine, the proxy makes the server raise the error
// itself: the transaction really fails, and everything after it is the
// server's own behaviour.
#include "proxy/reshard/reshard_gate.h"
#include "proxy/session/pg_session.h"
#include "proxy/session/shard_choice.h"
#include "router/classify.h"

namespace shardgate::session {

namespace {

// DO block that raises `message` with `sqlstate`. The message goes in an E''
// literal with \ and ' escaped and '$' written as \x24, so neither the
// server's standard_conforming_strings nor the dollar quote can be broken.
std::string raise_sql(std::string_view sqlstate, std::string_view message) {
  std::string literal = "E'";
  for (char c : message) {
    if (c == '\\' || c == '\'') literal.push_back('\\');
    if (c == '$') {
      literal += "\\x24";
      continue;
    }
    literal.push_back(c);
  }
  literal += "'";
  return "DO $shardgate$ BEGIN RAISE EXCEPTION USING ERRCODE = '" + std::string(sqlstate) +
         "', MESSAGE = " + literal + "; END $shardgate$";
}

}  // namespace

asio::awaitable<Result<void>> PgSession::answer_query(const pg::Frame& f, std::string_view tag,
                                                      char status) {
  in_.consume(f.size);
  pg::Encoder e;
  e.begin('C').cstr(tag).end();
  to_client_ += e.take();
  to_client_ += pg::ready_for_query(status);
  co_return co_await flush_client();
}

bool PgSession::in_client_transaction() const {
  return deferred_begin_ || !parked_.empty() || (server_ && tracker_.transaction_status() != 'I');
}

// Refuses the round whose client messages were consumed (a Query) or are
// being skipped up to Sync (a batch; `at_sync` once the Sync is here).
asio::awaitable<Result<void>> PgSession::refuse_round(std::string_view sqlstate,
                                                      const std::string& message, bool simple) {
  bump(worker_.metrics().statements_refused_total);
  if (!in_client_transaction()) {
    to_client_ += pg::error_response(sqlstate, message);
    if (simple) to_client_ += pg::ready_for_query('I');
    co_return co_await flush_client();
  }
  if (!simple) {
    pending_raise_ = std::make_unique<std::string>(
        raise_sql(sqlstate, message));  // sent when the batch's Sync arrives
    co_return Result<void>{};
  }
  co_return co_await raise_on_server(raise_sql(sqlstate, message));
}

// Makes the server fail the client's transaction with the proxy's error.
asio::awaitable<Result<void>> PgSession::raise_on_server(std::string sql) {
  if (!server_ && !parked_.empty()) unpark(parked_.all().front().shard);
  if (!server_) {
    round_shard_ = ctx_.topology->sharding.default_shard;
    const router::TargetRole role =
        decide(deferred_begin_ ? deferred_begin_->stmt : router::Statement{});
    auto a = co_await attach(role);
    if (!a) {
      deferred_begin_.reset();
      to_client_ += pg::error_response("08006", a.error().message());
      to_client_ += pg::ready_for_query('I');
      co_return co_await flush_client();
    }
    begin_deferred_transaction();
  }
  to_server_ += pg::query_message(sql);
  tracker_.expect(Expect::Query);
  co_return co_await finish_round();
}

void PgSession::begin_deferred_transaction() {
  if (!deferred_begin_) return;
  to_server_ += pg::query_message(deferred_begin_->sql);
  tracker_.expect(Expect::SwallowQuery);
  deferred_begin_.reset();
}

// The shard for the next round: `wanted` by its statements, or where the
// session already is, or the default shard. Inside a transaction another
// shard is another leg of it (pg_legs.cpp). `writes`: the round may write;
// `may_end`: it may end the transaction on its own (several statements).
// An error refuses the round.
Result<void> PgSession::settle_shard(std::optional<std::uint32_t> wanted, bool writes,
                                     bool may_end) {
  const router::Topology& topo = *ctx_.topology;
  if (!server_ && !parked_.empty()) {
    // Between statements of a transaction whose legs all wait (after a
    // write over several shards): go to the wanted one, or any.
    auto switched = switch_leg(wanted.value_or(parked_.all().front().shard), may_end);
    if (switched) server_wrote_ = server_wrote_ || writes;
    return switched;
  }
  if (!server_) {
    round_shard_ = wanted.value_or(topo.sharding.default_shard);
    server_wrote_ = server_wrote_ || writes;
    return {};
  }
  if (!wanted || *wanted == server_shard_) {
    if (!parked_.empty() && may_end)
      return make_error(
          "this transaction runs on several shards; send its statements one per query (a "
          "multi-statement query could end it on one shard only)");
    server_wrote_ = server_wrote_ || writes;
    return {};
  }
  const char status = tracker_.transaction_status();
  if (status == 'E') return {};  // its server answers for the failed transaction (25P02)
  if (status == 'T') {
    auto switched = switch_leg(*wanted, may_end);
    if (switched) server_wrote_ = server_wrote_ || writes;
    return switched;
  }
  if (user_->pool_mode() == config::PoolMode::SESSION || !tracker_.idle())
    return make_error("this session holds a server connection on shard " +
                      topo.shards[server_shard_].name + " and the statement needs shard " +
                      topo.shards[*wanted].name +
                      ": use pool_mode: transaction with a sharded cluster");
  detach(true);
  round_shard_ = *wanted;
  server_wrote_ = writes;
  return {};
}

void PgSession::defer_begin(std::string_view sql, const router::Statement& stmt) {
  deferred_begin_ = std::make_unique<BeginText>(BeginText{std::string(sql), stmt});
  txn_begin_ = std::make_unique<BeginText>(*deferred_begin_);
}

// Handles what sharding decides for a simple Query before it is forwarded:
// a BEGIN is deferred, an empty deferred transaction ends in the proxy, a
// refusal is answered. nullopt: forward it to round_shard_.
asio::awaitable<std::optional<Result<void>>> PgSession::shard_query(const pg::Frame& f,
                                                                    std::string_view sql,
                                                                    const router::Statement& stmt) {
  const bool single = !stmt.multi_statement;
  if (!server_ && parked_.empty() && single && stmt.kind == router::StatementKind::Begin &&
      !deferred_begin_) {
    defer_begin(sql, stmt);
    co_return co_await answer_query(f, "BEGIN", 'T');
  }
  const bool ends =
      stmt.kind == router::StatementKind::Commit || stmt.kind == router::StatementKind::Rollback;
  if (!server_ && deferred_begin_ && single && ends) {
    deferred_begin_.reset();
    transaction_over();
    co_return co_await answer_query(
        f, stmt.kind == router::StatementKind::Commit ? "COMMIT" : "ROLLBACK", 'I');
  }
  if (!parked_.empty()) {
    if (single && ends && plain_transaction_end(sql))
      co_return co_await end_query_across_shards(f, stmt.kind == router::StatementKind::Commit);
    if (stmt.kind == router::StatementKind::Savepoint || (ends && single)) {
      in_.consume(f.size);
      co_return co_await refuse_round(
          "0A000",
          ends ? "this transaction runs on several shards: end it with COMMIT or ROLLBACK"
               : "savepoints cannot span shards, and this transaction runs on several",
          true);
    }
  }
  std::optional<ShardChoice> routed;
  for (;;) {
    routed.emplace(*ctx_.topology, worker_.shard_plans(), worker_.hot_key_tap());
    routed->watch_moves(routing_.watch_slice(ctx_.reshard));
    routed->add(stmt, sql, router::Dialect::Postgres, {});
    if (routing_.note_moved(ctx_.reshard, routed->moved())) break;
    co_await wait_out_cutover(ctx_.reshard);  // then routed by the topology it published
  }
  const ShardChoice& choice = *routed;
  auto chosen = choice.result();
  routing_.note_hot_read(choice.hot_read());
  cache_.note_hot_key_ttl(choice.hot_key_cache_ttl_ms());
  if (chosen && choice.several_writes()) {
    // A failed transaction answers every statement itself (25P02).
    if (!(server_ && tracker_.transaction_status() == 'E')) {
      in_.consume(f.size);
      if (choice.several_writes()->outside_transaction)
        co_return co_await fanout_ddl(*choice.several_writes());
      co_return co_await fanout_write(*choice.several_writes());
    }
    chosen = std::optional<std::uint32_t>();
  }
  if (chosen && !choice.several().empty()) {
    // A failed transaction answers every statement itself (25P02).
    if (!(server_ && tracker_.transaction_status() == 'E')) {
      std::string text(sql);
      in_.consume(f.size);
      co_return co_await scatter_query(std::move(text), stmt, choice.several());
    }
    chosen = std::optional<std::uint32_t>();
  }
  Result<void> settled =
      chosen ? settle_shard(*chosen, router::writes_data(stmt), stmt.multi_statement)
             : Result<void>(chosen.error());
  if (settled) co_return std::nullopt;
  in_.consume(f.size);
  co_return co_await refuse_round("0A000", settled.error().message(), true);
}

// The shard an extended batch needs: every Bind of it (up to Sync) executes a
// statement with parameters.
Result<std::optional<std::uint32_t>> PgSession::batch_shard(BatchFacts& facts) {
  facts = BatchFacts{};
  ShardChoice choice(*ctx_.topology, worker_.shard_plans(), worker_.hot_key_tap());
  choice.watch_moves(routing_.watch_slice(ctx_.reshard));
  std::vector<pg::BindParam> bound;
  std::vector<router::ParamValue> params;
  std::string_view unnamed;  // the batch's last unnamed Parse
  std::vector<std::pair<std::string_view, std::string_view>> parsed;  // name -> query, this batch
  std::string_view rest = in_.readable();
  while (!rest.empty()) {
    auto d = pg::decode_frame(rest, max_message_size_);
    if (d.status != pg::DecodeStatus::Frame) break;
    const pg::Frame& f = d.frame;
    if (f.type == 'P') {
      if (auto p = pg::parse_parse(f.body)) {
        if (p->name.empty())
          unnamed = p->query;
        else
          parsed.emplace_back(p->name, p->query);
      }
    } else if (f.type == 'B') {
      auto b = pg::parse_bind(f.body);
      if (!b || !pg::parse_bind_params(b->rest, bound)) return make_error("malformed Bind message");
      std::optional<std::string_view> query;
      if (b->statement.empty()) {
        query = unnamed;
      } else {
        for (const auto& [name, q] : parsed)
          if (name == b->statement) query = q;
        if (!query) {
          if (const PreparedStatement* ps = prepared_.find(b->statement)) query = ps->query;
        }
      }
      // A statement the proxy never saw prepared: the server reports it.
      ++facts.statements;
      facts.writes = facts.writes || !query;
      if (query) {
        params.clear();
        for (const auto& p : bound)
          params.push_back({p.null ? router::ParamValue::Form::Null
                                   : (p.binary ? router::ParamValue::Form::Binary
                                               : router::ParamValue::Form::Text),
                            p.value});
        const auto& stmt = analyze_parse(*query);
        facts.writes = facts.writes || router::writes_data(stmt);
        const bool ends = stmt.kind == router::StatementKind::Commit ||
                          stmt.kind == router::StatementKind::Rollback;
        facts.ends = facts.ends || ends;
        facts.commits = facts.commits || stmt.kind == router::StatementKind::Commit;
        facts.savepoint = facts.savepoint || stmt.kind == router::StatementKind::Savepoint;
        choice.add(stmt, *query, router::Dialect::Postgres, params);
      }
    }
    if (f.type == 'S') break;
    rest.remove_prefix(f.size);
  }
  if (!routing_.note_moved(ctx_.reshard, choice.moved())) {
    facts.wait_for_cutover = true;
    return std::optional<std::uint32_t>();
  }
  facts.several = choice.several();
  facts.several_writes = choice.needs_several() && choice.several().empty();
  routing_.note_hot_read(choice.hot_read());
  cache_.note_hot_key_ttl(choice.hot_key_cache_ttl_ms());
  return choice.result();
}

}  // namespace shardgate::session
