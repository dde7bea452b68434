// A MySQL client's transaction over several shards (see shard_legs.h and
// proxy/txn/two_phase.h). The proxy begins a client's transaction as
// XA START on the shard of its first statement, and on every further shard
// it reaches; COMMIT ends them all through the two-phase coordinator (XA END,
// XA PREPARE, decision, XA COMMIT; one shard that wrote: XA COMMIT ... ONE
// PHASE). Inside an XA transaction a stray COMMIT or a statement that would
// commit implicitly fails on the server (1399), so no shard can end alone.
#include "proxy/net/my_io.h"
#include "proxy/protocol/mysql/messages.h"
#include "proxy/session/my_session.h"
#include "proxy/session/shard_choice.h"

namespace shardgate::session {

void MySession::park_server() {
  if (!server_.conn) return;
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

Result<void> MySession::switch_leg(std::uint32_t wanted) {
  const router::Topology& topo = *ctx_.topology;
  const std::string what = "this transaction runs on shard " + topo.shards[server_shard_].name +
                           " and the statement needs shard " + topo.shards[wanted].name;
  if (!txn_xa_ && !txn_read_only_)
    return make_error(what +
                      (ctx_.decisions
                           ? "; only a transaction begun with BEGIN or START TRANSACTION can span "
                             "shards (not one opened by autocommit=0)"
                           : "; transactions over several shards need the proxy's data_dir "
                             "(where two-phase commit decisions are kept)"));
  if (pinned_ || user_->pool_mode() == config::PoolMode::SESSION)
    return make_error(what +
                      "; the session keeps state on its connection there (user variables, locks, "
                      "temporary tables or session pooling)");
  if (savepoint_set_)
    return make_error(what +
                      "; the transaction set a savepoint, and savepoints cannot span shards");
  if (!tracker_.idle()) return make_error(what + "; send it after the answer to the one before");
  park_server();
  if (unpark(wanted)) return {};
  next_shard_ = wanted;
  deferred_begin_ = txn_xa_ ? "XA START '" + txn_gid_ + "'" : txn_begin_;
  return {};
}

namespace {

// The coordinator's Runner for MySQL: the k-th statement of every leg is
// sent to all of them before their answers are read (an OK or an ERR each).
template <class Legs>
asio::awaitable<std::vector<txn::LegAnswer>> run_on_legs(Legs& legs, txn::Steps steps,
                                                         std::uint32_t max_size) {
  std::vector<txn::LegAnswer> answers(steps.size());
  std::size_t rounds = 0;
  for (std::size_t k = 0; k < steps.size(); ++k) {
    rounds = std::max(rounds, steps[k].second.size());
    answers[k].ok = !legs[steps[k].first].broken;
    if (!answers[k].ok) {
      answers[k].lost = true;
      answers[k].error = "the connection was lost";
    }
  }
  for (std::size_t r = 0; r < rounds; ++r) {
    std::vector<bool> sent(steps.size(), false);
    for (std::size_t k = 0; k < steps.size(); ++k) {
      if (!answers[k].ok || r >= steps[k].second.size()) continue;
      auto& leg = legs[steps[k].first];
      std::string payload(1, static_cast<char>(mysql::kComQuery));
      payload += steps[k].second[r];
      std::string out;
      std::uint8_t seq = 0;
      mysql::append_packets(out, payload, seq);
      auto w = co_await net::write_all(leg.server.conn->socket(), out);
      if (!w) {
        leg.broken = true;
        answers[k] = {false, true, "", "lost the connection (" + w.error().message() + ")", ""};
        continue;
      }
      sent[k] = true;
    }
    for (std::size_t k = 0; k < steps.size(); ++k) {
      if (!sent[k]) continue;
      auto& leg = legs[steps[k].first];
      auto& conn = *leg.server.conn;
      auto message = co_await net::read_message(conn.socket(), conn.buffer(), max_size);
      if (!message) {
        leg.broken = true;
        answers[k] = {false, true, "", "lost the connection (" + message.error().message() + ")",
                      ""};
        continue;
      }
      const std::string_view payload = conn.buffer().readable().substr(4, message->payload_size);
      const auto header = payload.empty() ? 0 : static_cast<std::uint8_t>(payload[0]);
      if (header == mysql::kErrHeader) {
        leg.dirty = true;  // its XA state after a failure is not worth sharing
        answers[k].ok = false;
        answers[k].raw_error.assign(payload);
        auto err = mysql::parse_err(payload, conn.capabilities());
        answers[k].error = err ? std::string(err->message) : "an error";
      } else if (header != mysql::kOkHeader) {
        leg.broken = true;  // a result set, where none belongs: the stream is lost
        answers[k] = {false, true, "", "an answer that is neither OK nor an error", ""};
      }
      conn.buffer().consume(message->size);
    }
  }
  co_return answers;
}

}  // namespace

// Ends every leg and answers the client's COMMIT or ROLLBACK.
asio::awaitable<Result<void>> MySession::end_across_shards(bool commit) {
  park_server();
  std::vector<txn::Leg> legs;
  for (const auto& leg : parked_.all())
    legs.push_back({ctx_.topology->shards[leg.shard].name, leg.wrote});
  auto run = [this](const txn::Steps& steps) {
    return run_on_legs(parked_.all(), steps, max_message_size_);
  };
  const txn::TwoPhaseSql& sql = txn_xa_ ? txn::mysql_two_phase() : txn::one_phase_only();
  // The XA legs carry the name already. A named local: g++ 12 destroys a
  // temporary argument of a co_await twice.
  std::optional<std::string> gid;
  if (txn_xa_) gid = txn_gid_;
  const txn::EndResult result = co_await txn::end_transaction(legs, commit, ctx_.decisions.get(),
                                                              sql, run, ctx_.test_pause, gid);
  auto& m = worker_.metrics();
  count_end(m, result, legs.size());
  parked_.release_all(worker_, true);
  transaction_over();
  state_ = ClientState::Idle;
  if (result.outcome != txn::Outcome::Failed) {
    queue_transaction_ok(false);
  } else {
    bump(m.statement_errors_total);
    auto err = mysql::parse_err(result.failure.raw_error, mysql::kClientProtocol41);
    if (!result.failure.raw_error.empty() && err) {
      mysql::append_packets(to_client_,
                            mysql::build_err(*err, capabilities_ | mysql::kClientProtocol41), seq_);
    } else {
      queue_error(mysql::kErErrorDuringCommit,
                  "the transaction could not commit on shard " + result.failed_shard + " (" +
                      result.failure.error + "); it was rolled back on every shard");
    }
  }
  routing_.round_done(user_->read_your_writes() == config::ReadYourWrites::SESSION,
                      std::chrono::steady_clock::now());
  co_return co_await flush_client();
}

}  // namespace shardgate::session
