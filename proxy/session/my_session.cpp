// The command loop of a MySQL client session: read one command, route it,
// forward it unchanged, relay the server's answer, give the server back.
#include "proxy/session/my_session.h"

#include "proxy/net/my_io.h"
#include "proxy/protocol/auth/mysql_auth.h"
#include "proxy/protocol/mysql/change_user.h"
#include "proxy/protocol/mysql/handshake.h"
#include "proxy/protocol/mysql/messages.h"
#include "proxy/session/my_session_state.h"
#include "proxy/session/shard_choice.h"
#include "replication/mysql_monitor.h"
#include "router/classify.h"

namespace shardgate::session {

using net::use_result;

namespace {
// Enough for most commands; a longer one grows the buffer as it arrives.
constexpr std::size_t kIdleReadSize = 512;
}  // namespace

MySession::MySession(net::ClientSocket socket, Worker& worker, const net::ServerTls* tls)
    : slot_(worker),
      client_(std::move(socket)),
      tls_(tls),
      worker_(worker),
      ctx_(worker.ctx()),
      max_message_size_(ctx_.config->limits().max_message_size()),
      cache_(ctx_.result_cache.get(), worker.metrics()) {}

MySession::~MySession() {
  if (cancel_key_) ctx_.cancels.remove(*cancel_key_);
  if (server_.conn) detach(false);
  abandon_parked();
}

asio::awaitable<void> MySession::run() {
  // Taken before the first suspension (see PgSession::run).
  auto self = shared_from_this();
  const auto limit = std::chrono::milliseconds(ctx_.config->limits().client_login_timeout_ms());
  asio::steady_timer deadline(client_.get_executor(), limit);
  bool timed_out = false;
  arm_login_deadline(deadline, weak_from_this(), timed_out);
  const bool logged_in = co_await greet_and_authenticate();
  deadline.cancel();
  if (!logged_in && timed_out) {
    co_await refuse(mysql::kErHandshakeError, login_timeout_message(limit));
    co_return;
  }
  if (!logged_in) co_return;
  co_await command_loop();
  state_ = ClientState::Closing;
  if (server_.conn) co_await release_at_end();
}

asio::awaitable<Result<void>> MySession::write_client(std::string_view bytes) {
  co_return co_await net::write_all(client_, bytes);
}

asio::awaitable<Result<void>> MySession::flush_client() {
  if (to_client_.empty()) co_return Result<void>{};
  cache_.round_done(in_client_transaction());
  // An answer the proxy gave itself (a refusal) ends a round no server answered.
  if (tracker_.idle()) routing_.round_over();
  auto w = co_await write_client(to_client_);
  to_client_.clear();
  co_return w;
}

asio::awaitable<Result<void>> MySession::flush_server() {
  if (to_server_.empty()) co_return Result<void>{};
  auto w = co_await net::write_all(server_.conn->socket(), to_server_);
  to_server_.clear();
  co_return w;
}

void MySession::queue_error(mysql::ErrorCode code, const std::string& message) {
  mysql::append_packets(
      to_client_, mysql::build_err(code, message, capabilities_ | mysql::kClientProtocol41), seq_);
}

void MySession::queue_ok() {
  mysql::OkPacket ok;
  ok.status_flags = autocommit_ ? mysql::kServerStatusAutocommit : 0;
  mysql::append_packets(to_client_, mysql::build_ok(ok, capabilities_), seq_);
}

asio::awaitable<void> MySession::command_loop() {
  std::string joined;  // a command of 16 MB or more, assembled
  for (;;) {
    auto d = mysql::decode_message(in_.readable(), max_message_size_);
    if (d.status == mysql::DecodeStatus::Error) {
      seq_ = 1;
      queue_error(mysql::kErNetPacketTooLarge, "invalid packet from client: " + d.error +
                                                   " (limits.max_message_size " +
                                                   std::to_string(max_message_size_) + ")");
      co_await flush_client();
      co_return;
    }
    if (d.status == mysql::DecodeStatus::NeedMore) {
      // Between commands the session holds only a small buffer. It reads
      // straight away rather than waiting for readiness first: an Asio wait
      // costs an epoll_ctl per command, a read registered once costs none.
      const bool idle = !server_.conn && in_.empty();
      if (idle) in_.release_if_empty();
      auto r = co_await net::read_more(client_, in_, idle ? kIdleReadSize : 4096);
      if (!r) co_return;
      continue;
    }
    // Every command starts an exchange at sequence id 0; anything else means
    // client and proxy disagree about where they are.
    if (d.seq != 0) {
      seq_ = static_cast<std::uint8_t>(d.last_seq + 1);
      queue_error(mysql::kErNetPacketsOutOfOrder, "Got packets out of order (sequence id " +
                                                      std::to_string(d.seq) +
                                                      " where a command starts at 0)");
      co_await flush_client();
      co_return;
    }
    seq_ = static_cast<std::uint8_t>(d.last_seq + 1);
    const std::string_view payload = mysql::message_payload(in_.readable(), d, joined);
    if (payload.empty()) {
      queue_error(mysql::kErMalformedPacket, "empty command packet");
      co_await flush_client();
      co_return;
    }
    const auto command = static_cast<std::uint8_t>(payload[0]);
    if (command == mysql::kComQuit) co_return;
    if (command == mysql::kComChangeUser) {
      // A login exchange follows on the same connection: the command must be
      // out of the buffer before the client's answers are read into it.
      std::string copy(payload);
      in_.consume(d.size);
      joined.clear();
      auto changed = co_await change_user(copy);
      if (!changed) co_return;
      continue;
    }
    auto handled = co_await handle_command(payload);
    in_.consume(d.size);
    joined.clear();
    if (!handled) co_return;
  }
}

asio::awaitable<Result<void>> MySession::handle_command(std::string_view payload) {
  const auto command = static_cast<std::uint8_t>(payload[0]);
  switch (command) {
    case mysql::kComQuery:
      co_return co_await handle_query(payload);
    case mysql::kComPing:
      queue_ok();
      co_return co_await flush_client();
    case mysql::kComInitDb:
      co_return co_await forward(payload, read_statement(), MyAnswer::Simple);
    case mysql::kComFieldList:
      co_return co_await forward(payload, read_statement(), MyAnswer::FieldList);
    case mysql::kComStatistics:
      co_return co_await forward(payload, read_statement(), MyAnswer::Raw);
    case mysql::kComStmtPrepare:
      co_return co_await stmt_prepare(payload);
    case mysql::kComStmtExecute:
      co_return co_await stmt_execute(payload);
    case mysql::kComStmtSendLongData:
      stmt_send_long_data(payload);
      co_return Result<void>{};
    case mysql::kComStmtClose:
      stmt_close(payload);
      co_return Result<void>{};
    case mysql::kComStmtReset:
      co_return co_await stmt_reset(payload);
    case mysql::kComStmtFetch:
      co_return co_await stmt_fetch(payload);
    case mysql::kComSetOption:
      pinned_ = true;  // multi-statement mode lives on the server connection
      co_return co_await forward(payload, read_statement(), MyAnswer::Simple);
    case mysql::kComResetConnection:
      co_await reset_session_state();
      queue_ok();
      co_return co_await flush_client();
    default:
      queue_error(mysql::kErUnknownComError,
                  "Unknown command " + std::to_string(command) + " (not supported by shardgate)");
      co_return co_await flush_client();
  }
}

asio::awaitable<Result<void>> MySession::handle_query(std::string_view payload) {
  const std::string_view sql = payload.substr(1);
  const router::Statement stmt = router::analyze(sql, router::Dialect::Mysql, ctx_.analyze_options);
  cache_.note_statement(stmt);
  StatementFacts facts = inspect_statement(sql, stmt);
  if (facts.load_data_local) {
    queue_error(kErNotAllowedCommand,
                "LOAD DATA LOCAL INFILE is not relayed by shardgate: load the file on the server "
                "(LOAD DATA INFILE) or send the rows as INSERT statements");
    co_return co_await flush_client();
  }
  if (facts.kill) co_return co_await kill(*facts.kill);
  if (sharding_active(*ctx_.topology)) {
    if (auto answered = co_await shard_query(sql, stmt)) co_return *answered;
  }
  if (facts.pins) pinned_ = true;
  router::CachePlan cache_plan;
  if (auto key = cache_key_of(sql, stmt, cache_plan); key && answer_or_fill(cache_plan, *key))
    co_return co_await flush_client();
  restore_insert_id_ = facts.reads_insert_id;
  pending_ = std::move(facts.change);
  co_return co_await forward(payload, stmt, MyAnswer::Query);
}

asio::awaitable<Result<void>> MySession::forward(std::string_view payload,
                                                 const router::Statement& stmt, MyAnswer answer) {
  const bool restore_insert_id = std::exchange(restore_insert_id_, false);
  // A read that could not be sent to its replica (the pooled connection had
  // died) is sent once more, to whichever server the balancer picks next.
  for (int attempt = 0; attempt < 2; ++attempt) {
    bool fresh = false;
    // A BEGIN sent with this command cannot be sent again with a retry.
    const bool begins = deferred_begin_.has_value() && answer == MyAnswer::Query;
    if (!server_.conn) {
      auto a = co_await attach_for(stmt, answer == MyAnswer::Query);
      if (!a) {
        cache_.abandon_fill();
        pending_ = {};
        preparing_id_.reset();
        preparing_.reset();
        bump(worker_.metrics().proxy_errors_total);
        queue_error(mysql::kErUnknownError, a.error().message());
        co_return co_await flush_client();
      }
      fresh = true;
    } else if (router::writes_data(stmt)) {
      routing_.note_write();
    }
    retry_if_lost_ = attempt == 0 && fresh && !begins && answer == MyAnswer::Query && !pinned_ &&
                     server_.role == router::TargetRole::Replica && !router::writes_data(stmt);
    if (restore_insert_id) restore_last_insert_id();
    if (static_cast<std::uint8_t>(payload[0]) == mysql::kComInitDb)
      pending_ = SessionChange{SessionChange::Kind::Schema, std::string(payload.substr(1))};
    if (answer == MyAnswer::Query) journal_statement(payload.substr(1), stmt);
    std::uint8_t seq = 0;
    mysql::append_packets(to_server_, payload, seq);
    auto done = co_await send_and_relay(answer);
    if (!std::exchange(lost_quietly_, false)) co_return done;
  }
  co_return Result<void>{};
}

// Sends what is queued for the server (the client's command last), relays
// the answer and settles the session after it.
asio::awaitable<Result<void>> MySession::send_and_relay(MyAnswer answer) {
  tracker_.expect(answer, false);
  auto sent = co_await flush_server();
  if (!sent && std::exchange(retry_if_lost_, false)) {
    server_gone_before_send();
    co_return Result<void>{};
  }
  retry_if_lost_ = false;  // only ever for the one command forward() is sending
  if (!sent) {
    co_await server_lost(sent.error().message());
    co_return co_await flush_client();
  }
  auto relayed = co_await relay_until_answered();
  if (!relayed) co_return relayed;
  if (lost_quietly_) co_return Result<void>{};
  after_answer();
  co_return Result<void>{};
}

asio::awaitable<Result<void>> MySession::relay_until_answered() {
  for (;;) {
    if (!server_.conn) co_return Result<void>{};  // lost, and the client was told
    auto& sbuf = server_.conn->buffer();
    MyFeed fed = tracker_.feed(sbuf.readable());
    if (fed.protocol_error) {
      co_await server_lost("malformed answer from server: " + fed.error);
      co_return co_await flush_client();
    }
    if (fed.prepare_ok_at && preparing_id_) {
      // The client knows the statement by the proxy's id, never the server's.
      char* at = sbuf.unread() + *fed.prepare_ok_at + 1;
      for (int i = 0; i < 4; ++i) at[i] = static_cast<char>((*preparing_id_ >> (8 * i)) & 0xff);
    }
    if (fed.last_relayed_seq) seq_ = static_cast<std::uint8_t>(*fed.last_relayed_seq + 1);
    // The journal keeps a commit before the client can see its OK.
    if (auto gtid = tracker_.take_gtid()) {
      journal_commit(*gtid);
      // The commit's position, for read-your-writes (a GTID reported inside
      // an open transaction is an earlier one's).
      auto seq = replication::parse_gtid_seq(*gtid, 0);
      if (!tracker_.in_transaction() && seq && *seq && **seq)
        routing_.note_commit(server_shard_, **seq, std::move(*gtid));
    }
    relay_out_.clear();
    for (const auto& s : fed.relay)
      relay_out_.push_back(asio::buffer(sbuf.readable().data() + s.offset, s.length));
    if (cache_.filling())
      for (const auto& b : relay_out_)
        cache_.capture({static_cast<const char*>(b.data()), b.size()});
    // Writes this session made are visible once their transaction ended: the
    // cache forgets them before the client hears so.
    if (tracker_.idle()) cache_.round_done(in_client_transaction());
    if (!relay_out_.empty()) {
      auto [ec, n] = co_await asio::async_write(client_, relay_out_, use_result);
      (void)n;
      if (ec) co_return make_error("client gone: " + ec.message());
    }
    sbuf.consume(fed.consumed);
    if (tracker_.idle()) co_return Result<void>{};
    auto r = co_await net::read_more(server_.conn->socket(), sbuf);
    if (!r) {
      co_await server_lost(r.error().message());
      co_return co_await flush_client();
    }
  }
}

// KILL [QUERY | CONNECTION] id with a connection id this proxy gave out: the
// target session cancels its statement on its server (and, for CONNECTION,
// ends). Only the user that owns the target may kill it.
asio::awaitable<Result<void>> MySession::kill(const KillRequest& request) {
  if (!ctx_.cancels.cancel_owned(request.id, user_->name(), request.whole_connection)) {
    queue_error(kErNoSuchThread, "Unknown thread id: " + std::to_string(request.id));
    co_return co_await flush_client();
  }
  bump(worker_.metrics().cancel_requests_total);
  queue_ok();
  co_return co_await flush_client();
}

void MySession::cancel_running(bool whole_connection) {
  if (server_.conn) {
    asio::co_spawn(client_.get_executor(),
                   kill_on_server(server_.conn->backend_index(), server_.conn->connection_id()),
                   asio::detached);
  }
  if (whole_connection) {
    boost::system::error_code ignored;
    client_.socket().shutdown(asio::socket_base::shutdown_both, ignored);
    client_.cancel();
  }
}

// KILL QUERY on the server, over another connection of the same pool.
asio::awaitable<void> MySession::kill_on_server(std::uint32_t backend, std::uint32_t thread_id) {
  auto self = shared_from_this();
  auto& pool = pools_.get(worker_, backend, *user_, login_database_);
  auto lease = co_await pool.acquire();
  if (!lease) co_return;
  std::unique_ptr<Conn> c = std::move(*lease);
  std::string out;
  std::uint8_t seq = 0;
  mysql::append_packets(out, "\x03KILL QUERY " + std::to_string(thread_id), seq);
  auto w = co_await net::write_all(c->socket(), out);
  bool ok = false;
  if (w) {
    auto answer = co_await net::read_message(c->socket(), c->buffer(), 1 << 20);
    if (answer) {
      ok = c->buffer().readable().size() > 4 &&
           static_cast<std::uint8_t>(c->buffer().readable()[4]) == mysql::kOkHeader;
      c->buffer().consume(answer->size);
    }
  }
  pool.release(std::move(c), ok);
}

asio::awaitable<Result<void>> MySession::change_user(std::string_view payload) {
  auto request = mysql::parse_change_user(payload, capabilities_);
  if (!request) {
    queue_error(mysql::kErMalformedPacket,
                "malformed COM_CHANGE_USER: " + request.error().message());
    co_await flush_client();
    co_return make_error("malformed COM_CHANGE_USER");
  }
  // The greeting's nonce stays: clients (libmariadb) scramble for it even
  // after an AuthSwitchRequest, as MariaDB servers keep it for the connection.
  user_ = ctx_.find_user(request->username);
  std::string plugin = request->auth_plugin_name;
  if (plugin.empty()) plugin = std::string(auth::kMysqlNativePassword);
  const bool ok = co_await verify_password(plugin, request->auth_response);
  if (!ok) {
    queue_error(mysql::kErAccessDeniedError,
                "Access denied for user '" + request->username + "' (COM_CHANGE_USER)");
    co_await flush_client();
    co_return make_error("COM_CHANGE_USER refused");
  }
  co_await reset_session_state();
  pools_ = SessionPools<Conn>{};
  if (request->charset) charset_ = static_cast<std::uint8_t>(request->charset);
  pools_.variant = pool_variant();
  login_database_ = request->database;
  database_ = login_database_;
  queue_ok();
  co_return co_await flush_client();
}

}  // namespace shardgate::session
