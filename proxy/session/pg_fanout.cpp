// A PostgreSQL write that needs several shards (a multi-row INSERT whose
// rows belong to several, UPDATE/DELETE with an IN list of keys, a write to
// a reference table, a keyless write the config lets scatter, DDL of a
// sharded or reference table: PostgreSQL's DDL is transactional, so it
// lands on every shard or none like any other write). Each shard
// runs its part (router/write_split.h) inside a leg of the client's
// transaction; outside one, the proxy opens a transaction for the statement
// and commits it through the two-phase coordinator, so the write lands on
// every shard or none.
//
// The client sees one answer: the first shard's RowDescription, every
// shard's rows (RETURNING; a reference table's from one shard only), and one
// CommandComplete whose count is the sum (a reference table: one shard's).
#include <charconv>

#include "proxy/net/pg_io.h"
#include "proxy/session/ddl_on_each_shard.h"
#include "proxy/session/pg_leg_runner.h"
#include "proxy/session/pg_session.h"
#include "proxy/session/server_attach.h"
#include "proxy/session/settings.h"
#include "proxy/txn/two_phase.h"

namespace shardgate::session {

namespace {

// "INSERT 0 3" -> ("INSERT 0 ", 3); "UPDATE 2" -> ("UPDATE ", 2); a tag
// without a count ("CREATE TABLE") -> (itself, 0).
std::pair<std::string, std::uint64_t> split_tag(std::string_view tag) {
  const auto space = tag.rfind(' ');
  std::uint64_t n = 0;
  if (space == std::string_view::npos) return {std::string(tag), 0};
  const auto digits = tag.substr(space + 1);
  if (std::from_chars(digits.data(), digits.data() + digits.size(), n).ec != std::errc())
    return {std::string(tag), 0};
  return {std::string(tag.substr(0, space + 1)), n};
}

// The one CommandComplete the client hears: the verb with the summed count,
// or a countless tag as the servers sent it.
std::string joined_tag(const std::string& verb, std::uint64_t count) {
  return !verb.empty() && verb.back() == ' ' ? verb + std::to_string(count) : verb;
}

}  // namespace

// A new leg of the client's transaction on `shard`: a primary connection
// with the client's settings and its BEGIN run.
asio::awaitable<Result<PgSession::Leg>> PgSession::open_leg(std::uint32_t shard, bool begin) {
  auto attached = co_await attach_server(worker_, pools_, *user_, database_,
                                         router::TargetRole::Primary, shard, std::nullopt);
  if (!attached) co_return attached.error();
  Leg leg;
  leg.server = std::move(*attached);
  leg.shard = shard;
  auto& conn = *leg.server.conn;
  std::string out;
  std::size_t answers = begin ? 1 : 0;
  const std::string sync = settings_sync_sql(settings_, conn.settings);
  if (!sync.empty()) {
    out += pg::query_message(sync);
    conn.settings = settings_;
    ++answers;
  }
  if (begin) out += pg::query_message(txn_begin_ ? std::string_view(txn_begin_->sql) : "BEGIN");
  std::string error;
  auto w = co_await net::write_all(conn.socket(), out);
  if (!w) error = w.error().message();
  while (error.empty() && answers > 0) {
    auto frame = co_await net::read_frame(conn.socket(), conn.buffer(), max_message_size_);
    if (!frame) {
      error = frame.error().message();
      break;
    }
    if (frame->type == 'E') error = pg::parse_error_fields(frame->body).message;
    if (frame->type == 'Z') --answers;
    conn.buffer().consume(frame->size);
  }
  if (!error.empty()) {
    release_server(worker_, leg.server, false);
    co_return make_error("could not begin the transaction on shard " +
                         ctx_.topology->shards[shard].name + " (" + error + ")");
  }
  leg.tracker.assume_transaction_status(begin ? 'T' : 'I');
  co_return leg;
}

// DDL that PostgreSQL refuses inside a transaction block (CREATE INDEX
// CONCURRENTLY ...), on every shard: it cannot be all-or-nothing, so each
// shard runs it at once on a connection of its own, and when some refuse
// it the error names the shards that applied it, so that the operator can
// finish the change (IF NOT EXISTS / IF EXISTS make a rerun safe).
asio::awaitable<Result<void>> PgSession::fanout_ddl(const router::WritePlan& plan,
                                                    const ScatterExtended* extended) {
  const auto started = std::chrono::steady_clock::now();
  if (in_client_transaction()) {
    // As the server says it; the transaction goes on failed, as there.
    co_return co_await refuse_round(
        "25001",
        "this DDL cannot run inside a transaction block, and it runs on every shard: run it "
        "outside a transaction",
        true);
  }
  bump(worker_.metrics().fanout_writes_total);
  for (const auto& w : plan.writes) routing_.note_write_on(w.shard);
  // Named, not temporaries: g++ 12 mishandles those as coroutine arguments.
  auto open = [this](std::uint32_t shard) { return open_leg(shard, false); };
  auto run = [this](std::vector<Leg>& legs, txn::Steps steps) {
    return run_on_pg_legs(legs, std::move(steps), max_message_size_);
  };
  const DdlRun ran = co_await run_ddl_on_each_shard<Leg>(worker_, plan, *ctx_.topology, open, run);
  const txn::LegAnswer* first_refusal =
      ran.first_refusal ? &ran.answers[*ran.first_refusal] : nullptr;
  if (extended && ran.failure.empty()) {
    if (extended->parse_complete) to_client_ += pg::simple_message('1');
    to_client_ += pg::simple_message('2');
    if (extended->describe) to_client_ += pg::simple_message('n');
  }
  if (!ran.failure.empty()) {
    bump(worker_.metrics().proxy_errors_total);
    to_client_ += pg::error_response("08006", "the DDL ran on no shard: " + ran.failure);
  } else if (first_refusal && ran.applied.empty() && !first_refusal->raw_error.empty()) {
    // Refused everywhere (an index that exists, a syntax error): the server's own error.
    bump(worker_.metrics().statement_errors_total);
    to_client_ += first_refusal->raw_error;
  } else if (first_refusal) {
    bump(worker_.metrics().statement_errors_total);
    to_client_ += pg::error_response(
        "XX000", "the DDL is applied on shards " + ran.applied + " but failed on " + ran.refused +
                     " (" + first_refusal->error +
                     "): it runs outside a transaction on each shard; fix the cause and run it "
                     "again on those shards (IF NOT EXISTS / IF EXISTS make a rerun safe; a failed "
                     "CREATE INDEX CONCURRENTLY leaves an invalid index to drop first)");
  } else {
    to_client_ += pg::command_complete(ran.tag);
  }
  to_client_ += pg::ready_for_query('I');
  routing_.round_done(user_->read_your_writes() == config::ReadYourWrites::SESSION,
                      std::chrono::steady_clock::now(), false);
  worker_.metrics().statement_latency.observe(std::chrono::steady_clock::now() - started);
  co_return co_await flush_client();
}

asio::awaitable<Result<void>> PgSession::fanout_write(const router::WritePlan& plan,
                                                      const ScatterExtended* extended) {
  const auto started = std::chrono::steady_clock::now();
  const bool implicit = !in_client_transaction();
  std::string refusal;
  if (!ctx_.decisions)
    refusal =
        "a write over several shards needs the proxy's data_dir (where two-phase commit "
        "decisions are kept): set data_dir in the configuration";
  else if (user_->pool_mode() == config::PoolMode::SESSION)
    refusal = "a write over several shards needs pool_mode: transaction";
  else if (savepoint_set_)
    refusal = "the transaction set a savepoint, and savepoints cannot span shards";
  else if (server_ && !tracker_.idle())
    refusal = "send a write over several shards after the answers to the statements before it";
  if (!refusal.empty()) co_return co_await refuse_round("0A000", refusal, true);
  bump(worker_.metrics().fanout_writes_total);
  if (implicit) {
    txn_begin_ = plain_begin();
  } else {
    deferred_begin_.reset();  // the legs open with txn_begin_
  }
  park_server();

  // Every target shard gets a leg of the transaction.
  std::string failure;
  std::vector<std::uint32_t> targets;
  for (const auto& w : plan.writes) targets.push_back(w.shard);
  auto opened =
      co_await give_legs(parked_, targets, [this](std::uint32_t s) { return open_leg(s); });
  if (!opened) failure = opened.error().message();
  // Every target has a leg once give_legs succeeded.
  auto leg_of = [this](std::uint32_t shard) -> Leg& { return *parked_.find(shard); };

  // Each shard's part, sent to all before any answer is read.
  if (failure.empty()) {
    for (const auto& w : plan.writes) {
      Leg& leg = leg_of(w.shard);
      leg.wrote = true;
      routing_.note_write_on(w.shard);
      auto sent = co_await net::write_all(leg.server.conn->socket(), pg::query_message(w.sql));
      if (!sent) {
        leg.broken = true;
        failure = "lost the connection to shard " + ctx_.topology->shards[w.shard].name;
        break;
      }
    }
  }
  // An extended batch hears of its Parse and Bind first; its rows come
  // described only when it asked (Describe), and NoData when there are none.
  if (extended && failure.empty()) {
    if (extended->parse_complete) to_client_ += pg::simple_message('1');
    to_client_ += pg::simple_message('2');
  }
  const bool describe = !extended || extended->describe;
  std::string first_error;  // as the server sent it
  std::optional<std::uint32_t> failed_shard;
  bool described = false;
  std::string verb;
  std::uint64_t count = 0;
  for (std::size_t k = 0; failure.empty() && k < plan.writes.size(); ++k) {
    const std::uint32_t shard = plan.writes[k].shard;
    Leg& leg = leg_of(shard);
    auto& conn = *leg.server.conn;
    const bool relay_rows = !plan.reference || k == 0;
    for (bool ready = false; !ready;) {
      auto frame = co_await net::read_frame(conn.socket(), conn.buffer(), max_message_size_);
      if (!frame) {
        leg.broken = true;
        failure = "lost the connection to shard " + ctx_.topology->shards[shard].name;
        break;
      }
      const pg::Frame& m = *frame;
      const std::string_view raw(m.body.data() - 5, m.size);
      switch (m.type) {
        case 'T':
          if (!described && first_error.empty() && describe) to_client_ += raw;
          described = true;
          break;
        case 'D':
          if (relay_rows && first_error.empty()) to_client_ += raw;
          break;
        case 'C': {
          auto [v, n] = split_tag(std::string_view(m.body.data(), m.body.size() - 1));
          if (verb.empty()) verb = v;
          if (relay_rows) count += n;
          break;
        }
        case 'E':
          if (first_error.empty()) {
            first_error.assign(raw);
            failed_shard = shard;
          }
          break;
        case 'Z':
          leg.tracker.assume_transaction_status(m.body.empty() ? 'E' : m.body[0]);
          ready = true;
          break;
        default:  // notices, parameter changes: not the client's business here
          break;
      }
      conn.buffer().consume(m.size);
      if (to_client_.size() > 64 * 1024) {
        auto flushed = co_await flush_client();
        if (!flushed) co_return flushed;
      }
    }
  }

  if (!failure.empty()) {
    // A leg is gone: the transaction cannot commit anywhere.
    bump(worker_.metrics().proxy_errors_total);
    abandon_parked();
    transaction_over();
    state_ = ClientState::Idle;
    to_client_ += pg::error_response(
        "08006", failure + (implicit ? ": the statement was rolled back on every shard"
                                     : ": the transaction is rolled back; start it again"));
    to_client_ += pg::ready_for_query('I');
    co_return co_await flush_client();
  }
  if (extended && extended->describe && !described) to_client_ += pg::simple_message('n');
  char status = 'T';
  if (implicit) {
    // The statement's own transaction: committed, or rolled back after an error.
    const txn::EndResult result = co_await end_legs(first_error.empty());
    if (!first_error.empty())
      to_client_ += first_error;
    else if (result.outcome == txn::Outcome::Failed)
      to_client_ += pg_commit_failure(result);
    else
      to_client_ += pg::command_complete(joined_tag(verb, count));
    status = 'I';
  } else if (!first_error.empty()) {
    unpark(*failed_shard);  // the failed leg answers what follows (25P02)
    to_client_ += first_error;
    status = 'E';
  } else {
    to_client_ += pg::command_complete(joined_tag(verb, count));
  }
  if (!first_error.empty()) bump(worker_.metrics().statement_errors_total);
  to_client_ += pg::ready_for_query(status);
  routing_.round_done(user_->read_your_writes() == config::ReadYourWrites::SESSION,
                      std::chrono::steady_clock::now(), in_client_transaction());
  worker_.metrics().statement_latency.observe(std::chrono::steady_clock::now() - started);
  co_return co_await flush_client();
}

}  // namespace shardgate::session
