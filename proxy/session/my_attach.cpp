// Attaching a server connection to a MySQL client session and giving it back:
// routing through the neutral core, replaying the client's session state on
// the connection, pinning, and what happens when a server is lost.
#include "proxy/net/my_io.h"
#include "proxy/protocol/mysql/messages.h"
#include "proxy/session/my_session.h"

namespace shardgate::session {

namespace {

// A client with more distinct SET statements than this stays on one
// connection instead of having them replayed.
constexpr std::size_t kMaxReplayedSettings = 32;

// The client flags that change the format of answers: server connections
// opened with different ones are not interchangeable.
constexpr std::uint32_t kVariantFlags = mysql::kClientFoundRows | mysql::kClientMultiStatements |
                                        mysql::kClientMultiResults | mysql::kClientPsMultiResults |
                                        mysql::kClientSessionTrack;

void append_command(std::string& out, std::uint8_t command, std::string_view argument) {
  std::string payload(1, static_cast<char>(command));
  payload.append(argument);
  std::uint8_t seq = 0;
  mysql::append_packets(out, payload, seq);
}

}  // namespace

std::uint32_t MySession::pool_variant() const {
  return (capabilities_ & kVariantFlags) | (std::uint32_t{charset_} << 24);
}

asio::awaitable<Result<void>> MySession::attach_for(const router::Statement& stmt,
                                                    bool runs_statement) {
  SessionFacts facts;
  // With autocommit off every statement opens a transaction: all on the primary.
  facts.primary_pinned = user_->pool_mode() == config::PoolMode::SESSION || !autocommit_;
  facts.reads_on_primary = ctx_.config->routing().reads_on_primary() || facts.primary_pinned;
  const std::uint32_t shard = next_shard_.value_or(ctx_.topology->sharding.default_shard);
  next_shard_.reset();
  facts.shard = shard;
  // A deferred BEGIN goes with the transaction's first statement and decides
  // where it runs, as it would have. Commands that run no statement (prepare,
  // ping ...) leave it waiting.
  const bool begins = runs_statement && deferred_begin_;
  const router::Statement& lead = begins ? deferred_begin_stmt_ : stmt;
  const router::TargetRole role = routing_.decide(lead, facts, worker_.health(), worker_.metrics());
  if (begins && router::writes_data(stmt)) routing_.note_write();
  const std::optional<std::uint64_t> min = routing_.replica_min_position(shard);
  // Read-your-writes with the commit's GTID: when the monitor knows no
  // replica that has it yet, one is asked to wait for it.
  const std::string* gtid =
      role == router::TargetRole::Replica ? routing_.replica_min_gtid(shard) : nullptr;
  const bool wait_on_replica =
      gtid && worker_.choose(shard, router::TargetRole::Replica, min, {}).fell_back_to_primary &&
      worker_.replica_waits().allows(shard, std::chrono::steady_clock::now());
  const std::optional<std::uint64_t> wanted = wait_on_replica ? std::nullopt : min;
  auto attached =
      co_await attach_server(worker_, pools_, *user_, login_database_, role, shard, wanted);
  if (attached && wait_on_replica && attached->role == router::TargetRole::Replica) {
    const std::string commit = *gtid;
    auto reached = co_await wait_for_commit(*attached->conn, commit);
    if (reached && *reached) {
      bump(worker_.metrics().read_your_writes_waits_total);
    } else {
      bump(worker_.metrics().read_your_writes_wait_timeouts_total);
      worker_.replica_waits().timed_out(shard, std::chrono::steady_clock::now());
      release_server(worker_, *attached, reached.has_value());
      attached = co_await attach_server(worker_, pools_, *user_, login_database_,
                                        router::TargetRole::Primary, shard, std::nullopt);
    }
  }
  if (!attached) {
    // A transaction the proxy runs on several shards stays open, as after
    // any MySQL error: the next statement opens this leg again.
    if (begins && !txn_xa_ && !txn_read_only_) deferred_begin_.reset();
    co_return attached.error();
  }
  server_ = std::move(*attached);
  server_shard_ = shard;
  tracker_.reset(server_.conn->capabilities());
  sync_session_state();
  if (begins) begin_deferred_transaction();
  state_ = ClientState::Active;
  co_return Result<void>{};
}

// Makes the connection's schema and settings the client's, with commands
// whose answers the client never sees.
void MySession::sync_session_state() {
  for (MyAnswer answer : append_session_sync(*server_.conn, to_server_))
    tracker_.expect(answer, true);
}

// Appends the commands that give connection `c` the client's settings and
// schema; returns the answer each one gets (one OK or ERR packet each).
std::vector<MyAnswer> MySession::append_session_sync(Conn& c, std::string& out) {
  std::vector<MyAnswer> answers;
  if (c.settings != settings_) {
    const bool prefix = c.settings.size() <= settings_.size() &&
                        std::equal(c.settings.begin(), c.settings.end(), settings_.begin());
    std::size_t from = c.settings.size();
    if (!prefix) {
      // Settings that differ cannot be undone one by one: start the session
      // over (this also closes the statements prepared there).
      append_command(out, mysql::kComResetConnection, "");
      answers.push_back(MyAnswer::Simple);
      c.prepared.clear();
      c.schema = backend::kUnknownSchema;
      from = 0;
    }
    for (std::size_t i = from; i < settings_.size(); ++i) {
      append_command(out, mysql::kComQuery, settings_[i]);
      answers.push_back(MyAnswer::Query);
    }
    c.settings = settings_;
  }
  if (!database_.empty() && c.schema != database_) {
    append_command(out, mysql::kComInitDb, database_);
    answers.push_back(MyAnswer::Simple);
    c.schema = database_;
  }
  return answers;
}

// The client's own LAST_INSERT_ID() on whatever connection it landed on: the
// answer to this command is swallowed.
void MySession::restore_last_insert_id() {
  append_command(to_server_, mysql::kComQuery,
                 "DO LAST_INSERT_ID(" + std::to_string(last_insert_id_) + ")");
  tracker_.expect(MyAnswer::Query, true);
}

void MySession::after_answer() {
  const bool failed = tracker_.error_seen();
  if (cache_.filling())
    cache_.finish_fill(!failed && !tracker_.in_transaction(), {},
                       static_cast<std::uint8_t>(seq_ - 1));
  if (failed) bump(worker_.metrics().statement_errors_total);
  settle_journal(failed);
  // A replayed SET or schema change failed there: that connection's state is
  // not what the proxy thinks; no one may reuse it.
  if (tracker_.take_swallowed_error()) server_broken_ = true;
  tracker_.clear_error();
  if (preparing_id_) finish_prepare(failed);
  if (!failed && pending_.kind != SessionChange::Kind::None && server_.conn) {
    if (pending_.kind == SessionChange::Kind::Schema) {
      database_ = pending_.text;
      server_.conn->schema = database_;
    } else if (settings_.empty() || settings_.back() != pending_.text) {
      settings_.push_back(pending_.text);
      server_.conn->settings.push_back(pending_.text);
      if (settings_.size() > kMaxReplayedSettings) pinned_ = true;
    }
  }
  pending_ = {};
  // Only an answer with status flags says what autocommit is; a fresh
  // tracker's default must not turn it back on.
  if (tracker_.take_status_reported())
    autocommit_ = (tracker_.status_flags() & mysql::kServerStatusAutocommit) != 0;
  if (tracker_.cursor_open()) pinned_ = true;
  // Inserts that generate no id leave LAST_INSERT_ID() as it was.
  if (tracker_.last_insert_id() != 0) last_insert_id_ = tracker_.last_insert_id();
  routing_.round_done(user_->read_your_writes() == config::ReadYourWrites::SESSION,
                      std::chrono::steady_clock::now(), in_client_transaction());
  if (!server_.conn) return;
  // Attached while BEGIN waited, by a command that runs no statement (a
  // prepare, which may go to a replica): the transaction has not begun
  // there, so the connection goes back; its first statement begins it
  // wherever that statement runs.
  if (deferred_begin_ && !pinned_ && user_->pool_mode() != config::PoolMode::SESSION) {
    detach(!server_broken_);
    return;
  }
  // An XA transaction holds its connection until the proxy ends it, whatever
  // the status flags say after an error.
  const bool hold = pinned_ || tracker_.in_transaction() || txn_xa_ ||
                    user_->pool_mode() == config::PoolMode::SESSION;
  if (!hold) {
    // Legs end together (my_legs.cpp); one that ended alone leaves the
    // others nothing to commit with: they roll back.
    abandon_parked();
    transaction_over();
    detach(!server_broken_);
  }
}

void MySession::detach(bool reusable) {
  const bool clean = reusable && tracker_.idle() && !server_broken_;
  release_server(worker_, server_, clean);
  server_broken_ = false;
  tracker_.reset(0);
  if (state_ == ClientState::Active) state_ = ClientState::Idle;
}

// At the end of a client whose state lived on its connection, the connection
// is reset (COM_RESET_CONNECTION) and goes back to the pool clean.
asio::awaitable<void> MySession::release_at_end() {
  // The legs of a transaction the client left close: their servers roll back.
  abandon_parked();
  if (txn_xa_) server_broken_ = true;
  const bool needs_reset = pinned_ || tracker_.in_transaction() || !settings_.empty();
  if (!needs_reset || !tracker_.idle() || server_broken_) {
    detach(tracker_.idle() && !tracker_.in_transaction());
    co_return;
  }
  append_command(to_server_, mysql::kComResetConnection, "");
  tracker_.expect(MyAnswer::Simple, true);
  auto sent = co_await flush_server();
  if (sent) {
    auto done = co_await relay_until_answered();
    (void)done;
  }
  if (!server_.conn) co_return;
  const bool ok = sent && !tracker_.take_swallowed_error();
  server_.conn->settings.clear();
  server_.conn->prepared.clear();
  server_.conn->schema = backend::kUnknownSchema;
  detach(ok);
}

// The command could not even be sent: the pooled connection was dead (its
// server went away since the connection was last used). Nothing ran, so a
// read goes again to another server (forward() retries once).
void MySession::server_gone_before_send() {
  bump(worker_.metrics().server_connections_lost_total);
  server_.pool->drain_idle();
  server_broken_ = true;
  to_server_.clear();
  detach(false);
  lost_quietly_ = true;
}

asio::awaitable<void> MySession::server_lost(const std::string& why) {
  cache_.abandon_fill();
  bump(worker_.metrics().server_connections_lost_total);
  bump(worker_.metrics().proxy_errors_total);
  const std::string name = ctx_.topology->backends[server_.conn->backend_index()].name;
  const bool in_transaction = tracker_.in_transaction() || txn_xa_ || !parked_.empty();
  const bool had_state = pinned_;
  server_.pool->drain_idle();
  server_broken_ = true;
  detach(false);
  abandon_parked();
  transaction_over();
  drop_journal();  // nothing it held was acknowledged
  pending_ = {};
  pinned_ = false;
  std::string message = "shardgate lost the connection to server " + name + " (" + why + ")";
  if (in_transaction)
    message += ": the transaction is rolled back; start it again";
  else
    message += ": the statement may not have run; retry it";
  if (had_state) message += " (session state on that server, such as user variables, is gone)";
  queue_error(mysql::kErConnectionKilled, message);
  co_return;
}

asio::awaitable<void> MySession::reset_session_state() {
  if (server_.conn) {
    // Whatever the connection holds belongs to the old session: close it.
    server_broken_ = true;
    detach(false);
  }
  abandon_parked();
  transaction_over();
  deferred_begin_.reset();
  settings_.clear();
  statements_.clear();
  pinned_ = false;
  last_insert_id_ = 0;
  autocommit_ = true;
  pending_ = {};
  co_return;
}

}  // namespace shardgate::session
