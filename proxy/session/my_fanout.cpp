// A MySQL write that needs several shards (see pg_fanout.cpp for the
// PostgreSQL twin and router/write_split.h for the parts); DDL, which XA
// cannot hold, at the end. Each part runs in
// an XA leg of the client's transaction; outside one, the proxy opens an XA
// transaction for the statement and commits it through the two-phase
// coordinator. Inside one, the parts run after a savepoint on each leg, so
// that a part that fails takes the others back with it: the statement is
// all or nothing, as a MySQL statement is, and the transaction goes on.
//
// The client gets one OK: affected rows summed (a reference table: one
// shard's), the first insert id.
#include "proxy/net/my_io.h"
#include "proxy/protocol/mysql/messages.h"
#include "proxy/session/ddl_on_each_shard.h"
#include "proxy/session/my_leg_runner.h"
#include "proxy/session/my_session.h"

namespace shardgate::session {

namespace {

constexpr const char* kSavepoint = "SAVEPOINT shardgate_write";
constexpr const char* kUndo = "ROLLBACK TO SAVEPOINT shardgate_write";

}  // namespace

// A new XA leg of the client's transaction on `shard`: a primary connection
// with the client's settings and schema, XA START run (unless !begin: a
// connection for DDL, which runs outside any transaction).
asio::awaitable<Result<MySession::Leg>> MySession::open_leg(std::uint32_t shard, bool begin) {
  auto attached = co_await attach_server(worker_, pools_, *user_, login_database_,
                                         router::TargetRole::Primary, shard, std::nullopt);
  if (!attached) co_return attached.error();
  Leg leg;
  leg.server = std::move(*attached);
  leg.shard = shard;
  auto& conn = *leg.server.conn;
  std::string out;
  std::size_t answers = append_session_sync(conn, out).size();
  if (begin) {
    // An XA branch, or a READ ONLY transaction as the client began it.
    std::string start(1, static_cast<char>(mysql::kComQuery));
    start += txn_xa_ ? "XA START '" + txn_gid_ + "'" : txn_begin_;
    std::uint8_t seq = 0;
    mysql::append_packets(out, start, seq);
    ++answers;
  }
  std::string error;
  if (!out.empty()) {
    auto w = co_await net::write_all(conn.socket(), out);
    if (!w) error = w.error().message();
  }
  while (error.empty() && answers > 0) {
    auto message = co_await net::read_message(conn.socket(), conn.buffer(), max_message_size_);
    if (!message) {
      error = message.error().message();
      break;
    }
    const std::string_view payload = conn.buffer().readable().substr(4, message->payload_size);
    if (!payload.empty() && static_cast<std::uint8_t>(payload[0]) == mysql::kErrHeader) {
      auto err = mysql::parse_err(payload, conn.capabilities());
      error = err ? std::string(err->message) : "an error";
    }
    conn.buffer().consume(message->size);
    --answers;
  }
  if (!error.empty()) {
    release_server(worker_, leg.server, false);
    co_return make_error("could not begin the transaction on shard " +
                         ctx_.topology->shards[shard].name + " (" + error + ")");
  }
  leg.tracker.reset(conn.capabilities());
  leg.tracker.assume_status(
      static_cast<std::uint16_t>((begin ? mysql::kServerStatusInTrans : 0) |
                                 (autocommit_ ? mysql::kServerStatusAutocommit : 0)));
  co_return leg;
}

// DDL of a sharded or reference table, on every shard. MariaDB commits DDL
// implicitly and refuses it inside XA, so it cannot be all-or-nothing across
// shards: each shard runs it at once on a connection of its own, and when
// some refuse it the error names the shards that applied it, so that the
// operator can finish the change (IF NOT EXISTS / IF EXISTS make a rerun safe).
asio::awaitable<Result<void>> MySession::fanout_ddl(const router::WritePlan& plan) {
  const auto started = std::chrono::steady_clock::now();
  if ((server_.conn && tracker_.in_transaction()) || deferred_begin_ || !parked_.empty()) {
    bump(worker_.metrics().statements_refused_total);
    queue_error(mysql::kErNotSupportedYet,
                "DDL of a sharded or reference table runs on every shard and commits there at "
                "once: run it outside a transaction");
    co_return co_await flush_client();
  }
  bump(worker_.metrics().fanout_writes_total);
  for (const auto& w : plan.writes) routing_.note_write_on(w.shard);
  // Named, not temporaries: g++ 12 mishandles those as coroutine arguments.
  auto open = [this](std::uint32_t shard) { return open_leg(shard, false); };
  auto run = [this](std::vector<Leg>& legs, txn::Steps steps) {
    return run_on_my_legs(legs, std::move(steps), max_message_size_);
  };
  const DdlRun ran = co_await run_ddl_on_each_shard<Leg>(worker_, plan, *ctx_.topology, open, run);
  const txn::LegAnswer* first_refusal =
      ran.first_refusal ? &ran.answers[*ran.first_refusal] : nullptr;
  if (!ran.failure.empty()) {
    bump(worker_.metrics().proxy_errors_total);
    queue_error(mysql::kErUnknownError, "the DDL ran on no shard: " + ran.failure);
  } else if (first_refusal && ran.applied.empty() && !first_refusal->raw_error.empty()) {
    // Refused everywhere (a table that exists, a syntax error): the server's own error.
    bump(worker_.metrics().statement_errors_total);
    auto err = mysql::parse_err(first_refusal->raw_error, mysql::kClientProtocol41);
    if (err)
      mysql::append_packets(to_client_,
                            mysql::build_err(*err, capabilities_ | mysql::kClientProtocol41), seq_);
    else
      queue_error(mysql::kErUnknownError, first_refusal->error);
  } else if (first_refusal) {
    bump(worker_.metrics().statement_errors_total);
    queue_error(mysql::kErUnknownError,
                "the DDL is applied on shards " + ran.applied + " but failed on " + ran.refused +
                    " (" + first_refusal->error +
                    "): DDL commits on each shard at once; fix the cause and run it again "
                    "on those shards (IF NOT EXISTS / IF EXISTS make a rerun safe)");
  } else {
    mysql::OkPacket ok;
    ok.status_flags = autocommit_ ? mysql::kServerStatusAutocommit : 0;
    mysql::append_packets(to_client_, mysql::build_ok(ok, capabilities_), seq_);
  }
  routing_.round_done(user_->read_your_writes() == config::ReadYourWrites::SESSION,
                      std::chrono::steady_clock::now(), false);
  worker_.metrics().statement_latency.observe(std::chrono::steady_clock::now() - started);
  co_return co_await flush_client();
}

asio::awaitable<Result<void>> MySession::fanout_write(std::string_view sql,
                                                      const router::WritePlan& plan) {
  const auto started = std::chrono::steady_clock::now();
  const bool implicit = !server_.conn && !deferred_begin_ && parked_.empty();
  std::string refusal;
  if (!ctx_.decisions)
    refusal =
        "a write over several shards needs the proxy's data_dir (where two-phase commit "
        "decisions are kept): set data_dir in the configuration";
  else if (implicit && !autocommit_)
    refusal =
        "with autocommit=0 this session's transaction stays on one server connection (its state "
        "is pinned there), so it cannot write on several shards";
  else if (!implicit && !txn_xa_)
    refusal =
        "a write over several shards runs only in a transaction shardgate began (BEGIN, START "
        "TRANSACTION, or a first statement that touches a table with autocommit=0; not READ "
        "ONLY)";
  else if (pinned_ || user_->pool_mode() == config::PoolMode::SESSION)
    refusal =
        "the session keeps state on one server connection (user variables, locks, "
        "temporary tables or session pooling), so it cannot write on several shards";
  else if (savepoint_set_)
    refusal = "the transaction set a savepoint, and savepoints cannot span shards";
  else if (router::has_returning(sql, router::Dialect::Mysql))
    refusal = "RETURNING is not supported on a write over several shards";
  else if (server_.conn && !tracker_.idle())
    refusal = "send a write over several shards after the answer to the one before";
  if (!refusal.empty()) {
    bump(worker_.metrics().statements_refused_total);
    queue_error(mysql::kErNotSupportedYet, refusal);
    co_return co_await flush_client();
  }
  bump(worker_.metrics().fanout_writes_total);
  if (implicit) {
    txn_xa_ = true;
    txn_gid_ = ctx_.decisions->next_gid();
  }
  park_server();
  deferred_begin_.reset();  // the legs open with XA START

  std::string failure;
  std::vector<std::uint32_t> targets;
  for (const auto& w : plan.writes) targets.push_back(w.shard);
  auto opened =
      co_await give_legs(parked_, targets, [this](std::uint32_t s) { return open_leg(s); });
  if (!opened) failure = opened.error().message();
  std::vector<txn::LegAnswer> answers;
  txn::Steps steps;
  if (failure.empty()) {
    for (const auto& w : plan.writes) {
      std::size_t index = 0;
      for (std::size_t i = 0; i < parked_.all().size(); ++i)
        if (parked_.all()[i].shard == w.shard) index = i;
      parked_.all()[index].wrote = true;
      routing_.note_write_on(w.shard);
      std::vector<std::string> sqls;
      if (!implicit) sqls.push_back(kSavepoint);
      sqls.push_back(w.sql);
      steps.emplace_back(index, std::move(sqls));
    }
    answers = co_await run_on_my_legs(parked_.all(), steps, max_message_size_);
    for (const auto& a : answers)
      if (a.lost && failure.empty()) failure = a.error;
  }
  if (!failure.empty()) {
    bump(worker_.metrics().proxy_errors_total);
    abandon_parked();
    transaction_over();
    state_ = ClientState::Idle;
    queue_error(mysql::kErUnknownError,
                failure + (implicit ? ": the statement was rolled back on every shard"
                                    : ": the transaction is rolled back; start it again"));
    co_return co_await flush_client();
  }
  const txn::LegAnswer* refused = nullptr;
  std::uint64_t affected = 0, insert_id = 0;
  for (std::size_t k = 0; k < answers.size(); ++k) {
    if (!answers[k].ok && !refused) refused = &answers[k];
    if (!plan.reference || k == 0) affected += answers[k].affected_rows;
    if (insert_id == 0) insert_id = answers[k].insert_id;
  }
  std::string refused_error;  // the shard's ERR payload, as sent
  if (refused) refused_error = refused->raw_error;
  if (implicit) {
    const txn::EndResult result = co_await end_legs(refused == nullptr);
    if (refused) {
      auto err = mysql::parse_err(refused_error, mysql::kClientProtocol41);
      if (err)
        mysql::append_packets(
            to_client_, mysql::build_err(*err, capabilities_ | mysql::kClientProtocol41), seq_);
      else
        queue_error(mysql::kErUnknownError, "a shard refused its part of the write");
      bump(worker_.metrics().statement_errors_total);
    } else if (result.outcome == txn::Outcome::Failed) {
      queue_commit_failure(result);
    } else {
      mysql::OkPacket ok;
      ok.affected_rows = affected;
      ok.last_insert_id = insert_id;
      ok.status_flags = autocommit_ ? mysql::kServerStatusAutocommit : 0;
      mysql::append_packets(to_client_, mysql::build_ok(ok, capabilities_), seq_);
    }
  } else if (refused) {
    // Every part goes back to the savepoint: the statement did nothing.
    txn::Steps undo;
    for (const auto& [index, sqls] : steps)
      undo.emplace_back(index, std::vector<std::string>{kUndo});
    co_await run_on_my_legs(parked_.all(), undo, max_message_size_);
    auto err = mysql::parse_err(refused_error, mysql::kClientProtocol41);
    if (err)
      mysql::append_packets(to_client_,
                            mysql::build_err(*err, capabilities_ | mysql::kClientProtocol41), seq_);
    else
      queue_error(mysql::kErUnknownError, "a shard refused its part of the write");
    bump(worker_.metrics().statement_errors_total);
  } else {
    mysql::OkPacket ok;
    ok.affected_rows = affected;
    ok.last_insert_id = insert_id;
    ok.status_flags = static_cast<std::uint16_t>(
        mysql::kServerStatusInTrans | (autocommit_ ? mysql::kServerStatusAutocommit : 0));
    mysql::append_packets(to_client_, mysql::build_ok(ok, capabilities_), seq_);
  }
  routing_.round_done(user_->read_your_writes() == config::ReadYourWrites::SESSION,
                      std::chrono::steady_clock::now(), in_client_transaction());
  worker_.metrics().statement_latency.observe(std::chrono::steady_clock::now() - started);
  co_return co_await flush_client();
}

}  // namespace shardgate::session
