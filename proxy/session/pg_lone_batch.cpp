// An extended-protocol batch whose one execution needs several shards (a
// merged read, a write split per shard): the proxy waits for the whole batch
// (up to its Sync) and takes it apart, since each shard runs it on its own.
// Only the shape those paths can answer is taken: one Parse at most, one
// Bind of the unnamed portal, a portal Describe at most, one Execute of all
// rows; a BEGIN before it is answered by the proxy (begin_lone_batch).
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
  // The executions of the batch in order, each with what the client asked
  // for it (its Parse's ParseComplete, a Describe).
  struct Execution {
    std::string query;
    ScatterExtended ext;
    bool bound = false;
  };
  std::vector<Execution> executions;
  Execution current;
  std::optional<std::string> parsed_query;  // the batch's last Parse
  std::string parsed_types;
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
        current.ext.parse_complete = true;
        if (!p->name.empty()) {  // the client may bind it again later
          PreparedStatement ps;
          ps.server_name = server_statement_name(p->query, p->param_types);
          ps.query = p->query;
          ps.param_types = p->param_types;
          ps.routing = analyze_parse(p->query);
          ps.routing.tables.clear();
          prepared_.put(p->name, std::move(ps));
        }
        break;
      }
      case 'B': {
        auto b = pg::parse_bind(f.body);
        if (!b || !b->portal.empty() || current.bound) {
          why = "a statement over several shards binds the unnamed portal only, once";
          break;
        }
        const PreparedStatement* ps = b->statement.empty() ? nullptr : prepared_.find(b->statement);
        if (!ps) {
          if (!parsed_query) {
            why = "the statement to bind is unknown";
            break;
          }
          current.query = *parsed_query;
          current.ext.param_types = parsed_types;
        } else {
          current.query = ps->query;
          current.ext.param_types = ps->param_types;
        }
        current.ext.bind_rest = std::string(b->rest);
        current.bound = true;
        break;
      }
      case 'D': {
        auto d = pg::parse_describe_or_close(f.body);
        if (!d || d->kind != 'P') why = "a statement over several shards describes its portal only";
        current.ext.describe = true;
        break;
      }
      case 'E': {
        auto e = pg::parse_execute(f.body);
        if (!e || e->max_rows != 0 || !current.bound) {
          why =
              "a statement over several shards is bound, then returns all its rows at once (no "
              "row limit per Execute, no cursor)";
          break;
        }
        executions.push_back(std::move(current));
        current = Execution{};
        break;
      }
      case 'S':
        break;
      default:
        why = "a statement over several shards must be one Parse, Bind, Describe, Execute and Sync";
    }
    rest.remove_prefix(f.size);
  }
  // A BEGIN may lead (JDBC sends it with the transaction's first statement).
  if (why.empty() && executions.size() == 2) {
    const router::Statement& first = analyze_parse(executions[0].query);
    if (first.kind == router::StatementKind::Begin && !first.multi_statement) {
      lone.begin.emplace();
      lone.begin->query = std::move(executions[0].query);
      lone.begin->parse_complete = executions[0].ext.parse_complete;
      lone.begin->describe = executions[0].ext.describe;
      executions.erase(executions.begin());
    }
  }
  if (why.empty() && (executions.size() != 1 || current.bound || current.ext.parse_complete))
    why =
        "a statement over several shards must be bound and executed once per batch (after a "
        "BEGIN at most)";
  if (why.empty()) {
    lone.query = std::move(executions[0].query);
    lone.ext = std::move(executions[0].ext);
  }
  in_.consume(*batch_size);
  batch_routed_ = false;
  co_return lone;
}

// The BEGIN that led the batch opens the client's transaction in the proxy,
// as a BEGIN sent alone would (shard_query), and is answered first.
void PgSession::begin_lone_batch(const LoneExecution& lone) {
  if (!lone.begin) return;
  if (lone.begin->parse_complete) to_client_ += pg::simple_message('1');
  to_client_ += pg::simple_message('2');
  if (lone.begin->describe) to_client_ += pg::simple_message('n');
  to_client_ += pg::command_complete("BEGIN");
  // Inside a transaction the server would only warn: it goes on.
  if (!in_client_transaction()) defer_begin(lone.begin->query, analyze_parse(lone.begin->query));
}

}  // namespace shardgate::session
