// Prepared statements of a MySQL client under multiplexing. The client knows
// its statements by ids the proxy gives out; each server connection keeps its
// own prepared copies by statement text (shared by every client that prepares
// the same text) and at most pool.max_prepared_statements of them, so a busy
// pool never runs the server out of max_prepared_stmt_count. A statement is
// prepared again on whichever connection executes it, with the parameter types
// the client bound last.
#include "proxy/net/my_io.h"
#include "proxy/protocol/mysql/messages.h"
#include "proxy/reshard/reshard_gate.h"
#include "proxy/session/my_session.h"
#include "proxy/session/shard_choice.h"
#include "router/classify.h"

namespace shardgate::session {

namespace {

// A command that carries a statement id, with the server's id in place of the client's.
std::string with_statement_id(std::string_view payload, std::uint32_t id) {
  std::string out(payload);
  (void)mysql::rewrite_stmt_id(out, id);  // payload is at least 5 bytes: checked by the caller
  return out;
}

void append_command(std::string& out, std::string_view payload) {
  std::uint8_t seq = 0;
  mysql::append_packets(out, payload, seq);
}

// COM_STMT_EXECUTE with the parameter types bound (new-params-bound = 1)
// where the client relied on types a previous execution sent elsewhere.
std::string with_types(std::string_view payload, std::uint16_t num_params, std::string_view types) {
  const std::size_t head = 10 + (num_params + 7) / 8;  // command, id, flags, iterations, bitmap
  std::string out(payload.substr(0, head));
  out.push_back('\x01');
  out.append(types);
  out.append(payload.substr(head + 1));
  return out;
}

// The raw two bytes per parameter that a COM_STMT_EXECUTE binds.
std::string raw_types(const std::vector<mysql::BinaryType>& types) {
  std::string out;
  for (const auto& t : types) {
    out.push_back(static_cast<char>(t.type));
    out.push_back(static_cast<char>(t.is_unsigned ? 0x80 : 0x00));
  }
  return out;
}

}  // namespace

asio::awaitable<Result<void>> MySession::stmt_prepare(std::string_view payload) {
  MyClientStatement st;
  st.query = std::string(payload.substr(1));
  st.routing = router::analyze(st.query, router::Dialect::Mysql, ctx_.analyze_options);
  st.reads_insert_id = reads_last_insert_id(st.query);
  preparing_id_ = next_statement_id_++;
  preparing_ = std::move(st);
  // Preparing runs nothing: any server can answer with the metadata.
  co_return co_await forward(payload, read_statement(), MyAnswer::Prepare);
}

// Called from after_answer, while the connection that answered is attached.
void MySession::finish_prepare(bool failed) {
  auto ok = tracker_.take_prepared();
  if (!failed && ok && preparing_ && server_.conn) {
    preparing_->num_params = ok->num_params;
    preparing_->num_columns = ok->num_columns;
    remember_prepared(preparing_->query, *ok);
    statements_[*preparing_id_] = std::move(*preparing_);
  }
  preparing_id_.reset();
  preparing_.reset();
}

// Records a statement the server prepared on the attached connection; one it
// already had (another client prepared the same text) is closed again, and
// beyond the limit the least recently used one goes.
void MySession::remember_prepared(const std::string& query, const mysql::StmtPrepareOk& ok) {
  Conn& c = *server_.conn;
  std::string closes;
  auto close = [&closes](std::uint32_t id) {
    std::string payload(1, static_cast<char>(mysql::kComStmtClose));
    for (int i = 0; i < 4; ++i) payload.push_back(static_cast<char>((id >> (8 * i)) & 0xff));
    append_command(closes, payload);
  };
  auto it = c.prepared.find(query);
  if (it != c.prepared.end()) {
    close(ok.statement_id);
    it->second.last_used = ++c.use_clock;
  } else {
    if (c.prepared.size() >= ctx_.config->pool().max_prepared_statements()) {
      auto oldest = c.prepared.begin();
      for (auto i = c.prepared.begin(); i != c.prepared.end(); ++i)
        if (i->second.last_used < oldest->second.last_used) oldest = i;
      close(oldest->second.id);
      c.prepared.erase(oldest);
    }
    backend::MyServerStatement s;
    s.id = ok.statement_id;
    s.num_params = ok.num_params;
    s.num_columns = ok.num_columns;
    s.last_used = ++c.use_clock;
    c.prepared.emplace(query, s);
  }
  if (!closes.empty()) {
    // COM_STMT_CLOSE has no answer; a few bytes fit the socket buffer at once.
    boost::system::error_code ec;
    asio::write(c.socket(), asio::buffer(closes), ec);
    if (ec) server_broken_ = true;
  }
}

asio::awaitable<Result<backend::MyServerStatement*>> MySession::ensure_prepared(
    const MyClientStatement& st) {
  Conn& c = *server_.conn;
  auto it = c.prepared.find(st.query);
  if (it != c.prepared.end()) {
    it->second.last_used = ++c.use_clock;
    co_return &it->second;
  }
  std::string payload(1, static_cast<char>(mysql::kComStmtPrepare));
  payload += st.query;
  append_command(to_server_, payload);
  tracker_.expect(MyAnswer::Prepare, true);
  auto sent = co_await flush_server();
  if (!sent) {
    co_await server_lost(sent.error().message());
    co_return make_error("lost");
  }
  auto relayed = co_await relay_until_answered();
  if (!relayed) co_return relayed.error();
  if (!server_.conn) co_return make_error("lost");
  auto ok = tracker_.take_prepared();
  auto err = tracker_.take_swallowed_error();
  if (!ok || err) {
    queue_error(mysql::kErUnknownStmtHandler, "preparing the statement again on server " +
                                                  ctx_.topology->backends[c.backend_index()].name +
                                                  " failed: " + err.value_or("no answer"));
    co_return make_error("prepare failed");
  }
  remember_prepared(st.query, *ok);
  co_return &c.prepared.at(st.query);
}

asio::awaitable<Result<void>> MySession::stmt_execute(std::string_view payload) {
  auto id = mysql::statement_id_of(payload);
  auto found = id ? statements_.find(*id) : statements_.end();
  if (found == statements_.end()) {
    queue_error(mysql::kErUnknownStmtHandler, "Unknown prepared statement handler (" +
                                                  (id ? std::to_string(*id) : "?") +
                                                  ") given to mysqld_stmt_execute");
    co_return co_await flush_client();
  }
  MyClientStatement& st = found->second;
  auto exec = mysql::parse_stmt_execute(payload, st.num_params);
  if (!exec) {
    queue_error(mysql::kErMalformedPacket, "malformed COM_STMT_EXECUTE: " + exec.error().message());
    co_return co_await flush_client();
  }
  if (exec->new_params_bound) st.param_types = raw_types(exec->param_types);
  cache_.note_statement(st.routing);
  if (exec->flags != 0) pinned_ = true;  // a cursor: its rows stay on that server
  if (sharding_active(*ctx_.topology)) {
    begin_implicitly(st.routing);
    auto route = shard_execute(st, *exec);
    while (route && *route == ExecuteRoute::Retry) {
      co_await wait_out_cutover(ctx_.reshard);  // then routed by the topology it published
      route = shard_execute(st, *exec);
    }
    if (!route) {
      bump(worker_.metrics().statements_refused_total);
      st.long_data.clear();
      queue_error(mysql::kErNotSupportedYet, route.error().message());
      co_return co_await flush_client();
    }
    if (*route == ExecuteRoute::Several) {
      if (auto answered = co_await execute_across_shards(st, *exec)) co_return *answered;
    }
  }
  router::CachePlan cache_plan;
  if (auto key = execute_cache_key(st, *exec, payload, cache_plan);
      key && answer_or_fill(cache_plan, *key))
    co_return co_await flush_client();
  if (!server_.conn) {
    auto a = co_await attach_for(st.routing, true);
    if (!a) {
      cache_.abandon_fill();
      bump(worker_.metrics().proxy_errors_total);
      queue_error(mysql::kErUnknownError, a.error().message());
      co_return co_await flush_client();
    }
  } else if (router::writes_data(st.routing)) {
    routing_.note_write();
  }
  auto server_stmt = co_await ensure_prepared(st);
  if (!server_stmt) {
    cache_.abandon_fill();
    if (server_.conn) after_answer();
    co_return co_await flush_client();
  }
  backend::MyServerStatement& ss = **server_stmt;
  journal_execute(st, *exec);
  std::string out = with_statement_id(payload, ss.id);
  if (!exec->new_params_bound && st.num_params > 0 && !ss.types_sent && !st.param_types.empty())
    out = with_types(out, st.num_params, st.param_types);
  ss.types_sent = ss.types_sent || exec->new_params_bound || !st.param_types.empty();
  for (const std::string& chunk : st.long_data)
    append_command(to_server_, with_statement_id(chunk, ss.id));
  st.long_data.clear();
  if (st.reads_insert_id) restore_last_insert_id();
  append_command(to_server_, out);
  co_return co_await send_and_relay(MyAnswer::Query);
}

void MySession::stmt_send_long_data(std::string_view payload) {
  auto id = mysql::statement_id_of(payload);
  if (!id) return;
  auto it = statements_.find(*id);
  // The command has no answer, not even for an unknown statement.
  if (it != statements_.end()) it->second.long_data.emplace_back(payload);
}

void MySession::stmt_close(std::string_view payload) {
  auto id = mysql::statement_id_of(payload);
  if (id) statements_.erase(*id);
}

asio::awaitable<Result<void>> MySession::stmt_reset(std::string_view payload) {
  auto id = mysql::statement_id_of(payload);
  auto it = id ? statements_.find(*id) : statements_.end();
  if (it == statements_.end()) {
    queue_error(mysql::kErUnknownStmtHandler, "Unknown prepared statement handler (" +
                                                  (id ? std::to_string(*id) : "?") +
                                                  ") given to mysqld_stmt_reset");
    co_return co_await flush_client();
  }
  it->second.long_data.clear();
  // An open cursor lives on the pinned connection: the server resets it there.
  if (server_.conn) {
    auto ss = server_.conn->prepared.find(it->second.query);
    if (ss != server_.conn->prepared.end())
      co_return co_await forward(with_statement_id(payload, ss->second.id), read_statement(),
                                 MyAnswer::Simple);
  }
  queue_ok();
  co_return co_await flush_client();
}

asio::awaitable<Result<void>> MySession::stmt_fetch(std::string_view payload) {
  // A cursor lives on the connection the session is pinned to.
  auto id = mysql::statement_id_of(payload);
  auto it = id ? statements_.find(*id) : statements_.end();
  if (it != statements_.end() && server_.conn) {
    auto ss = server_.conn->prepared.find(it->second.query);
    if (ss != server_.conn->prepared.end())
      co_return co_await forward(with_statement_id(payload, ss->second.id), read_statement(),
                                 MyAnswer::Fetch);
  }
  queue_error(
      mysql::kErUnknownStmtHandler,
      "no open cursor for statement " + (id ? std::to_string(*id) : "?") + " (COM_STMT_FETCH)");
  co_return co_await flush_client();
}

}  // namespace shardgate::session
