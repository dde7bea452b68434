// Extended query protocol (Parse/Bind/Describe/Execute/Close/Flush/Sync,
// FunctionCall) and COPY FROM STDIN for a PostgreSQL client session.
//
// Named prepared statements survive transaction pooling: the proxy keeps the
// client's Parse, names it on servers after a hash of its text and parameter
// types (so equal statements of different clients share one server-side
// statement), and prepares it again on any server connection that lacks it.
#include <cctype>
#include <functional>

#include "proxy/net/pg_io.h"
#include "proxy/reshard/reshard_gate.h"
#include "proxy/session/pg_session.h"
#include "proxy/session/shard_choice.h"
#include "router/classify.h"

namespace shardgate::session {

namespace {

// What routing needs of a statement: everything but the table names, so that
// remembering it per prepared statement allocates nothing.
router::Statement routing_facts(const router::Statement& s) {
  router::Statement r;
  r.kind = s.kind;
  r.needs_primary = s.needs_primary;
  r.locking_read = s.locking_read;
  r.writes_in_function = s.writes_in_function;
  r.read_only_txn = s.read_only_txn;
  r.multi_statement = s.multi_statement;
  r.hints = s.hints;
  return r;
}

// DEALLOCATE [PREPARE] name | ALL: the target name, "" for ALL, nullopt when
// the text is something else.
std::optional<std::string> deallocate_target(std::string_view sql) {
  auto word = [&sql]() -> std::string {
    while (!sql.empty() && std::isspace(static_cast<unsigned char>(sql.front())))
      sql.remove_prefix(1);
    std::size_t n = 0;
    if (!sql.empty() && sql.front() == '"') {
      const auto close = sql.find('"', 1);
      if (close == std::string_view::npos) return {};
      std::string quoted(sql.substr(1, close - 1));
      sql.remove_prefix(close + 1);
      return quoted;
    }
    while (n < sql.size() && (std::isalnum(static_cast<unsigned char>(sql[n])) || sql[n] == '_'))
      ++n;
    std::string w(sql.substr(0, n));
    sql.remove_prefix(n);
    for (char& c : w) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return w;
  };
  if (word() != "deallocate") return std::nullopt;
  std::string name = word();
  if (name == "prepare") name = word();
  while (!sql.empty() &&
         (std::isspace(static_cast<unsigned char>(sql.front())) || sql.front() == ';'))
    sql.remove_prefix(1);
  if (name.empty() || !sql.empty()) return std::nullopt;
  return name == "all" ? std::string() : name;
}

}  // namespace

std::string server_statement_name(std::string_view query, std::string_view types) {
  const std::size_t h1 = std::hash<std::string_view>{}(query);
  const std::size_t h2 = std::hash<std::string_view>{}(types);
  char name[64];
  std::snprintf(name, sizeof name, "sg_%016zx_%zx_%zu", h1, h2, query.size());
  return name;
}

// In transaction pooling the server-side statements are shared by every client
// whose statements hash alike, so a client's DEALLOCATE (by name or ALL) ends
// only its own names and is answered by the proxy. Names the proxy does not
// know (SQL-level PREPARE) go to the server; in session pooling so does ALL.
asio::awaitable<std::optional<Result<void>>> PgSession::deallocate_locally(const pg::Frame& f,
                                                                           std::string_view sql) {
  const auto target = deallocate_target(sql);
  if (!target) co_return std::nullopt;
  const bool session_mode = user_->pool_mode() == config::PoolMode::SESSION;
  if (target->empty()) {
    prepared_.clear();
    if (session_mode) {
      if (server_) server_->prepared.clear();  // the server drops them all too
      co_return std::nullopt;
    }
  } else if (!prepared_.erase(*target)) {
    co_return std::nullopt;
  }
  in_.consume(f.size);
  pg::Encoder e;
  e.begin('C').cstr(target->empty() ? "DEALLOCATE ALL" : "DEALLOCATE").end();
  to_client_ += e.take();
  to_client_ += pg::ready_for_query(server_ ? tracker_.transaction_status() : 'I');
  co_return co_await flush_client();
}

// Decides where an extended-protocol batch goes by looking at every message of
// it already received (up to Sync): one message that needs the primary sends
// the whole batch there.
router::TargetRole PgSession::route_batch() {
  std::optional<router::Statement> lead;
  bool needs_primary = false;
  std::string_view rest = in_.readable();
  while (!rest.empty()) {
    auto d = pg::decode_frame(rest, max_message_size_);
    if (d.status != pg::DecodeStatus::Frame) break;
    const pg::Frame& f = d.frame;
    if (f.type == 'P') {
      if (auto p = pg::parse_parse(f.body)) {
        const auto& stmt = analyze_parse(p->query);
        needs_primary |= stmt.needs_primary;
        if (!lead) lead = routing_facts(stmt);
      }
    } else if (f.type == 'B') {
      if (auto b = pg::parse_bind(f.body)) {
        const PreparedStatement* ps = prepared_.find(b->statement);
        if (!ps) {
          needs_primary = true;  // unknown to the proxy: never guess a replica
        } else {
          needs_primary |= ps->routing.needs_primary;
          if (!lead) lead = ps->routing;
        }
      }
    } else if (f.type == 'F') {
      needs_primary = true;
    }
    if (f.type == 'S') break;
    rest.remove_prefix(f.size);
  }
  router::Statement stmt = lead.value_or(router::Statement{});
  if (needs_primary && stmt.kind == router::StatementKind::Read) {
    stmt.kind = router::StatementKind::Write;
    stmt.needs_primary = true;
  }
  if (lead && lead->kind == router::StatementKind::SessionSet) server_dirty_ = true;
  return decide(stmt);
}

const router::Statement& PgSession::analyze_parse(std::string_view query) {
  if (!last_parse_) last_parse_ = std::make_unique<ParseMemo>();
  if (query != last_parse_->query) {
    last_parse_->stmt = router::analyze(query, router::Dialect::Postgres, ctx_.analyze_options);
    last_parse_->query.assign(query);
  }
  return last_parse_->stmt;
}

// Makes sure the attached server has the statement; returns false if a Parse
// had to be injected (its ParseComplete is swallowed).
bool PgSession::prepare_on_server(const PreparedStatement& ps) {
  if (server_->prepared.count(ps.server_name)) return true;
  to_server_ += pg::parse_message(ps.server_name, ps.query, ps.param_types);
  server_->prepared.insert(ps.server_name);
  tracker_.expect(Expect::SwallowParse);
  bump(worker_.metrics().prepared_statement_replays_total);
  return false;
}

asio::awaitable<Result<void>> PgSession::handle_extended(const pg::Frame& f) {
  const bool needs_server =
      f.type == 'P' || f.type == 'B' || f.type == 'D' || f.type == 'E' || f.type == 'F';
  if (skip_until_sync_) {
    in_.consume(f.size);
    if (f.type != 'S') co_return Result<void>{};
    skip_until_sync_ = false;
    batch_routed_ = false;
    if (pending_raise_) {
      std::string sql = std::move(*pending_raise_);
      pending_raise_.reset();
      co_return co_await raise_on_server(std::move(sql));
    }
    to_client_ += pg::ready_for_query(in_client_transaction() ? 'E' : 'I');
    co_return co_await finish_round();
  }
  if (ending_batch_) co_return co_await end_batch_across_shards(f);
  if (needs_server && !batch_routed_ && sharding_active(*ctx_.topology)) {
    batch_routed_ = true;
    BatchFacts facts;
    auto chosen = batch_shard(facts);
    while (facts.wait_for_cutover) {
      co_await wait_out_cutover(ctx_.reshard);  // then routed by the topology it published
      chosen = batch_shard(facts);
    }
    if (chosen && !facts.several.empty() && !(server_ && tracker_.transaction_status() == 'E'))
      co_return co_await scatter_batch(facts.several);
    if (chosen && facts.several_writes) {
      // A failed transaction answers every statement itself (25P02).
      if (!(server_ && tracker_.transaction_status() == 'E')) co_return co_await fanout_batch();
      chosen = std::optional<std::uint32_t>();
    }
    if (chosen && !parked_.empty() && (facts.ends || facts.savepoint)) {
      if (facts.ends && facts.statements == 1) {
        ending_batch_ = true;
        batch_end_commits_ = facts.commits;
        co_return co_await end_batch_across_shards(f);
      }
      chosen = make_error(
          facts.ends ? "in a transaction over several shards, send COMMIT or ROLLBACK in a batch "
                       "of its own"
                     : "savepoints cannot span shards, and this transaction runs on several");
    }
    Result<void> settled =
        chosen ? settle_shard(*chosen, facts.writes, facts.ends) : Result<void>(chosen.error());
    if (settled && facts.savepoint && in_client_transaction()) savepoint_set_ = true;
    if (!settled) {
      skip_until_sync_ = true;
      auto refused = co_await refuse_round("0A000", settled.error().message(), false);
      if (!refused) co_return refused;
      co_return co_await handle_extended(f);  // consumes it (and runs the Sync if it is one)
    }
  }
  if (needs_server && !server_ && f.type == 'B') {
    if (auto answered = co_await answer_batch_from_cache()) co_return *answered;
  }
  if (needs_server && !server_) {
    const auto role = f.type == 'F'     ? router::TargetRole::Primary
                      : deferred_begin_ ? decide(deferred_begin_->stmt)
                                        : route_batch();
    auto a = co_await attach(role);
    if (!a) {
      cache_.abandon_fill();
      bump(worker_.metrics().proxy_errors_total);
      to_client_ += pg::error_response(
          "08006", a.error().message() +
                       (parked_.empty() ? "" : ": the transaction is rolled back; start it again"));
      deferred_begin_.reset();
      abandon_parked();
      transaction_over();
      skip_until_sync_ = true;
      in_.consume(f.size);
      co_return co_await flush_client();
    }
    begin_deferred_transaction();
  }
  const std::string_view raw(f.body.data() - 5, f.size);
  if (f.type == 'S' || f.type == 'F') {
    batch_routed_ = false;
    in_.consume(f.size);
    if (!server_) {  // a batch the proxy answered alone (Close only, say)
      std::vector<Segment> synthetic;
      tracker_.emit_ready(synthetic);
      for (auto& s : synthetic) to_client_ += s.synthetic;
      to_client_ += pg::ready_for_query('I');
      co_return co_await flush_client();
    }
    if (f.type == 'F') routing_.note_write();
    if (f.type == 'S') journal_sync();
    to_server_ += raw;
    tracker_.expect(f.type == 'S' ? Expect::Sync : Expect::Query);
    co_return co_await finish_round();
  }
  if (!stage_extended(f.type, f.body, raw)) {
    static constexpr std::pair<char, const char*> kNames[] = {
        {'P', "Parse"}, {'B', "Bind"}, {'D', "Describe"}, {'C', "Close"}};
    const char* name = "extended-protocol";
    for (const auto& [type, n] : kNames)
      if (type == f.type) name = n;
    co_await protocol_error(std::string("malformed ") + name + " message");
    co_return make_error("protocol error");
  }
  in_.consume(f.size);
  co_return Result<void>{};
}

// Stages one Parse/Bind/Describe/Execute/Close/Flush for the attached server,
// or answers it in the proxy's name; false when the message is malformed.
bool PgSession::stage_extended(char type, std::string_view body, std::string_view raw) {
  switch (type) {
    case 'P':
      return stage_parse(body, raw);
    case 'B': {
      auto b = pg::parse_bind(body);
      if (!b) return false;
      const PreparedStatement* ps = b->statement.empty() ? nullptr : prepared_.find(b->statement);
      if (ctx_.journal) {
        const PreparedStatement* known = ps                     ? ps
                                         : b->statement.empty() ? prepared_.find("")
                                                                : nullptr;
        if (known) {
          journal_bind(known->query, known->param_types, known->routing, b->rest);
        } else {
          journal_bind({}, {}, router::Statement{}, {});  // unknown: may write, not replayable
        }
      }
      if (!ps) {
        to_server_ += raw;  // unnamed, or unknown: the server answers for it
      } else {
        if (router::writes_data(ps->routing))  // each execution writes again
          cache_.note_write(ps->written_tables);
        prepare_on_server(*ps);
        to_server_ += pg::bind_message(b->portal, ps->server_name, b->rest);
      }
      tracker_.expect(Expect::Bind);
      return true;
    }
    case 'D': {
      auto d = pg::parse_describe_or_close(body);
      if (!d) return false;
      const PreparedStatement* ps =
          d->kind == 'S' && !d->name.empty() ? prepared_.find(d->name) : nullptr;
      if (!ps) {
        to_server_ += raw;
      } else {
        prepare_on_server(*ps);
        to_server_ += pg::describe_or_close_message('D', 'S', ps->server_name);
      }
      tracker_.expect(Expect::Describe);
      return true;
    }
    case 'C':
      return stage_close(body, raw);
    case 'E':
      to_server_ += raw;
      tracker_.expect(Expect::Execute);
      return true;
    case 'H':
      if (server_) to_server_ += raw;
      return true;
    default:
      return false;
  }
}

bool PgSession::stage_parse(std::string_view body, std::string_view raw) {
  auto p = pg::parse_parse(body);
  if (!p) return false;
  PreparedStatement ps;
  ps.query = p->query;
  ps.param_types = p->param_types;
  const router::Statement& stmt = analyze_parse(p->query);
  ps.routing = routing_facts(stmt);
  cache_.note_statement(stmt);
  if (cache_.enabled() && router::writes_data(stmt)) ps.written_tables = stmt.tables;
  if (p->name.empty()) {
    to_server_ += raw;
    tracker_.expect(Expect::Parse);
  } else {
    ps.server_name = server_statement_name(p->query, p->param_types);
    if (server_->prepared.count(ps.server_name)) {
      tracker_.expect(Expect::EmitParseComplete);
    } else {
      to_server_ += pg::parse_message(ps.server_name, ps.query, ps.param_types);
      server_->prepared.insert(ps.server_name);
      tracker_.expect(Expect::Parse);
    }
  }
  prepared_.put(p->name, std::move(ps));
  return true;
}

bool PgSession::stage_close(std::string_view body, std::string_view raw) {
  auto c = pg::parse_describe_or_close(body);
  if (!c) return false;
  if (c->kind == 'S' && !c->name.empty()) {
    // Other clients may share the server-side statement: close it only for this client.
    prepared_.erase(c->name);
    tracker_.expect(Expect::EmitCloseComplete);
  } else if (server_) {
    to_server_ += raw;
    tracker_.expect(Expect::Close);
  } else {
    tracker_.expect(Expect::EmitCloseComplete);
  }
  return true;
}

// COPY FROM STDIN: client CopyData flows to the server until CopyDone or
// CopyFail. Flush and Sync are passed on (the server ignores them in copy mode).
asio::awaitable<Result<void>> PgSession::copy_in() {
  for (;;) {
    bool done = false;
    for (;;) {
      auto d = pg::decode_frame(in_.readable(), max_message_size_);
      if (d.status == pg::DecodeStatus::Error) {
        co_await protocol_error("invalid message during COPY: " + d.error);
        co_return make_error("protocol error");
      }
      if (d.status == pg::DecodeStatus::NeedMore) break;
      const pg::Frame& f = d.frame;
      if (f.type != 'd' && f.type != 'c' && f.type != 'f' && f.type != 'H' && f.type != 'S') {
        co_await protocol_error("unexpected message type '" + std::string(1, f.type) +
                                "' during COPY from stdin");
        co_return make_error("protocol error");
      }
      to_server_.append(f.body.data() - 5, f.size);
      in_.consume(f.size);
      if (f.type == 'c' || f.type == 'f') {
        done = true;
        break;
      }
    }
    auto w = co_await flush_server();
    if (!w) co_return w;
    if (done) co_return Result<void>{};
    auto r = co_await net::read_more(client_, in_);
    if (!r) co_return r;
  }
}

}  // namespace shardgate::session
