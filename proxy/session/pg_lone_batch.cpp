// An extended-protocol batch whose one execution needs several shards (a
// merged read, a write split per shard): the proxy waits for the whole batch
// (up to its Sync) and takes it apart, since each shard runs it on its own.
// Only the shape those paths can answer is taken: one Parse at most, one
// Bind of the unnamed portal, a portal Describe at most, one Execute of all
// rows.
#include "proxy/net/pg_io.h"
#include "proxy/session/pg_session.h"

namespace shardgate::session {

asio::awaitable<Result<PgSession::LoneExecution>> PgSession::take_lone_execution() {
  auto sync_buffered = [this]() -> std::optional<std::size_t> {
    std::string_view rest = in_.readable();
    std::size_t at = 0;
    while (!rest.empty()) {
      auto d = pg::decode_frame(rest, max_message_size_);
      if (d.status != pg::DecodeStatus::Frame) return std::nullopt;
      at += d.frame.size;
      if (d.frame.type == 'S') return at;
      rest.remove_prefix(d.frame.size);
    }
    return std::nullopt;
  };
  std::optional<std::size_t> batch_size;
  while (!(batch_size = sync_buffered())) {
    if (in_.size() > max_message_size_) {
      co_await protocol_error("extended-protocol batch larger than max_message_size");
      co_return make_error("protocol error");
    }
    auto r = co_await net::read_more(client_, in_);
    if (!r) co_return r.error();
  }
  LoneExecution lone;
  ScatterExtended& ext = lone.ext;
  std::optional<std::string> parsed_query;  // this batch's Parse
  std::string parsed_types;
  int binds = 0, executes = 0;
  std::string& why = lone.refusal;
  std::string_view rest = in_.readable().substr(0, *batch_size);
  while (!rest.empty() && why.empty()) {
    const pg::Frame f = pg::decode_frame(rest, max_message_size_).frame;
    switch (f.type) {
      case 'P': {
        auto p = pg::parse_parse(f.body);
        if (!p) {
          why = "malformed Parse";
          break;
        }
        parsed_query = std::string(p->query);
        parsed_types = std::string(p->param_types);
        ext.parse_complete = true;
        if (!p->name.empty()) {  // the client may bind it again later
          PreparedStatement ps;
          ps.server_name = server_statement_name(p->query, p->param_types);
          ps.query = p->query;
          ps.param_types = p->param_types;
          ps.routing = analyze_parse(p->query);
          ps.routing.tables.clear();
          prepared_[std::string(p->name)] = std::move(ps);
        }
        break;
      }
      case 'B': {
        auto b = pg::parse_bind(f.body);
        ++binds;
        if (!b || !b->portal.empty()) {
          why = "a statement over several shards binds the unnamed portal only";
          break;
        }
        if (b->statement.empty() || !prepared_.count(b->statement)) {
          if (!parsed_query) {
            why = "the statement to bind is unknown";
            break;
          }
          lone.query = *parsed_query;
          ext.param_types = parsed_types;
        } else {
          const auto& ps = prepared_.find(b->statement)->second;
          lone.query = ps.query;
          ext.param_types = ps.param_types;
        }
        ext.bind_rest = std::string(b->rest);
        break;
      }
      case 'D': {
        auto d = pg::parse_describe_or_close(f.body);
        if (!d || d->kind != 'P') why = "a statement over several shards describes its portal only";
        ext.describe = true;
        break;
      }
      case 'E': {
        auto e = pg::parse_execute(f.body);
        ++executes;
        if (!e || e->max_rows != 0)
          why =
              "a statement over several shards returns all its rows at once (no row limit per "
              "Execute, no cursor)";
        break;
      }
      case 'S':
        break;
      default:
        why = "a statement over several shards must be one Parse, Bind, Describe, Execute and Sync";
    }
    rest.remove_prefix(f.size);
  }
  if (why.empty() && (binds != 1 || executes != 1))
    why = "a statement over several shards must be bound and executed once per batch";
  in_.consume(*batch_size);
  batch_routed_ = false;
  co_return lone;
}

}  // namespace shardgate::session
