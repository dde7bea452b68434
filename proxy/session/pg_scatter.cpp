// A PostgreSQL read that needs several shards (scatter-gather): the plan's
// text goes to one server connection per shard at once, and the rows come
// back through the router's Merger, which says which shard to read next, so
// memory stays bounded by the plan (one row per shard for ORDER BY). The
// client sees one ordinary result: RowDescription, DataRows, SELECT n.
//
// A simple Query, or an extended batch with one Bind and Execute of a read
// whose results are text (scatter_batch). Outside a transaction it leases one
// connection per shard; inside one it runs on the transaction's legs
// (pg_legs.cpp), opening those it lacks. A server error on any shard is the
// client's error, after every shard has answered.
#include "proxy/net/pg_io.h"
#include "proxy/session/pg_session.h"
#include "proxy/session/server_attach.h"
#include "router/merge_plan.h"
#include "router/merger.h"

namespace shardgate::session {

namespace {

// How the merger compares a column, by PostgreSQL type OID.
router::ValueKind kind_of(std::uint32_t oid) {
  switch (oid) {
    case 20:  // int8
    case 21:  // int2
    case 23:  // int4
    case 26:  // oid
      return router::ValueKind::Integer;
    case 700:   // float4
    case 701:   // float8
    case 1700:  // numeric
      return router::ValueKind::Number;
    default:
      return router::ValueKind::Text;
  }
}

// Reads the connection's next message into `frame` (valid until consumed);
// false when the connection failed or spoke nonsense.
asio::awaitable<bool> read_frame(backend::PgServerConnection& conn, std::uint32_t max_size,
                                 pg::Frame& frame) {
  for (;;) {
    auto d = pg::decode_frame(conn.buffer().readable(), max_size);
    if (d.status == pg::DecodeStatus::Frame) {
      frame = d.frame;
      co_return true;
    }
    if (d.status == pg::DecodeStatus::Error) co_return false;
    auto r = co_await net::read_more(conn.socket(), conn.buffer());
    if (!r) co_return false;
  }
}

struct ShardStream {
  Attachment<backend::PgServerConnection> owned;  // leased for this read alone
  backend::PgServerConnection* conn = nullptr;    // owned's, or a transaction leg's
  std::uint32_t shard = 0;
  char status = 'I';       // its ReadyForQuery's transaction status
  int swallow = 0;         // answers to settings replays, not the client's
  bool rows_over = false;  // CommandComplete (or an error) seen
  bool ready = false;      // its ReadyForQuery seen: the connection is free
  bool broken = false;     // the connection failed: close it
};

}  // namespace

asio::awaitable<Result<void>> PgSession::scatter_query(std::string sql,
                                                       const router::Statement& stmt,
                                                       const std::vector<std::uint32_t>& shards,
                                                       const ScatterExtended* extended) {
  const auto started = std::chrono::steady_clock::now();
  auto plan = router::plan_merge(sql, router::Dialect::Postgres);
  if (!plan) co_return co_await refuse_round("0A000", plan.error().message(), true);
  bump(worker_.metrics().scatter_statements_total);

  std::vector<ShardStream> streams(shards.size());
  std::string failure;  // a proxy-side failure (attach, socket): 08006
  // Inside a transaction the read runs on its legs (opening those it lacks),
  // so it sees the transaction's own writes; each shard answers from its
  // own snapshot.
  const bool in_transaction = in_client_transaction();
  if (in_transaction) {
    if (!ctx_.decisions || user_->pool_mode() == config::PoolMode::SESSION ||
        (server_ && !tracker_.idle()) || savepoint_set_)
      co_return co_await refuse_round(
          "0A000",
          "a read over several shards inside this transaction needs data_dir, transaction "
          "pooling, no savepoint and no statement in flight before it",
          true);
    deferred_begin_.reset();  // the legs open with txn_begin_
    park_server();
    auto opened =
        co_await give_legs(parked_, shards, [this](std::uint32_t s) { return open_leg(s); });
    if (!opened) failure = opened.error().message();
    for (std::size_t i = 0; failure.empty() && i < shards.size(); ++i) {
      streams[i].shard = shards[i];
      streams[i].conn = parked_.find(shards[i])->server.conn.get();
    }
  } else {
    auto attached = co_await attach_shards(worker_, pools_, *user_, database_, shards, routing_,
                                           [&](std::uint32_t shard) {
                                             round_shard_ = shard;
                                             return decide(stmt);
                                           });
    if (!attached) {
      failure = attached.error().message();
    } else {
      for (std::size_t i = 0; i < shards.size(); ++i) {
        streams[i].owned = std::move((*attached)[i]);
        streams[i].conn = streams[i].owned.conn.get();
        streams[i].shard = shards[i];
      }
    }
  }
  if (failure.empty()) {
    for (auto& s : streams) {
      auto& conn = *s.conn;
      std::string out;
      const std::string sync = settings_sync_sql(settings_, conn.settings);
      if (!sync.empty()) {
        out += pg::query_message(sync);
        s.swallow = 1;
        conn.settings = settings_;
      }
      if (extended) {
        out += pg::parse_message("", plan->shard_sql, extended->param_types);
        out += pg::bind_message("", "", extended->bind_rest);
        out += pg::describe_or_close_message('D', 'P', "");
        out += pg::execute_message("", 0);
        out += pg::simple_message('S');
      } else {
        out += pg::query_message(plan->shard_sql);
      }
      auto w = co_await net::write_all(conn.socket(), out);
      if (!w) {
        s.broken = true;
        failure = "lost the connection to server " +
                  ctx_.topology->backends[conn.backend_index()].name + " (" + w.error().message() +
                  ")";
        break;
      }
    }
  }

  if (extended && failure.empty()) {
    if (extended->parse_complete) to_client_ += pg::simple_message('1');
    to_client_ += pg::simple_message('2');
  }
  router::Merger merger(*plan, shards.size(), router::Dialect::Postgres);
  bool described = false;
  std::size_t columns = 0;   // of the shards' rows, as the first RowDescription said
  std::string server_error;  // the first ErrorResponse a shard sent, as sent
  std::string refusal;       // the merge's own: the rows cannot be merged correctly
  std::uint64_t rows = 0;
  pg::DataRowCells cells;

  // Handles one message of shard i; the merger hears of rows and ends.
  auto take = [&](std::size_t i, const pg::Frame& frame) {
    ShardStream& s = streams[i];
    const bool swallowed = s.swallow > 0;
    switch (frame.type) {
      case 'T': {
        if (swallowed || described || !server_error.empty()) break;
        auto fields = pg::parse_row_description(frame.body);
        if (!fields) {
          failure = "malformed RowDescription from a server";
          break;
        }
        std::vector<std::string> names;
        std::vector<router::ValueKind> kinds;
        for (const auto& field : *fields) {
          names.push_back(field.name);
          kinds.push_back(kind_of(field.type_oid));
        }
        if (auto ok = merger.set_columns(names, kinds); !ok) {
          refusal = ok.error().message();
          server_error = pg::error_response("0A000", refusal);
          break;
        }
        described = true;
        columns = fields->size();
        fields->resize(merger.visible_columns());
        for (const auto& [item, count_column] : plan->avg_counts) {
          auto& field = (*fields)[item];
          (void)count_column;
          field.type_oid = 1700;  // AVG answers numeric
          field.type_size = -1;
          field.type_modifier = -1;
          if (field.name == "sum") field.name = "avg";
        }
        if (!extended || extended->describe) to_client_ += pg::row_description(*fields);
        break;
      }
      case 'D':
        if (swallowed || !described || !server_error.empty()) break;
        if (!pg::parse_data_row(frame.body, cells)) {
          failure = "malformed DataRow from a server";
          break;
        }
        if (cells.size() != columns) {
          failure = "the shards answered with different columns (do their schemas differ?)";
          break;
        }
        {
          router::Row row;
          row.reserve(cells.size());
          for (const auto& c : cells)
            row.push_back(c ? std::optional<std::string>(std::string(*c)) : std::nullopt);
          merger.push(i, std::move(row));
        }
        break;
      case 'E':
        if (swallowed) {
          s.broken = true;  // its settings are not what the proxy thinks
          break;
        }
        if (server_error.empty())
          server_error.assign(frame.body.data() - 5, frame.size);  // relayed as the server sent it
        s.rows_over = true;
        merger.end(i);
        break;
      case 'C':
      case 'I':
        if (swallowed) break;
        if (!s.rows_over) merger.end(i);
        s.rows_over = true;
        break;
      case 'Z':
        if (swallowed) {
          --s.swallow;
          break;
        }
        s.ready = true;
        s.status = frame.body.empty() ? 'E' : frame.body[0];
        if (!s.rows_over) merger.end(i);
        s.rows_over = true;
        break;
      default:  // NoticeResponse, ParameterStatus: not the client's business here
        break;
    }
  };

  if (failure.empty()) {
    while (failure.empty() && server_error.empty() && !merger.finished()) {
      while (auto row = merger.next()) {
        pg::append_data_row(to_client_, *row);
        ++rows;
      }
      if (to_client_.size() > 64 * 1024) {
        auto flushed = co_await flush_client();
        if (!flushed) break;
      }
      auto wanted = merger.wants();
      if (!wanted) {
        if (merger.finished()) break;
        continue;
      }
      pg::Frame frame;
      const bool got = co_await read_frame(*streams[*wanted].conn, max_message_size_, frame);
      if (!got) {
        streams[*wanted].broken = true;
        failure = "lost the connection to a server of shard " +
                  ctx_.topology->shards[shards[*wanted]].name;
        break;
      }
      take(*wanted, frame);
      streams[*wanted].conn->buffer().consume(frame.size);
    }
    while (auto row = merger.next()) {
      pg::append_data_row(to_client_, *row);
      ++rows;
    }
  }
  // Every connection is read to its ReadyForQuery (what the LIMIT made
  // unnecessary is discarded) so that it goes back to the pool clean.
  for (std::size_t i = 0; i < streams.size(); ++i) {
    ShardStream& s = streams[i];
    if (!s.conn) continue;
    while (!s.ready && !s.broken && failure.empty()) {
      pg::Frame frame;
      const bool got = co_await read_frame(*s.conn, max_message_size_, frame);
      if (!got) {
        s.broken = true;
        break;
      }
      const char type = frame.type;
      if (type == 'Z' && s.swallow > 0) {
        --s.swallow;
      } else if (type == 'Z') {
        s.ready = true;
        s.status = frame.body.empty() ? 'E' : frame.body[0];
      } else if (type == 'E' && s.swallow == 0 && server_error.empty() && !merger.finished()) {
        server_error.assign(frame.body.data() - 5, frame.size);
      }
      s.conn->buffer().consume(frame.size);
    }
    if (s.owned.conn) release_server(worker_, s.owned, s.ready && !s.broken);
  }
  char status = 'I';
  if (in_transaction && failure.empty()) {
    // The legs stay in the transaction; one whose server failed the read
    // fails it, and answers what follows (25P02).
    status = 'T';
    for (const auto& s : streams) {
      if (auto* leg = parked_.find(s.shard)) leg->tracker.assume_transaction_status(s.status);
      if (s.status == 'E') status = 'E';
    }
    if (status == 'E') {
      for (const auto& s : streams)
        if (s.status == 'E' && !server_) unpark(s.shard);
    } else if (!refusal.empty()) {
      // The proxy's refusal fails the transaction as a server error would.
      unpark(streams.front().shard);
      worker_.metrics().statement_latency.observe(std::chrono::steady_clock::now() - started);
      co_return co_await refuse_round("0A000", refusal, true);
    }
  } else if (in_transaction) {
    abandon_parked();
    transaction_over();
    state_ = ClientState::Idle;
    failure += ": the transaction is rolled back; start it again";
  }
  if (!failure.empty()) {
    bump(worker_.metrics().proxy_errors_total);
    to_client_ += pg::error_response(
        "08006", failure + (in_transaction ? "" : ": the statement did not complete; retry it"));
  } else if (!server_error.empty()) {
    bump(worker_.metrics().statement_errors_total);
    to_client_ += server_error;
  } else {
    pg::Encoder e;
    e.begin('C').cstr("SELECT " + std::to_string(rows)).end();
    to_client_ += e.take();
  }
  to_client_ += pg::ready_for_query(status);
  worker_.metrics().statement_latency.observe(std::chrono::steady_clock::now() - started);
  co_return co_await flush_client();
}

}  // namespace shardgate::session

namespace shardgate::session {

// An extended batch whose one execution reads several shards: the whole
// batch (pg_lone_batch.cpp), with text results, through scatter_query with
// the client's parameters.
asio::awaitable<Result<void>> PgSession::scatter_batch(std::vector<std::uint32_t> shards) {
  auto lone = co_await take_lone_execution();
  if (!lone) co_return lone.error();
  if (lone->refusal.empty() && !pg::bind_results_all_text(lone->ext.bind_rest))
    lone->refusal =
        "a read over several shards returns its columns as text only; bind its result formats "
        "as text";
  if (!lone->refusal.empty()) co_return co_await refuse_round("0A000", lone->refusal, true);
  begin_lone_batch(*lone);
  const router::Statement stmt = analyze_parse(lone->query);
  co_return co_await scatter_query(std::move(lone->query), stmt, shards, &lone->ext);
}

}  // namespace shardgate::session
