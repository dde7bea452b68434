// Attaching a server connection to a PostgreSQL client session and giving it
// back: backend choice, liveness check, session settings, read-your-writes.
#include "proxy/net/pg_io.h"
#include "proxy/session/pg_session.h"
#include "proxy/session/server_attach.h"

namespace shardgate::session {

namespace {

asio::awaitable<void> send_cancel(router::BackendInfo backend, std::uint32_t pid,
                                  std::uint32_t key) {
  auto ex = co_await asio::this_coro::executor;
  backend::PgServerConnection::Socket socket(ex);
  auto endpoint = backend::endpoint_of(backend);
  if (!endpoint) co_return;
  auto [cec] = co_await socket.async_connect(*endpoint, net::use_result);
  if (cec) co_return;
  co_await net::write_all(socket, pg::cancel_request(pid, key));
}

}  // namespace

// Routes the statement that starts a round.
router::TargetRole PgSession::decide(const router::Statement& stmt) {
  SessionFacts facts;
  facts.in_transaction = server_ && tracker_.transaction_status() != 'I';
  facts.attached_to_replica = server_role_ == router::TargetRole::Replica;
  facts.primary_pinned = user_->pool_mode() == config::PoolMode::SESSION;
  facts.reads_on_primary = ctx_.config->routing().reads_on_primary() || facts.primary_pinned;
  facts.shard = round_shard_;
  return routing_.decide(stmt, facts, worker_.health(), worker_.metrics());
}

asio::awaitable<Result<void>> PgSession::attach(router::TargetRole role) {
  auto attached = co_await attach_server(worker_, pools_, *user_, database_, role, round_shard_,
                                         routing_.replica_min_position(round_shard_));
  if (!attached) co_return attached.error();
  server_ = std::move(attached->conn);
  server_shard_ = round_shard_;
  pool_ = attached->pool;
  server_role_ = attached->role;
  const std::string sync = settings_sync_sql(settings_, server_->settings);
  if (!sync.empty()) {
    to_server_ += pg::query_message(sync);
    tracker_.expect(Expect::SwallowQuery);
  }
  // The same map, shared: compared by pointer next time (no reference-count
  // traffic when it already is the same).
  if (!server_->settings.same_as(settings_)) server_->settings = settings_;
  state_ = ClientState::Active;
  co_return Result<void>{};
}

void PgSession::detach(bool reusable) {
  ctx_.outstanding[server_->backend_index()].fetch_sub(1, std::memory_order_relaxed);
  pool_->release(std::move(server_), reusable && !server_dirty_);
  server_dirty_ = false;
  pool_ = nullptr;
  tracker_.reset();
  transaction_over();
  if (state_ == ClientState::Active) state_ = ClientState::Idle;
}

void PgSession::note_statement_done() {
  if (journal_txn_ && journal_txn_->query_recorded) {
    if (tracker_.error_seen()) journal_txn_->statements.pop_back();
    journal_txn_->query_recorded = false;
  }
  if (journal_txn_ && tracker_.transaction_status() == 'I') journal_txn_.reset();
  if (pending_setting_) {
    if (!tracker_.error_seen() && tracker_.transaction_status() == 'I') {
      settings_.apply(*pending_setting_);
      if (server_) server_->settings = settings_;
      if (pending_setting_->op == SettingChange::Op::ResetAll &&
          pending_setting_->name == "discard") {
        // DISCARD ALL dropped every prepared statement on that server, and ends the client's.
        if (server_) server_->prepared.clear();
        prepared_.clear();
      }
    } else if (tracker_.transaction_status() == 'T' && !tracker_.error_seen()) {
      // SET inside a transaction lasts only if the transaction commits.
      txn_settings_.push_back(*pending_setting_);
    } else if (tracker_.transaction_status() != 'I') {
      server_dirty_ = true;  // not followed, so not shared
    }
    pending_setting_.reset();
  }
  if (!txn_settings_.empty()) {
    const std::string& tag = tracker_.last_command_tag();
    if (tracker_.transaction_status() == 'I') {
      // COMMIT of a failed transaction answers ROLLBACK: the settings went with it.
      if (tag == "COMMIT") {
        for (const auto& change : txn_settings_) {
          settings_.apply(change);
          if (server_) server_->settings = settings_;
        }
      }
      txn_settings_.clear();
    } else if (tag == "ROLLBACK") {
      // ROLLBACK TO SAVEPOINT may have undone some of them: which, the proxy
      // cannot tell, so that server connection is not shared again.
      server_dirty_ = true;
      txn_settings_.clear();
    }
  }
  routing_.round_done(user_->read_your_writes() == config::ReadYourWrites::SESSION,
                      std::chrono::steady_clock::now(), in_client_transaction());
  if (tracker_.error_seen()) bump(worker_.metrics().statement_errors_total);
  tracker_.clear_error();
  if (server_ && tracker_.idle() && tracker_.transaction_status() == 'I') {
    // Legs end together (pg_legs.cpp); one that ended alone leaves the
    // others nothing to commit with: they roll back.
    abandon_parked();
    if (user_->pool_mode() != config::PoolMode::SESSION) detach(true);
  }
}

asio::awaitable<void> PgSession::server_lost(const std::string& why) {
  cache_.abandon_fill();
  journal_txn_.reset();  // the client hears the commit's outcome is unknown
  bump(worker_.metrics().server_connections_lost_total);
  bump(worker_.metrics().proxy_errors_total);
  const std::string name = ctx_.topology->backends[server_->backend_index()].name;
  const bool in_transaction = tracker_.transaction_status() != 'I';
  // If the Sync (or Query) was already sent, the client waits for its
  // ReadyForQuery; otherwise the rest of its batch is dropped up to its Sync.
  const bool owes_ready = tracker_.awaiting_ready();
  to_client_ += pg::error_response(
      "08006", "lost the connection to server " + name + " (" + why + ")" +
                   (in_transaction ? ": the transaction is rolled back; start it again"
                                   : ": the statement may not have run; retry it"));
  if (owes_ready) to_client_ += pg::ready_for_query('I');
  pool_->drain_idle();
  detach(false);
  abandon_parked();
  pending_setting_.reset();
  txn_settings_.clear();
  pending_raise_.reset();
  skip_until_sync_ = !owes_ready;
  co_await flush_client();
}

void PgSession::cancel_running() {
  if (!server_) return;
  const auto& backend = ctx_.topology->backends[server_->backend_index()];
  asio::co_spawn(client_.get_executor(),
                 send_cancel(backend, server_->backend_pid(), server_->backend_key()),
                 asio::detached);
}

}  // namespace shardgate::session
