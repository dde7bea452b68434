// Sharding for a MySQL client session: the shard a COM_QUERY or a
// COM_STMT_EXECUTE (with its bound parameters) needs, and transactions begun
// lazily so that their first statement picks the shard (and, over several
// shards, my_legs.cpp). A refusal is an ERR packet (1235, 42000); as with
// any MySQL error, an open transaction stays open.
#include "proxy/protocol/mysql/messages.h"
#include "proxy/reshard/reshard_gate.h"
#include "proxy/session/my_execute_params.h"
#include "proxy/session/my_session.h"
#include "proxy/session/shard_choice.h"

namespace shardgate::session {

void MySession::queue_transaction_ok(bool in_transaction) {
  mysql::OkPacket ok;
  ok.status_flags = static_cast<std::uint16_t>((autocommit_ ? mysql::kServerStatusAutocommit : 0) |
                                               (in_transaction ? mysql::kServerStatusInTrans : 0));
  mysql::append_packets(to_client_, mysql::build_ok(ok, capabilities_), seq_);
}

void MySession::begin_deferred_transaction() {
  if (!deferred_begin_) return;
  std::string payload(1, static_cast<char>(mysql::kComQuery));
  payload += *deferred_begin_;
  std::uint8_t seq = 0;
  mysql::append_packets(to_server_, payload, seq);
  tracker_.expect(MyAnswer::Query, true);
  deferred_begin_.reset();
}

// The shard for the next attach: `wanted`, or where the session is, or the
// default shard; inside a transaction another shard is another leg of it
// (my_legs.cpp). `writes`: the statement may write. An error is a refusal.
Result<void> MySession::settle_shard(std::optional<std::uint32_t> wanted, bool writes) {
  const router::Topology& topo = *ctx_.topology;
  if (!server_.conn && !parked_.empty()) {
    // Between statements of a transaction whose legs all wait (after a
    // write over several shards): go to the wanted one, or any.
    auto switched = switch_leg(wanted.value_or(parked_.all().front().shard));
    if (switched) server_wrote_ = server_wrote_ || writes;
    return switched;
  }
  if (!server_.conn) {
    next_shard_ = wanted.value_or(topo.sharding.default_shard);
    server_wrote_ = server_wrote_ || writes;
    return {};
  }
  if (!wanted || *wanted == server_shard_) {
    server_wrote_ = server_wrote_ || writes;
    return {};
  }
  if (tracker_.in_transaction() || txn_xa_) {
    auto switched = switch_leg(*wanted);
    if (switched) server_wrote_ = server_wrote_ || writes;
    return switched;
  }
  return make_error("this session holds a server connection on shard " +
                    topo.shards[server_shard_].name +
                    " (user variables, locks, temporary "
                    "tables or session pooling) and the statement needs shard " +
                    topo.shards[*wanted].name + ": keep such sessions on one shard");
}

asio::awaitable<std::optional<Result<void>>> MySession::shard_query(std::string_view sql,
                                                                    const router::Statement& stmt,
                                                                    bool binary_rows) {
  const bool single = !stmt.multi_statement;
  if (!server_.conn && parked_.empty() && single && stmt.kind == router::StatementKind::Begin &&
      !deferred_begin_) {
    defer_begin(sql, stmt);
    queue_transaction_ok(true);
    co_return co_await flush_client();
  }
  const bool ends =
      stmt.kind == router::StatementKind::Commit || stmt.kind == router::StatementKind::Rollback;
  if (!server_.conn && deferred_begin_ && single && ends) {
    deferred_begin_.reset();
    transaction_over();
    queue_transaction_ok(false);
    co_return co_await flush_client();
  }
  // An XA transaction (and one with several legs) ends through the proxy:
  // a plain COMMIT would fail inside XA, and every leg must end together.
  if ((txn_xa_ || !parked_.empty()) && (server_.conn || !parked_.empty()) && single && ends) {
    if (plain_transaction_end(sql))
      co_return co_await end_across_shards(stmt.kind == router::StatementKind::Commit);
    queue_error(mysql::kErNotSupportedYet,
                "this transaction runs through shardgate's two-phase commit: end it with a "
                "plain COMMIT or ROLLBACK");
    co_return co_await flush_client();
  }
  // Turning autocommit on commits the open transaction; inside XA the
  // server would refuse the SET, so the proxy commits first.
  const bool proxy_transaction = txn_xa_ || txn_read_only_ || !parked_.empty() || deferred_begin_;
  if (!autocommit_ && proxy_transaction && single &&
      stmt.kind == router::StatementKind::SessionSet && sets_autocommit_on(sql)) {
    if (!server_.conn && parked_.empty()) {
      deferred_begin_.reset();  // nothing ran yet
      transaction_over();
    } else {
      const txn::EndResult result = co_await end_legs(true);
      if (result.outcome == txn::Outcome::Failed) {
        queue_commit_failure(result);
        co_return co_await flush_client();
      }
    }
  }
  begin_implicitly(stmt);
  if (stmt.kind == router::StatementKind::Savepoint && tracker_.in_transaction()) {
    if (!parked_.empty()) {
      bump(worker_.metrics().statements_refused_total);
      queue_error(mysql::kErNotSupportedYet,
                  "savepoints cannot span shards, and this transaction runs on several");
      co_return co_await flush_client();
    }
    savepoint_set_ = true;
  }
  // A prepared execution written out as text (binary_rows) had its keys
  // counted when it was routed with its parameters: not again.
  router::HotKeyTap hot_keys = worker_.hot_key_tap();
  if (binary_rows) hot_keys.recorder = nullptr;
  std::optional<ShardChoice> routed;
  for (;;) {
    routed.emplace(*ctx_.topology, worker_.shard_plans(), hot_keys);
    routed->watch_moves(routing_.watch_slice(ctx_.reshard));
    routed->add(stmt, sql, router::Dialect::Mysql, {});
    if (routing_.note_moved(ctx_.reshard, routed->moved())) break;
    co_await wait_out_cutover(ctx_.reshard);  // then routed by the topology it published
  }
  const ShardChoice& choice = *routed;
  auto chosen = choice.result();
  routing_.note_hot_read(choice.hot_read());
  cache_.note_hot_key_ttl(choice.hot_key_cache_ttl_ms());
  if (chosen && choice.several_writes() && choice.several_writes()->schema_change)
    co_return co_await fanout_ddl(*choice.several_writes());
  if (chosen && choice.several_writes())
    co_return co_await fanout_write(sql, *choice.several_writes());
  if (chosen && !choice.several().empty()) {
    const bool outside = !server_.conn && !deferred_begin_ && parked_.empty() && autocommit_;
    const bool legs_possible = (txn_xa_ || txn_read_only_) && !pinned_ &&
                               user_->pool_mode() != config::PoolMode::SESSION && !savepoint_set_ &&
                               (!server_.conn || tracker_.idle());
    if (outside || legs_possible)
      co_return co_await scatter_query(sql, stmt, choice.several(), binary_rows);
    chosen = make_error(
        "the statement reads several shards, which shardgate runs outside a transaction or in "
        "one shardgate began (BEGIN, START TRANSACTION, or a first statement that touches a "
        "table with autocommit=0; no savepoint, no session state pinned to one connection): "
        "give the statement a key, or read before");
  }
  Result<void> settled =
      chosen ? settle_shard(*chosen, router::writes_data(stmt)) : Result<void>(chosen.error());
  if (settled) co_return std::nullopt;
  bump(worker_.metrics().statements_refused_total);
  queue_error(mysql::kErNotSupportedYet, settled.error().message());
  co_return co_await flush_client();
}

Result<MySession::ExecuteRoute> MySession::shard_execute(const MyClientStatement& st,
                                                         const mysql::StmtExecute& exec) {
  std::vector<std::string> storage;
  auto params = execute_params(exec, st.param_types, st.num_params,
                               long_data_values(st.long_data, st.num_params), storage);
  if (!params) return params.error();
  ShardChoice choice(*ctx_.topology, worker_.shard_plans(), worker_.hot_key_tap());
  choice.watch_moves(routing_.watch_slice(ctx_.reshard));
  choice.add(st.routing, st.query, router::Dialect::Mysql, *params);
  if (!routing_.note_moved(ctx_.reshard, choice.moved())) return ExecuteRoute::Retry;
  auto chosen = choice.result();
  routing_.note_hot_read(choice.hot_read());
  cache_.note_hot_key_ttl(choice.hot_key_cache_ttl_ms());
  if (!chosen) return chosen.error();
  if (choice.needs_several()) return ExecuteRoute::Several;
  auto settled = settle_shard(*chosen, router::writes_data(st.routing));
  if (!settled) return settled.error();
  return ExecuteRoute::Settled;
}

}  // namespace shardgate::session
