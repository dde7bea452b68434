// Extended query protocol (Parse/Bind/Describe/Execute/Close/Flush/Sync,
// FunctionCall) and COPY FROM STDIN for a PostgreSQL client session.
//
// Named prepared statements survive transaction pooling: the proxy keeps the
// client's Parse, names it on servers after a hash of its text and parameter
// types (so equal statements of different clients share one server-side
// statement), and prepares it again on any server connection that lacks it.
#include <functional>

#include "proxy/net/pg_io.h"
#include "proxy/session/pg_session.h"
#include "router/classify.h"

namespace shardgate::session {

namespace {

std::string server_statement_name(std::string_view query, std::string_view types) {
  const std::size_t h1 = std::hash<std::string_view>{}(query);
  const std::size_t h2 = std::hash<std::string_view>{}(types);
  char name[64];
  std::snprintf(name, sizeof name, "sg_%016zx_%zx_%zu", h1, h2, query.size());
  return name;
}

}  // namespace

// Decides where an extended-protocol batch goes by looking at every message of
// it already received (up to Sync): one message that needs the primary sends
// the whole batch there.
router::TargetRole PgSession::route_batch(const pg::Frame& first) {
  std::optional<router::Statement> lead;
  bool needs_primary = false;
  std::string_view rest = in_.readable();
  (void)first;
  while (!rest.empty()) {
    auto d = pg::decode_frame(rest, max_message_size_);
    if (d.status != pg::DecodeStatus::Frame) break;
    const pg::Frame& f = d.frame;
    if (f.type == 'P') {
      if (auto p = pg::parse_parse(f.body)) {
        auto stmt = router::analyze(p->query, router::Dialect::Postgres, ctx_.analyze_options);
        needs_primary |= stmt.needs_primary;
        if (!lead) lead = stmt;
      }
    } else if (f.type == 'B') {
      if (auto b = pg::parse_bind(f.body)) {
        auto it = prepared_.find(std::string(b->statement));
        const bool primary = it == prepared_.end() || it->second.needs_primary;
        needs_primary |= primary;
        if (!lead) {
          router::Statement s;
          s.kind = primary ? router::StatementKind::Write : router::StatementKind::Read;
          s.needs_primary = primary;
          lead = s;
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
  const auto decision = router::route(stmt, prepare_view());
  batch_wrote_ = decision.role == router::TargetRole::Primary && stmt.needs_primary;
  if (lead && lead->kind == router::StatementKind::SessionSet) server_dirty_ = true;
  return decision.role;
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
  const bool needs_server = f.type == 'P' || f.type == 'B' || f.type == 'D' || f.type == 'E' ||
                            f.type == 'F';
  if (skip_until_sync_) {
    in_.consume(f.size);
    if (f.type != 'S') co_return Result<void>{};
    skip_until_sync_ = false;
    to_client_ += pg::ready_for_query('I');
    co_return co_await finish_round();
  }
  if (needs_server && !server_) {
    const auto role = f.type == 'F' ? router::TargetRole::Primary : route_batch(f);
    auto a = co_await attach(role);
    if (!a) {
      bump(worker_.metrics().proxy_errors_total);
      to_client_ += pg::error_response("08006", a.error().message());
      skip_until_sync_ = true;
      in_.consume(f.size);
      co_return co_await flush_client();
    }
  }
  const std::string_view raw(f.body.data() - 5, f.size);
  switch (f.type) {
    case 'P': {
      auto p = pg::parse_parse(f.body);
      if (!p) {
        co_await protocol_error("malformed Parse message");
        co_return make_error("protocol error");
      }
      PreparedStatement ps;
      ps.query = p->query;
      ps.param_types = p->param_types;
      ps.needs_primary = router::analyze(p->query, router::Dialect::Postgres, ctx_.analyze_options).needs_primary;
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
      prepared_[std::string(p->name)] = std::move(ps);
      break;
    }
    case 'B': {
      auto b = pg::parse_bind(f.body);
      if (!b) {
        co_await protocol_error("malformed Bind message");
        co_return make_error("protocol error");
      }
      auto it = b->statement.empty() ? prepared_.end() : prepared_.find(std::string(b->statement));
      if (it == prepared_.end()) {
        to_server_ += raw;  // unnamed, or unknown: the server answers for it
      } else {
        prepare_on_server(it->second);
        to_server_ += pg::bind_message(b->portal, it->second.server_name, b->rest);
      }
      tracker_.expect(Expect::Bind);
      break;
    }
    case 'D': {
      auto d = pg::parse_describe_or_close(f.body);
      if (!d) {
        co_await protocol_error("malformed Describe message");
        co_return make_error("protocol error");
      }
      auto it = d->kind == 'S' && !d->name.empty() ? prepared_.find(std::string(d->name)) : prepared_.end();
      if (it == prepared_.end()) {
        to_server_ += raw;
      } else {
        prepare_on_server(it->second);
        to_server_ += pg::describe_or_close_message('D', 'S', it->second.server_name);
      }
      tracker_.expect(Expect::Describe);
      break;
    }
    case 'E':
      to_server_ += raw;
      tracker_.expect(Expect::Execute);
      break;
    case 'C': {
      auto c = pg::parse_describe_or_close(f.body);
      if (!c) {
        co_await protocol_error("malformed Close message");
        co_return make_error("protocol error");
      }
      if (c->kind == 'S' && !c->name.empty()) {
        // Other clients may share the server-side statement: close it only for this client.
        prepared_.erase(std::string(c->name));
        tracker_.expect(Expect::EmitCloseComplete);
      } else if (server_) {
        to_server_ += raw;
        tracker_.expect(Expect::Close);
      } else {
        tracker_.expect(Expect::EmitCloseComplete);
      }
      break;
    }
    case 'H':
      if (server_) to_server_ += raw;
      break;
    case 'S':
      in_.consume(f.size);
      if (!server_) {
        std::vector<Segment> synthetic;
        tracker_.emit_ready(synthetic);
        for (auto& s : synthetic) to_client_ += s.synthetic;
        to_client_ += pg::ready_for_query('I');
        co_return co_await flush_client();
      }
      to_server_ += raw;
      tracker_.expect(Expect::Sync);
      co_return co_await finish_round();
    case 'F':
      batch_wrote_ = true;
      to_server_ += raw;
      tracker_.expect(Expect::Query);
      in_.consume(f.size);
      co_return co_await finish_round();
  }
  in_.consume(f.size);
  co_return Result<void>{};
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
        co_await protocol_error("unexpected message type '" + std::string(1, f.type) + "' during COPY from stdin");
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
