// A MySQL client's transaction over several shards (see shard_legs.h and
// proxy/txn/two_phase.h). The proxy begins a client's transaction as
// XA START on the shard of its first statement, and on every further shard
// it reaches; COMMIT ends them all through the two-phase coordinator (XA END,
// XA PREPARE, decision, XA COMMIT; one shard that wrote: XA COMMIT ... ONE
// PHASE). Inside an XA transaction a stray COMMIT or a statement that would
// commit implicitly fails on the server (1399), so no shard can end alone.
#include <cctype>

#include "proxy/net/my_io.h"
#include "proxy/protocol/mysql/messages.h"
#include "proxy/session/my_leg_runner.h"
#include "proxy/session/my_session.h"
#include "proxy/session/shard_choice.h"
#include "router/classify.h"
#include "router/sql_lexer.h"

namespace shardgate::session {

void MySession::park_server() {
  if (!server_.conn) return;
  if (deferred_begin_) {
    // Attached while BEGIN waited (a COM_STMT_PREPARE runs no statement):
    // the transaction has not begun there, so it is no leg of it.
    detach(true);
    return;
  }
  decltype(parked_)::Leg leg;
  leg.server = std::move(server_);
  leg.shard = server_shard_;
  leg.wrote = server_wrote_;
  leg.dirty = server_broken_;
  leg.tracker = std::move(tracker_);
  parked_.park(std::move(leg));
  tracker_ = MyResponseTracker();
  server_broken_ = false;
  server_wrote_ = false;
}

bool MySession::unpark(std::uint32_t shard) {
  auto leg = parked_.take(shard);
  if (!leg) return false;
  server_ = std::move(leg->server);
  server_shard_ = leg->shard;
  server_wrote_ = leg->wrote;
  server_broken_ = leg->dirty;
  tracker_ = std::move(leg->tracker);
  state_ = ClientState::Active;
  return true;
}

void MySession::abandon_parked() {
  parked_.release_all(worker_, false);
}

void MySession::transaction_over() {
  server_wrote_ = false;
  savepoint_set_ = false;
  txn_xa_ = false;
  txn_read_only_ = false;
  txn_gid_.clear();
  txn_begin_.clear();
}

// BEGIN answered by the proxy: its first statement decides the shard, and
// in a sharded cluster it starts as an XA transaction there.
void MySession::defer_begin(std::string_view sql, const router::Statement& stmt) {
  deferred_begin_stmt_ = stmt;
  txn_begin_ = std::string(sql);
  txn_read_only_ = stmt.read_only_txn;
  txn_xa_ = sharding_active(*ctx_.topology) && ctx_.decisions && !stmt.read_only_txn;
  if (txn_xa_) {
    txn_gid_ = ctx_.decisions->next_gid();
    deferred_begin_ = "XA START '" + txn_gid_ + "'";
  } else {
    deferred_begin_ = txn_begin_;
  }
}

// With autocommit=0 every statement that touches a table opens a
// transaction on the server. In a sharded cluster the proxy opens it
// instead, as for BEGIN, so that it can reach further shards (XA on each,
// COMMIT through two-phase commit). Statements that touch no table (SET,
// SELECT @@x) open none, here as on the server; a session whose state is
// pinned to one connection keeps the server's own transaction there.
void MySession::begin_implicitly(const router::Statement& stmt) {
  if (autocommit_ || !sharding_active(*ctx_.topology) || !ctx_.decisions) return;
  if (server_.conn || deferred_begin_ || !parked_.empty()) return;
  if (pinned_ || user_->pool_mode() == config::PoolMode::SESSION) return;
  const bool dml =
      stmt.kind == router::StatementKind::Read || stmt.kind == router::StatementKind::Write;
  if (!dml || stmt.multi_statement || stmt.tables.empty()) return;
  static const router::Statement kStart =
      router::analyze("START TRANSACTION", router::Dialect::Mysql, {});
  defer_begin("START TRANSACTION", kStart);
}

// SET autocommit = 1 | ON | TRUE: turning autocommit on commits the open
// transaction (when it was off).
bool sets_autocommit_on(std::string_view sql) {
  std::string lower;
  for (char c : sql) lower.push_back(router::ascii_lower(c));
  const auto at = lower.find("autocommit");
  if (at == std::string::npos) return false;
  std::string_view rest = std::string_view(lower).substr(at + 10);
  auto skip = [&rest] {
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t' || rest.front() == '\n'))
      rest.remove_prefix(1);
  };
  skip();
  if (rest.starts_with(":="))
    rest.remove_prefix(2);
  else if (rest.starts_with("="))
    rest.remove_prefix(1);
  else
    return false;
  skip();
  for (std::string_view on : {"1", "on", "true"}) {
    if (!rest.starts_with(on)) continue;
    std::string_view after = rest.substr(on.size());
    if (after.empty() ||
        !(std::isalnum(static_cast<unsigned char>(after.front())) || after.front() == '_'))
      return true;
  }
  return false;
}

Result<void> MySession::switch_leg(std::uint32_t wanted) {
  const router::Topology& topo = *ctx_.topology;
  // Only a refusal needs the words.
  auto what = [&] {
    return "this transaction runs on shard " + topo.shards[server_shard_].name +
           " and the statement needs shard " + topo.shards[wanted].name;
  };
  if (!txn_xa_ && !txn_read_only_)
    return make_error(what() +
                      (ctx_.decisions
                           ? "; only a transaction shardgate began (BEGIN, START TRANSACTION, or "
                             "a first statement that touches a table with autocommit=0) can span "
                             "shards"
                           : "; transactions over several shards need the proxy's data_dir "
                             "(where two-phase commit decisions are kept)"));
  if (pinned_ || user_->pool_mode() == config::PoolMode::SESSION)
    return make_error(what() +
                      "; the session keeps state on its connection there (user variables, locks, "
                      "temporary tables or session pooling)");
  if (savepoint_set_)
    return make_error(what() +
                      "; the transaction set a savepoint, and savepoints cannot span shards");
  if (!tracker_.idle()) return make_error(what() + "; send it after the answer to the one before");
  park_server();
  if (unpark(wanted)) return {};
  next_shard_ = wanted;
  deferred_begin_ = txn_xa_ ? "XA START '" + txn_gid_ + "'" : txn_begin_;
  return {};
}

// Ends every leg and answers the client's COMMIT or ROLLBACK.
// Ends every leg of the transaction (commit: COMMIT asked) and gives them back.
asio::awaitable<txn::EndResult> MySession::end_legs(bool commit) {
  park_server();
  deferred_begin_.reset();
  std::vector<txn::Leg> legs;
  for (const auto& leg : parked_.all())
    legs.push_back({ctx_.topology->shards[leg.shard].name, leg.wrote});
  auto run = [this](const txn::Steps& steps) {
    return run_on_my_legs(parked_.all(), steps, max_message_size_);
  };
  const txn::TwoPhaseSql& sql = txn_xa_ ? txn::mysql_two_phase() : txn::one_phase_only();
  // The XA legs carry the name already. A named local: g++ 12 destroys a
  // temporary argument of a co_await twice.
  std::optional<std::string> gid;
  if (txn_xa_) gid = txn_gid_;
  const txn::EndResult result = co_await txn::end_transaction(legs, commit, ctx_.decisions.get(),
                                                              sql, run, ctx_.test_pause, gid);
  count_end(worker_.metrics(), result, legs.size());
  parked_.release_all(worker_, true);
  transaction_over();
  state_ = ClientState::Idle;
  co_return result;
}

// Queues the ERR for a transaction over several shards that could not commit.
void MySession::queue_commit_failure(const txn::EndResult& result) {
  bump(worker_.metrics().statement_errors_total);
  auto err = mysql::parse_err(result.failure.raw_error, mysql::kClientProtocol41);
  if (!result.failure.raw_error.empty() && err) {
    mysql::append_packets(to_client_,
                          mysql::build_err(*err, capabilities_ | mysql::kClientProtocol41), seq_);
    return;
  }
  queue_error(mysql::kErErrorDuringCommit, "the transaction could not commit on shard " +
                                               result.failed_shard + " (" + result.failure.error +
                                               "); it was rolled back on every shard");
}

// Ends every leg and answers the client's COMMIT or ROLLBACK.
asio::awaitable<Result<void>> MySession::end_across_shards(bool commit) {
  const txn::EndResult result = co_await end_legs(commit);
  if (result.outcome != txn::Outcome::Failed)
    queue_transaction_ok(false);
  else
    queue_commit_failure(result);
  routing_.round_done(user_->read_your_writes() == config::ReadYourWrites::SESSION,
                      std::chrono::steady_clock::now(), in_client_transaction());
  co_return co_await flush_client();
}

}  // namespace shardgate::session
