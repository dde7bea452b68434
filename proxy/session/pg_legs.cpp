// A PostgreSQL client's transaction over several shards. Each shard the
// transaction reaches gets a server connection of its own (a leg), opened
// with the client's BEGIN when the first statement needs that shard. Only
// one leg is attached at a time (server_); the others are parked, still in
// the transaction. COMMIT and ROLLBACK are answered by the proxy after it
// has ended every leg through the two-phase coordinator (proxy/txn).
//
// What would let one leg end apart from the others is refused while several
// legs are open: a multi-statement query (it could hold a COMMIT) and
// savepoints (ROLLBACK TO would undo one shard's work only).
#include "proxy/net/pg_io.h"
#include "proxy/session/pg_leg_runner.h"
#include "proxy/session/pg_session.h"
#include "proxy/session/shard_choice.h"
#include "proxy/txn/two_phase.h"

namespace shardgate::session {

// Moves the attached connection, with its tracker, among the parked legs.
void PgSession::park_server() {
  if (!server_) return;
  decltype(parked_)::Leg leg;
  leg.server.conn = std::move(server_);
  leg.server.pool = pool_;
  leg.server.role = server_role_;
  leg.shard = server_shard_;
  leg.dirty = server_dirty_;
  leg.wrote = server_wrote_;
  leg.tracker = std::move(tracker_);
  parked_.park(std::move(leg));
  tracker_ = ResponseTracker();
  pool_ = nullptr;
  server_dirty_ = false;
  server_wrote_ = false;
}

bool PgSession::unpark(std::uint32_t shard) {
  auto leg = parked_.take(shard);
  if (!leg) return false;
  server_ = std::move(leg->server.conn);
  pool_ = leg->server.pool;
  server_role_ = leg->server.role;
  server_shard_ = leg->shard;
  server_dirty_ = leg->dirty;
  server_wrote_ = leg->wrote;
  tracker_ = std::move(leg->tracker);
  state_ = ClientState::Active;
  return true;
}

// The transaction is lost (a server or the client went away): closing the
// parked connections makes their servers roll back.
void PgSession::abandon_parked() {
  parked_.release_all(worker_, false);
}

void PgSession::transaction_over() {
  server_wrote_ = false;
  savepoint_set_ = false;
  txn_begin_.reset();
  // Over several shards: committed by two-phase commit, not journaled.
  journal_txn_.reset();
}

// The statement needs shard `wanted` inside the open transaction: park the
// current leg and go to that shard's leg, opening it if it is new.
Result<void> PgSession::switch_leg(std::uint32_t wanted, bool multi_statement) {
  const router::Topology& topo = *ctx_.topology;
  // Only a refusal needs the words.
  auto what = [&] {
    return "this transaction runs on shard " + topo.shards[server_shard_].name +
           " and the statement needs shard " + topo.shards[wanted].name;
  };
  if (!ctx_.decisions)
    return make_error(what() +
                      "; transactions over several shards need the proxy's data_dir (where "
                      "two-phase commit decisions are kept): set data_dir in the configuration");
  if (user_->pool_mode() == config::PoolMode::SESSION)
    return make_error(what() + ": use pool_mode: transaction with a sharded cluster");
  if (!tracker_.idle())
    return make_error(what() + "; send it after the answers to the statements before it");
  if (multi_statement)
    return make_error(what() +
                      "; in a transaction over several shards send one statement per query");
  if (savepoint_set_)
    return make_error(what() +
                      "; the transaction set a savepoint, and savepoints cannot span shards: "
                      "release it first, or keep the transaction on one shard");
  park_server();
  if (unpark(wanted)) return {};
  round_shard_ = wanted;
  deferred_begin_ = txn_begin_ ? std::make_unique<BeginText>(*txn_begin_) : plain_begin();
  deferred_begin_->stmt.kind = router::StatementKind::Begin;
  return {};
}

// Ends every leg of the transaction (commit: COMMIT asked) and gives them back.
asio::awaitable<txn::EndResult> PgSession::end_legs(bool commit) {
  park_server();
  bool failed = false;
  std::vector<txn::Leg> legs;
  for (const auto& leg : parked_.all()) {
    failed = failed || leg.tracker.transaction_status() == 'E';
    legs.push_back({ctx_.topology->shards[leg.shard].name, leg.wrote});
  }
  auto run = [this](const txn::Steps& steps) {
    return run_on_pg_legs(parked_.all(), steps, max_message_size_);
  };
  const txn::EndResult result =
      co_await txn::end_transaction(legs, commit && !failed, ctx_.decisions.get(),
                                    txn::postgres_two_phase(), run, ctx_.test_pause);
  count_end(worker_.metrics(), result, legs.size());
  if (result.outcome == txn::Outcome::Committed) {
    for (const auto& change : txn_settings_) settings_.apply(change);
  }
  // Which leg ran a SET of the transaction is not known: such legs are not shared.
  const bool settings_unknown = !txn_settings_.empty();
  txn_settings_.clear();
  parked_.release_all(worker_, !settings_unknown);
  transaction_over();
  state_ = ClientState::Idle;
  co_return result;
}

// The client's answer when `result` fails: the server's own error (a
// deferred constraint ...) or the proxy's.
std::string pg_commit_failure(const txn::EndResult& result) {
  if (!result.failure.raw_error.empty()) return result.failure.raw_error;
  return pg::error_response("40000",
                            "the transaction over several shards could not commit on "
                            "shard " +
                                result.failed_shard + " (" + result.failure.error +
                                "); it was rolled back on every shard");
}

// Appends the answer to the client's COMMIT or ROLLBACK.
asio::awaitable<void> PgSession::end_across_shards(bool commit) {
  const txn::EndResult result = co_await end_legs(commit);
  switch (result.outcome) {
    case txn::Outcome::Committed:
      to_client_ += pg::command_complete("COMMIT");
      break;
    case txn::Outcome::RolledBack:
      to_client_ += pg::command_complete("ROLLBACK");
      break;
    case txn::Outcome::Failed:
      bump(worker_.metrics().statement_errors_total);
      to_client_ += pg_commit_failure(result);
      break;
  }
  routing_.round_done(user_->read_your_writes() == config::ReadYourWrites::SESSION,
                      std::chrono::steady_clock::now(), in_client_transaction());
}

asio::awaitable<Result<void>> PgSession::end_query_across_shards(const pg::Frame& f, bool commit) {
  in_.consume(f.size);
  co_await end_across_shards(commit);
  to_client_ += pg::ready_for_query('I');
  co_return co_await flush_client();
}

// One message of an extended batch whose statement is COMMIT or ROLLBACK:
// the proxy answers each as the server would have.
asio::awaitable<Result<void>> PgSession::end_batch_across_shards(const pg::Frame& f) {
  in_.consume(f.size);
  switch (f.type) {
    case 'P':
      if (auto p = pg::parse_parse(f.body); p && !p->name.empty()) {
        PreparedStatement ps;  // prepared on a server when a later batch binds it
        ps.server_name = server_statement_name(p->query, p->param_types);
        ps.query = p->query;
        ps.param_types = p->param_types;
        ps.routing.kind =
            batch_end_commits_ ? router::StatementKind::Commit : router::StatementKind::Rollback;
        prepared_.put(p->name, std::move(ps));
      }
      to_client_ += pg::simple_message('1');
      break;
    case 'B':
      to_client_ += pg::simple_message('2');
      break;
    case 'D':
      if (!f.body.empty() && f.body[0] == 'S') {
        pg::Encoder e;
        e.begin('t').u16(0).end();  // no parameters
        to_client_ += e.take();
      }
      to_client_ += pg::simple_message('n');
      break;
    case 'E':
      co_await end_across_shards(batch_end_commits_);
      break;
    case 'C':
      to_client_ += pg::simple_message('3');
      break;
    case 'S':
      ending_batch_ = false;
      batch_routed_ = false;
      to_client_ += pg::ready_for_query('I');
      break;
    default:  // Flush
      break;
  }
  co_return co_await flush_client();
}

}  // namespace shardgate::session
