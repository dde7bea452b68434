// Attaching a server connection to a PostgreSQL client session and giving it
// back: backend choice, liveness check, session settings, read-your-writes.
#include <sys/socket.h>

#include "proxy/net/pg_io.h"
#include "proxy/session/pg_session.h"

namespace shardgate::session {

namespace {

// A pooled connection whose server went away has EOF (or a FATAL message)
// waiting; one non-blocking peek finds it before a statement is lost on it.
// Connections back in use within a millisecond skip the peek: under load that
// is one system call less per statement, and a server that died in that
// millisecond is reported to the client like any server lost mid-statement.
bool looks_alive(backend::PgServerConnection& c) {
  if (std::chrono::steady_clock::now() - c.idle_since < std::chrono::milliseconds(1)) return true;
  char byte;
  const ssize_t n = ::recv(c.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

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
  facts.reads_on_primary =
      ctx_.config->routing().reads_on_primary() || user_->pool_mode() == config::PoolMode::SESSION;
  return routing_.decide(stmt, facts, worker_.health(), worker_.metrics());
}

asio::awaitable<Result<void>> PgSession::attach(router::TargetRole role) {
  std::vector<std::uint32_t> excluded;
  std::string last_error = "no backend configured";
  for (int attempt = 0; attempt < 6; ++attempt) {
    const auto min_lsn =
        role == router::TargetRole::Replica ? routing_.replica_min_position() : std::nullopt;
    const auto choice = worker_.choose(0, role, min_lsn, excluded);
    if (choice.fell_back_to_primary) bump(worker_.metrics().replica_fallback_total);
    backend::PgPool& pool = pool_for(choice.backend);
    auto lease = co_await pool.acquire();
    if (!lease) {
      last_error = lease.error().message();
      excluded.push_back(choice.backend);
      const bool primary = choice.backend == ctx_.topology->shards[0].primary;
      if (!primary) continue;  // another replica, or the primary, may serve
      break;
    }
    std::unique_ptr<backend::PgServerConnection> conn = std::move(*lease);
    if (!looks_alive(*conn)) {
      pool.release(std::move(conn), false);
      pool.drain_idle();
      continue;
    }
    server_ = std::move(conn);
    pool_ = &pool;
    server_role_ = ctx_.topology->backends[choice.backend].role == router::MemberRole::Primary
                       ? router::TargetRole::Primary
                       : router::TargetRole::Replica;
    ctx_.outstanding[choice.backend].fetch_add(1, std::memory_order_relaxed);
    bump(server_role_ == router::TargetRole::Primary ? worker_.metrics().statements_primary_total
                                                     : worker_.metrics().statements_replica_total);
    const std::string sync = settings_sync_sql(settings_, server_->settings);
    if (!sync.empty()) {
      to_server_ += pg::query_message(sync);
      tracker_.expect(Expect::SwallowQuery);
      server_->settings = settings_;
    }
    state_ = ClientState::Active;
    co_return Result<void>{};
  }
  co_return make_error("no server could take the statement: " + last_error);
}

backend::PgPool& PgSession::pool_for(std::uint32_t backend) {
  if (pools_.size() <= backend) pools_.resize(ctx_.topology->backends.size(), nullptr);
  if (pools_[backend] == nullptr)
    pools_[backend] = &worker_.pool<backend::PgServerConnection>(backend, *user_, database_);
  return *pools_[backend];
}

void PgSession::detach(bool reusable) {
  ctx_.outstanding[server_->backend_index()].fetch_sub(1, std::memory_order_relaxed);
  pool_->release(std::move(server_), reusable && !server_dirty_);
  server_dirty_ = false;
  pool_ = nullptr;
  tracker_.reset();
  if (state_ == ClientState::Active) state_ = ClientState::Idle;
}

void PgSession::note_statement_done() {
  if (pending_setting_) {
    if (!tracker_.error_seen() && tracker_.transaction_status() == 'I') {
      apply_change(settings_, *pending_setting_);
      if (server_) apply_change(server_->settings, *pending_setting_);
      if (pending_setting_->op == SettingChange::Op::ResetAll &&
          pending_setting_->name == "discard") {
        // DISCARD ALL dropped every prepared statement on that server, and ends the client's.
        if (server_) server_->prepared.clear();
        prepared_.clear();
      }
    } else if (tracker_.transaction_status() != 'I') {
      server_dirty_ = true;  // SET inside a transaction: not followed, so not shared
    }
    pending_setting_.reset();
  }
  routing_.round_done(user_->read_your_writes() == config::ReadYourWrites::SESSION,
                      std::chrono::steady_clock::now());
  if (tracker_.error_seen()) bump(worker_.metrics().statement_errors_total);
  tracker_.clear_error();
  if (server_ && tracker_.idle() && tracker_.transaction_status() == 'I' &&
      user_->pool_mode() != config::PoolMode::SESSION)
    detach(true);
}

asio::awaitable<void> PgSession::server_lost(const std::string& why) {
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
  pending_setting_.reset();
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
