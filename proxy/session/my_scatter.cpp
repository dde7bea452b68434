// A MySQL read that needs several shards (scatter-gather), with the same
// router pieces as PostgreSQL's (plan_merge, Merger): the plan's text goes
// to one server connection per shard at once; the merger says which shard to
// read next. The client sees one ordinary text resultset: column count,
// column definitions (the first shard's), EOF, rows, EOF. The rows of a
// prepared statement's execution (binary_rows) are converted to the binary
// format by their column types.
//
// A COM_QUERY, or a COM_STMT_EXECUTE written out as text
// (my_execute_shards.cpp), takes this path: outside a transaction on connections
// leased for it, inside one (begun with BEGIN) on the transaction's legs. A
// server error on any shard is the client's error once every shard has
// answered; as with any MySQL error, the transaction goes on.
#include "proxy/net/my_io.h"
#include "proxy/protocol/mysql/messages.h"
#include "proxy/protocol/mysql/value_text.h"
#include "proxy/session/my_session.h"
#include "router/merge_plan.h"
#include "router/merger.h"

namespace shardgate::session {

namespace {

// How the merger compares a column: numbers by value, strings by the
// collation's case rule (binary collations compare bytes).
router::ValueKind kind_of(const mysql::ColumnDefinition& c) {
  switch (c.type) {
    case mysql::kTypeTiny:
    case mysql::kTypeShort:
    case mysql::kTypeLong:
    case mysql::kTypeLongLong:
    case mysql::kTypeInt24:
    case mysql::kTypeYear:
      return router::ValueKind::Integer;
    case mysql::kTypeDecimal:
    case mysql::kTypeNewDecimal:
    case mysql::kTypeFloat:
    case mysql::kTypeDouble:
      return router::ValueKind::Number;
    default:
      break;
  }
  // binary, utf8mb4_bin, utf8_bin, latin1_bin, ascii_bin, utf8mb4_nopad_bin
  constexpr std::uint16_t kBinary[] = {63, 46, 83, 47, 65, 1070};
  for (std::uint16_t id : kBinary)
    if (c.charset == id) return router::ValueKind::Text;
  return router::ValueKind::TextCi;
}

enum class Phase { Swallow, Header, Columns, ColumnsEof, Rows, Done };

struct ShardStream {
  Attachment<backend::MyServerConnection> owned;  // leased for this read alone
  backend::MyServerConnection* conn = nullptr;    // owned's, or a transaction leg's
  Phase phase = Phase::Swallow;
  std::size_t swallow = 0;  // answers to session-state replays
  std::uint64_t columns = 0;
  std::uint64_t columns_seen = 0;
  bool broken = false;
};

bool is_eof(std::string_view payload) {
  return !payload.empty() && static_cast<std::uint8_t>(payload[0]) == mysql::kEofHeader &&
         payload.size() < 9;
}
bool is_err(std::string_view payload) {
  return !payload.empty() && static_cast<std::uint8_t>(payload[0]) == mysql::kErrHeader;
}

// The connection's next packet payload (a copy: the buffer moves on).
asio::awaitable<std::optional<std::string>> read_payload(backend::MyServerConnection& conn,
                                                         std::uint32_t max_size) {
  for (;;) {
    auto d = mysql::decode_message(conn.buffer().readable(), max_size);
    if (d.status == mysql::DecodeStatus::Frame) {
      std::string payload = mysql::assemble_payload(conn.buffer().readable(), d);
      conn.buffer().consume(d.size);
      co_return payload;
    }
    if (d.status == mysql::DecodeStatus::Error) co_return std::nullopt;
    auto r = co_await net::read_more(conn.socket(), conn.buffer());
    if (!r) co_return std::nullopt;
  }
}

// A merged text row in the binary format of a prepared statement's rows.
Result<std::string> binary_row(const std::vector<mysql::BinaryType>& types,
                               const router::Row& row) {
  if (row.size() != types.size()) return make_error("a merged row does not match its columns");
  std::vector<mysql::BinaryValue> values;
  values.reserve(row.size());
  for (std::size_t k = 0; k < row.size(); ++k) {
    if (!row[k]) {
      values.emplace_back();
      continue;
    }
    auto v = mysql::binary_value_from_text(*row[k], types[k]);
    if (!v) return make_error("column " + std::to_string(k + 1) + ": " + v.error().message());
    values.push_back(*v);
  }
  return mysql::build_binary_row(types, values);
}

}  // namespace

asio::awaitable<Result<void>> MySession::scatter_query(std::string_view sql,
                                                       const router::Statement& stmt,
                                                       const std::vector<std::uint32_t>& shards,
                                                       bool binary_rows) {
  const auto started = std::chrono::steady_clock::now();
  auto plan = router::plan_merge(sql, router::Dialect::Mysql);
  if (!plan) {
    bump(worker_.metrics().statements_refused_total);
    queue_error(mysql::kErNotSupportedYet, plan.error().message());
    co_return co_await flush_client();
  }
  bump(worker_.metrics().scatter_statements_total);
  std::vector<ShardStream> streams(shards.size());
  std::string failure;
  // Inside a transaction the read runs on its legs (opening those it lacks),
  // so it sees the transaction's own writes; each shard answers from its own
  // snapshot.
  const bool in_transaction = server_.conn || deferred_begin_ || !parked_.empty();
  if (in_transaction) {
    park_server();
    deferred_begin_.reset();  // the legs open as the transaction began
    auto opened =
        co_await give_legs(parked_, shards, [this](std::uint32_t s) { return open_leg(s); });
    if (!opened) failure = opened.error().message();
    for (std::size_t i = 0; failure.empty() && i < shards.size(); ++i)
      streams[i].conn = parked_.find(shards[i])->server.conn.get();
  } else {
    auto attached = co_await attach_shards(
        worker_, pools_, *user_, login_database_, shards, routing_, [&](std::uint32_t shard) {
          SessionFacts facts;
          facts.reads_on_primary = ctx_.config->routing().reads_on_primary();
          facts.shard = shard;
          return routing_.decide(stmt, facts, worker_.health(), worker_.metrics());
        });
    if (!attached) {
      failure = attached.error().message();
    } else {
      for (std::size_t i = 0; i < shards.size(); ++i) {
        streams[i].owned = std::move((*attached)[i]);
        streams[i].conn = streams[i].owned.conn.get();
      }
    }
  }
  const std::uint16_t status =
      static_cast<std::uint16_t>((autocommit_ ? mysql::kServerStatusAutocommit : 0) |
                                 (in_transaction ? mysql::kServerStatusInTrans : 0));
  if (failure.empty()) {
    for (auto& s : streams) {
      std::string out;
      s.swallow = append_session_sync(*s.conn, out).size();
      if (s.swallow == 0) s.phase = Phase::Header;
      std::string query(1, static_cast<char>(mysql::kComQuery));
      query.append(plan->shard_sql);
      std::uint8_t seq = 0;
      mysql::append_packets(out, query, seq);
      auto w = co_await net::write_all(s.conn->socket(), out);
      if (!w) {
        s.broken = true;
        failure = "lost the connection to a server: " + w.error().message();
        break;
      }
    }
  }

  router::Merger merger(*plan, shards.size(), router::Dialect::Mysql);
  bool described = false;
  std::string server_error;                     // the first ERR payload a shard sent
  std::vector<std::string> definitions;         // the first shard's, raw
  std::vector<mysql::BinaryType> binary_types;  // of the visible columns, for binary_rows
  bool draining = false;                        // reading answers to their end: rows are dropped

  // One packet of shard i, by its phase.
  auto take = [&](std::size_t i, const std::string& payload) {
    ShardStream& s = streams[i];
    switch (s.phase) {
      case Phase::Swallow:
        if (is_err(payload)) s.broken = true;  // its state is not what the proxy thinks
        if (--s.swallow == 0) s.phase = Phase::Header;
        return;
      case Phase::Header: {
        if (is_err(payload)) {
          if (server_error.empty()) server_error = payload;
          s.phase = Phase::Done;
          merger.end(i);
          return;
        }
        mysql::PayloadReader r(payload);
        auto count = r.lenenc_int();
        if (!count || *count == 0 || static_cast<std::uint8_t>(payload[0]) == 0) {
          failure = "a server answered the read without a result set";
          s.phase = Phase::Done;
          return;
        }
        s.columns = *count;
        s.phase = Phase::Columns;
        return;
      }
      case Phase::Columns:
        if (!described && !draining) definitions.push_back(payload);
        if (++s.columns_seen == s.columns) s.phase = Phase::ColumnsEof;
        return;
      case Phase::ColumnsEof:
        s.phase = Phase::Rows;
        if (!described && !draining && server_error.empty()) {
          std::vector<std::string> names;
          std::vector<router::ValueKind> kinds;
          std::vector<mysql::ColumnDefinition> parsed;
          for (const auto& d : definitions) {
            auto c = mysql::parse_column_definition(d);
            if (!c) {
              failure = "malformed column definition from a server";
              return;
            }
            names.emplace_back(c->name);
            kinds.push_back(kind_of(*c));
            parsed.push_back(*c);
          }
          if (auto ok = merger.set_columns(names, kinds); !ok) {
            server_error = mysql::build_err(mysql::kErNotSupportedYet, ok.error().message(),
                                            capabilities_ | mysql::kClientProtocol41);
            return;
          }
          described = true;
          std::string count;
          mysql::put_lenenc_int(count, merger.visible_columns());
          mysql::append_packets(to_client_, count, seq_);
          std::vector<std::string> avg_names(parsed.size());
          for (const auto& [item, hidden] : plan->avg_counts) {
            (void)hidden;
            auto& c = parsed[item];
            if (c.name.starts_with("sum(")) {
              avg_names[item] = "avg(" + std::string(c.name.substr(4));
              c.name = avg_names[item];
            }
            c.type = mysql::kTypeNewDecimal;
            c.decimals = 4;
          }
          for (std::size_t k = 0; k < merger.visible_columns(); ++k) {
            mysql::append_packets(to_client_, mysql::build_column_definition(parsed[k]), seq_);
            binary_types.push_back(mysql::binary_type_of(parsed[k]));
          }
          mysql::EofPacket eof;
          eof.status_flags = status;
          mysql::append_packets(to_client_, mysql::build_eof(eof, capabilities_), seq_);
        }
        return;
      case Phase::Rows: {
        if (is_eof(payload) || is_err(payload)) {
          if (is_err(payload) && server_error.empty()) server_error = payload;
          if (is_eof(payload)) {
            auto eof = mysql::parse_eof(payload, mysql::kClientProtocol41);
            if (eof && (eof->status_flags & mysql::kServerMoreResultsExists))
              failure = "a server answered with several result sets";
          }
          s.phase = Phase::Done;
          merger.end(i);
          return;
        }
        if (!described || draining || !server_error.empty()) return;
        if (s.columns != definitions.size()) {
          failure = "the shards answered with different columns (do their schemas differ?)";
          return;
        }
        auto row = mysql::parse_text_row(payload, s.columns);
        if (!row) {
          failure = "malformed row from a server";
          return;
        }
        router::Row merged;
        merged.reserve(row->size());
        for (const auto& cell : *row)
          merged.push_back(cell ? std::optional<std::string>(std::string(*cell)) : std::nullopt);
        merger.push(i, std::move(merged));
        return;
      }
      case Phase::Done:
        return;
    }
  };

  auto emit_rows = [&] {
    while (auto row = merger.next()) {
      if (binary_rows) {
        auto built = binary_row(binary_types, *row);
        if (!built) {
          failure = built.error().message();
          return;
        }
        mysql::append_packets(to_client_, *built, seq_);
        continue;
      }
      std::vector<std::optional<std::string_view>> cells;
      cells.reserve(row->size());
      for (const auto& v : *row)
        cells.push_back(v ? std::optional<std::string_view>(*v) : std::nullopt);
      mysql::append_packets(to_client_, mysql::build_text_row(cells), seq_);
    }
  };
  if (failure.empty()) {
    while (failure.empty() && server_error.empty() && !merger.finished()) {
      emit_rows();
      if (to_client_.size() > 64 * 1024) {
        auto flushed = co_await flush_client();
        if (!flushed) break;
      }
      auto wanted = merger.wants();
      if (!wanted) {
        if (merger.finished()) break;
        continue;
      }
      auto payload = co_await read_payload(*streams[*wanted].conn, max_message_size_);
      if (!payload) {
        streams[*wanted].broken = true;
        failure = "lost the connection to a server of shard " +
                  ctx_.topology->shards[shards[*wanted]].name;
        break;
      }
      take(*wanted, *payload);
    }
    emit_rows();
  }
  // Every connection is read to the end of its answer so that it goes back
  // to the pool clean; what the LIMIT made unnecessary is discarded.
  draining = true;
  for (std::size_t i = 0; i < streams.size(); ++i) {
    ShardStream& s = streams[i];
    if (!s.conn) continue;
    while (s.phase != Phase::Done && !s.broken && failure.empty()) {
      auto payload = co_await read_payload(*s.conn, max_message_size_);
      if (!payload) {
        s.broken = true;
        break;
      }
      take(i, *payload);
    }
    if (s.owned.conn) release_server(worker_, s.owned, s.phase == Phase::Done && !s.broken);
  }
  if (in_transaction && !failure.empty()) {
    // A leg is gone: the transaction cannot commit anywhere.
    abandon_parked();
    transaction_over();
    state_ = ClientState::Idle;
    failure += ": the transaction is rolled back; start it again";
  } else if (!failure.empty()) {
    failure += ": the statement did not complete; retry it";
  }
  if (!failure.empty()) {
    bump(worker_.metrics().proxy_errors_total);
    queue_error(mysql::kErConnectionKilled, failure);
  } else if (!server_error.empty()) {
    bump(worker_.metrics().statement_errors_total);
    mysql::append_packets(to_client_, server_error, seq_);
  } else {
    mysql::EofPacket eof;
    eof.status_flags = status;
    mysql::append_packets(to_client_, mysql::build_eof(eof, capabilities_), seq_);
  }
  worker_.metrics().statement_latency.observe(std::chrono::steady_clock::now() - started);
  co_return co_await flush_client();
}

}  // namespace shardgate::session
