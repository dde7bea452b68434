// The command loop of a PostgreSQL client session: read client messages,
// route, forward, relay the server's answer, give the server connection back.
#include "proxy/session/pg_session.h"

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "proxy/net/pg_io.h"
#include "proxy/session/shard_choice.h"
#include "router/classify.h"

namespace shardgate::session {

using namespace asio::experimental::awaitable_operators;
using net::use_result;

PgSession::PgSession(net::ClientSocket socket, Worker& worker, const net::ServerTls* tls)
    : slot_(worker),
      client_(std::move(socket)),
      tls_(tls),
      worker_(worker),
      ctx_(worker.ctx()),
      max_message_size_(ctx_.config->limits().max_message_size()),
      cache_(ctx_.result_cache.get(), worker.metrics()) {}

PgSession::~PgSession() {
  if (cancel_key_) ctx_.cancels.remove(*cancel_key_);
  if (server_) detach(false);
  abandon_parked();
}

asio::awaitable<void> PgSession::run() {
  // Taken before the first suspension: co_spawn on the session's own thread
  // starts the coroutine at once, while the listener still holds a reference.
  auto self = shared_from_this();
  const auto limit = std::chrono::milliseconds(ctx_.config->limits().client_login_timeout_ms());
  asio::steady_timer deadline(client_.get_executor(), limit);
  bool timed_out = false;
  arm_login_deadline(deadline, weak_from_this(), timed_out);
  // Straight-line on purpose: with these phases behind one more member
  // coroutine, g++ 12 resumed startup() with a corrupt `this`.
  bool logged_in = co_await startup();
  if (logged_in) logged_in = co_await authenticate();
  if (logged_in) logged_in = co_await send_login_ok();
  deadline.cancel();
  if (!logged_in && timed_out) {
    co_await refuse("08006", login_timeout_message(limit));
    co_return;
  }
  if (!logged_in) co_return;
  if (co_await command_loop() == LoopEnd::Closed) finish();
}

// Served again once an idle client sends something (wait_while_idle).
asio::awaitable<void> PgSession::serve(std::shared_ptr<PgSession> self) {
  auto r = co_await net::read_more(self->client_, self->in_, 4096);
  if (!r) {
    self->finish();  // the client is gone
    co_return;
  }
  if (co_await self->command_loop() == LoopEnd::Closed) self->finish();
}

// An idle client (no server attached, nothing buffered) is waited for by a
// plain completion handler that holds the session: no coroutine frame stays
// alive, which is most of what thousands of idle clients would cost.
void PgSession::wait_while_idle() {
  auto resume = [self = shared_from_this()](boost::system::error_code ec) {
    if (ec) {
      self->finish();
      return;
    }
    asio::co_spawn(self->client_.get_executor(), serve(self), asio::detached);
  };
  client_.async_wait_readable(asio::bind_allocator(ExactSizeAllocator<void>(), std::move(resume)));
}

void PgSession::finish() {
  state_ = ClientState::Closing;
  // A server left mid-transaction by a vanished client is in an unknown state.
  if (server_) detach(tracker_.idle() && tracker_.transaction_status() == 'I' && !server_dirty_);
  abandon_parked();
}

asio::awaitable<Result<void>> PgSession::write_client(std::string_view bytes) {
  co_return co_await net::write_all(client_, bytes);
}

asio::awaitable<Result<void>> PgSession::flush_client() {
  if (to_client_.empty()) co_return Result<void>{};
  cache_.round_done(in_client_transaction());
  // An answer the proxy gave itself (a refusal) ends a round no server answered.
  if (!tracker_.awaiting_ready()) routing_.round_over();
  auto r = co_await net::write_all(client_, to_client_);
  to_client_.clear();
  co_return r;
}

asio::awaitable<Result<void>> PgSession::flush_server() {
  if (to_server_.empty() || !server_) co_return Result<void>{};
  auto r = co_await net::write_all(server_->socket(), to_server_);
  to_server_.clear();
  co_return r;
}

asio::awaitable<void> PgSession::protocol_error(const std::string& message) {
  bump(worker_.metrics().protocol_errors_total);
  to_client_ += pg::error_response("08P01", message, "FATAL");
  co_await flush_client();
}

// Idle between statements: wait for readability holding no buffer (and no
// deeper coroutine frame), so that thousands of idle clients cost little
// memory; the buffers come back with the data.
void PgSession::shed_idle_memory() {
  in_.release_if_empty();
  if (to_client_.capacity() > 64) std::string().swap(to_client_);
  if (to_server_.capacity() > 64) std::string().swap(to_server_);
}

// Waits for client bytes while a server owes answers to a Flush (no Sync
// pending): its bytes are relayed as they come.
asio::awaitable<Result<void>> PgSession::wait_for_input_or_server() {
  auto& sbuf = server_->buffer();
  char* p = sbuf.prepare(net::kReadChunk);
  char* q = in_.prepare(4096);
  auto which =
      co_await (client_.async_read_some(asio::buffer(q, in_.writable()), use_result) ||
                server_->socket().async_read_some(asio::buffer(p, sbuf.writable()), use_result));
  if (which.index() == 0) {
    auto [ec, n] = std::get<0>(which);
    if (ec) co_return make_error("client closed");
    in_.commit(n);
    co_return Result<void>{};
  }
  auto [ec, n] = std::get<1>(which);
  if (ec) {
    co_await server_lost(ec.message());
    co_return Result<void>{};
  }
  sbuf.commit(n);
  auto fed = co_await relay_buffered();
  if (!fed) co_return fed.error();
  if (fed->copy_in) co_return co_await copy_in();
  co_return Result<void>{};
}

// Feeds the attached server's buffered bytes to the tracker, writes what it
// decided to the client (server bytes unchanged, plus any synthetic answers)
// and consumes them. A server that speaks nonsense is dropped.
asio::awaitable<Result<FeedResult>> PgSession::relay_buffered() {
  auto& sbuf = server_->buffer();
  FeedResult fed = tracker_.feed(sbuf.readable());
  if (fed.protocol_error) {
    co_await server_lost("malformed message from server");
    co_return FeedResult{};
  }
  // The journal keeps a commit before the client can hear of it.
  if (auto row = tracker_.take_committed_journal_row()) journal_commit(*row);
  if (tracker_.take_journal_parsed()) server_->prepared.insert(std::string(kJournalStatement));
  relay_out_.clear();
  for (const auto& s : fed.out)
    relay_out_.push_back(s.synthetic.empty()
                             ? asio::buffer(sbuf.readable().data() + s.offset, s.length)
                             : asio::buffer(s.synthetic));
  if (cache_.filling())
    for (const auto& b : relay_out_) cache_.capture({static_cast<const char*>(b.data()), b.size()});
  // Writes this session made are visible once their transaction ended: the
  // cache forgets them before the client hears so.
  if (!tracker_.awaiting_ready()) cache_.round_done(in_client_transaction());
  if (!relay_out_.empty()) {
    auto [ec, n] = co_await asio::async_write(client_, relay_out_, use_result);
    (void)n;
    if (ec) co_return make_error("client closed");
  }
  sbuf.consume(fed.consumed);
  co_return fed;
}

asio::awaitable<PgSession::LoopEnd> PgSession::command_loop() {
  for (;;) {
    auto d = pg::decode_frame(in_.readable(), max_message_size_);
    if (d.status == pg::DecodeStatus::Error) {
      co_await protocol_error("invalid message from client: " + d.error);
      co_return LoopEnd::Closed;
    }
    if (d.status == pg::DecodeStatus::NeedMore) {
      // Everything the client sent so far is forwarded: let the server work.
      auto done = co_await finish_round();
      if (!done) co_return LoopEnd::Closed;
      if (!server_ && in_.empty()) {
        shed_idle_memory();
        wait_while_idle();
        co_return LoopEnd::Idle;
      }
      // One co_await per statement (g++ 12 mishandles co_await inside ?: and &&).
      Result<void> r;
      if (server_ && !tracker_.idle()) {
        r = co_await wait_for_input_or_server();
      } else {
        r = co_await net::read_more(client_, in_, 4096);
      }
      if (!r)
        co_return LoopEnd::Closed;  // the client is gone (server failures are answered inside)
      continue;
    }
    const pg::Frame f = d.frame;
    if (f.type == 'X') co_return LoopEnd::Closed;
    auto handled = co_await handle_message(f);
    if (!handled) co_return LoopEnd::Closed;
  }
}

asio::awaitable<Result<void>> PgSession::handle_message(const pg::Frame& f) {
  switch (f.type) {
    case 'Q':
      co_return co_await handle_query(f);
    case 'P':
    case 'B':
    case 'D':
    case 'E':
    case 'C':
    case 'H':
    case 'S':
    case 'F':
      co_return co_await handle_extended(f);
    case 'd':
    case 'c':
    case 'f':
      // CopyData/CopyDone/CopyFail outside COPY: PostgreSQL ignores them (a
      // client may still be sending after a COPY failed); so does the proxy.
      in_.consume(f.size);
      co_return Result<void>{};
    default:
      co_await protocol_error("invalid frontend message type '" + std::string(1, f.type) + "'");
      co_return make_error("protocol error");
  }
}

asio::awaitable<Result<void>> PgSession::handle_query(const pg::Frame& f) {
  std::string_view sql = f.body;
  if (sql.empty() || sql.back() != '\0') {
    co_await protocol_error("malformed Query message: missing terminator");
    co_return make_error("protocol error");
  }
  sql.remove_suffix(1);
  const auto stmt = router::analyze(sql, router::Dialect::Postgres, ctx_.analyze_options);
  cache_.note_statement(stmt);
  const bool client_transaction = in_client_transaction();
  if (stmt.kind == router::StatementKind::Deallocate && !stmt.multi_statement) {
    if (auto answered = co_await deallocate_locally(f, sql)) co_return *answered;
  }
  if (sharding_active(*ctx_.topology)) {
    if (auto answered = co_await shard_query(f, sql, stmt)) co_return *answered;
  }
  router::CachePlan cache_plan;
  std::optional<std::string> cache_key = cache_key_of(sql, stmt, cache_plan);
  if (cache_key) {
    if (auto hit = cache_.lookup(cache_plan, *cache_key)) {
      in_.consume(f.size);
      to_client_ += hit->bytes;
      to_client_ += pg::ready_for_query('I');
      co_return co_await flush_client();
    }
    if (!server_) routing_.note_cache_fill();
  }
  if (!server_) {
    // A deferred BEGIN decides where the transaction runs, as it would have.
    const router::Statement& lead = deferred_begin_ ? deferred_begin_->stmt : stmt;
    auto a = co_await attach(decide(lead));
    if (!a) {
      in_.consume(f.size);
      to_client_ += pg::error_response(
          "08006", a.error().message() +
                       (parked_.empty() ? "" : ": the transaction is rolled back; start it again"));
      to_client_ += pg::ready_for_query('I');
      deferred_begin_.reset();
      abandon_parked();
      transaction_over();
      bump(worker_.metrics().proxy_errors_total);
      co_return co_await flush_client();
    }
    begin_deferred_transaction();
    if (router::writes_data(stmt)) routing_.note_write();
  } else if (router::writes_data(stmt)) {
    routing_.note_write();
  }
  if (!stmt.multi_statement && stmt.kind == router::StatementKind::Begin) {
    txn_begin_ = std::make_unique<BeginText>(BeginText{std::string(sql), stmt});
  }
  if (stmt.kind == router::StatementKind::Savepoint) savepoint_set_ = true;
  if (stmt.kind == router::StatementKind::SessionSet) {
    if (auto change = parse_setting_change(sql)) {
      pending_setting_ = std::make_unique<SettingChange>(std::move(*change));
    } else {
      server_dirty_ = true;
    }
  } else if (stmt.kind == router::StatementKind::Utility ||
             stmt.kind == router::StatementKind::Listen ||
             stmt.kind == router::StatementKind::Prepare || stmt.multi_statement) {
    // DISCARD/RESET inside multi-statements, SQL-level PREPARE, LISTEN, temp
    // tables ... leave state on the server that another client must not see.
    if (auto change = parse_setting_change(sql)) {
      pending_setting_ = std::make_unique<SettingChange>(std::move(*change));
    } else if (stmt.kind != router::StatementKind::Utility || stmt.multi_statement) {
      server_dirty_ = true;
    }
  }
  if (cache_key) cache_.begin_fill(std::move(cache_plan), std::move(*cache_key));
  std::string journaled;
  const Expect answer = journal_query(sql, stmt, client_transaction, journaled);
  if (answer == Expect::Query) {
    to_server_.append(f.body.data() - 5, f.size);
  } else {
    to_server_ += pg::query_message(journaled);
  }
  in_.consume(f.size);
  if (answer == Expect::JournalTail) {
    tracker_.expect_journal_tail(journal_txn_->tail_statements);
  } else {
    tracker_.expect(answer);
  }
  co_return co_await finish_round();
}

// Forwards what is pending and relays the server's answers until every Sync
// and Query sent so far is answered; then gives the server back if the client
// is outside a transaction.
asio::awaitable<Result<void>> PgSession::finish_round() {
  std::vector<Segment> synthetic;
  tracker_.emit_ready(synthetic);
  for (auto& s : synthetic) to_client_ += s.synthetic;
  if (!to_client_.empty()) {
    auto flushed = co_await flush_client();
    if (!flushed) co_return make_error("client closed");
  }
  if (!server_) {
    cache_.abandon_fill();  // nothing was sent for it (the attach failed)
    co_return Result<void>{};
  }
  if (!to_server_.empty()) {
    round_started_ = std::chrono::steady_clock::now();
    auto w = co_await flush_server();
    if (!w) {
      co_await server_lost(w.error().message());
      co_return Result<void>{};
    }
  }
  if (!tracker_.awaiting_ready()) co_return Result<void>{};
  auto r = co_await relay_until_answered();
  if (!r) co_return r;
  if (cache_.filling())
    cache_.finish_fill(server_ && !tracker_.error_seen() && tracker_.transaction_status() == 'I',
                       pg::ready_for_query('I'));
  worker_.metrics().statement_latency.observe(std::chrono::steady_clock::now() - round_started_);
  note_statement_done();
  co_return Result<void>{};
}

asio::awaitable<Result<void>> PgSession::relay_until_answered() {
  while (server_ && tracker_.awaiting_ready()) {
    if (server_->buffer().size() > 0) {
      auto fed = co_await relay_buffered();
      if (!fed) co_return fed.error();
      if (fed->copy_in) {
        auto c = co_await copy_in();
        if (!c) co_return c;
        continue;
      }
      if (fed->consumed > 0) continue;
      if (!server_) break;
    }
    auto r = co_await net::read_more(server_->socket(), server_->buffer());
    if (!r) co_await server_lost(r.error().message());
  }
  co_return Result<void>{};
}

}  // namespace shardgate::session
