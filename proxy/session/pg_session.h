// One PostgreSQL client, as one coroutine in straight-line phases:
// startup -> authenticate -> command loop. In transaction pooling the session
// holds a server connection only while a statement, an extended-protocol batch
// or a transaction is in flight; between them it holds nothing but its socket
// and its remembered state (settings, prepared statements).
#pragma once

#include <boost/asio.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "common/result.h"
#include "proxy/backend/pg_server_connection.h"
#include "proxy/backend/pool.h"
#include "proxy/net/buffer.h"
#include "proxy/net/client_stream.h"
#include "proxy/protocol/postgres/frame.h"
#include "proxy/proxy_context.h"
#include "proxy/session/client_lifetime.h"
#include "proxy/session/client_state.h"
#include "proxy/session/pg_journal.h"
#include "proxy/session/response_tracker.h"
#include "proxy/session/routing_state.h"
#include "proxy/session/server_attach.h"
#include "proxy/session/session_cache.h"
#include "proxy/session/settings.h"
#include "proxy/session/shard_legs.h"
#include "router/cache_plan.h"
#include "router/route.h"
#include "router/statement.h"
#include "router/write_split.h"

namespace shardgate::session {

namespace asio = boost::asio;

// A statement the client prepared by name, as the proxy remembers it so that
// it can be prepared again on whichever server connection the client lands on.
struct PreparedStatement {
  std::string server_name;  // sg_<hash of text and parameter types>, same for equal statements
  std::string query;
  std::string param_types;    // raw int16 count + oids
  router::Statement routing;  // what the router found, without table names
  // A writing statement's tables, whose cached results each execution drops.
  std::vector<std::string> written_tables;
};

// The name a statement gets on servers: a hash of its text and parameter
// types, the same for equal statements of every client.
std::string server_statement_name(std::string_view query, std::string_view types);

// The answer to a COMMIT over several shards that failed (pg_legs.cpp).
std::string pg_commit_failure(const txn::EndResult& result);

// A read over several shards sent as an extended batch (Parse?, Bind,
// Describe portal?, Execute, Sync): each shard gets the same batch with the
// plan's text, and the client the answers its own batch expects.
struct ScatterExtended {
  std::string param_types;      // of the Parse (raw int16 count + oids)
  std::string bind_rest;        // the Bind's parameter formats and values, result formats
  bool parse_complete = false;  // the client sent the Parse: ParseComplete first
  bool describe = false;        // the client asked for the RowDescription
};

// What routing learned of an extended batch besides its shard.
struct BatchFacts {
  int statements = 0;                  // executions bound
  bool writes = false;                 // one of them may write
  bool ends = false;                   // one of them is COMMIT or ROLLBACK
  bool commits = false;                // ... COMMIT
  bool savepoint = false;              // one of them is SAVEPOINT / RELEASE / ROLLBACK TO
  std::vector<std::uint32_t> several;  // a lone read that needs these shards
  bool several_writes = false;         // a lone write that needs several shards
  bool wait_for_cutover = false;       // a cutover's pause refused its moved writes: route again
};

// A BEGIN as the client sent it, with what the router found in it.
struct BeginText {
  std::string sql;
  router::Statement stmt;
};

// A BEGIN the proxy opens by itself (a further leg of a transaction, an
// implicit transaction for a write over several shards).
inline std::unique_ptr<BeginText> plain_begin() {
  auto b = std::make_unique<BeginText>();
  b->sql = "BEGIN";
  b->stmt.kind = router::StatementKind::Begin;
  return b;
}

// The last Parse text analyzed, with its analysis.
struct ParseMemo {
  std::string query;
  router::Statement stmt;
};

// Lets prepared_ be searched with a string_view from a message, no copy.
struct NameHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// The statements a client prepared by name. The map is made by the first
// one: most clients prepare none (or use unnamed statements only), and an
// idle client should cost little memory.
class PreparedStatements {
 public:
  const PreparedStatement* find(std::string_view name) const {
    if (!map_) return nullptr;
    auto it = map_->find(name);
    return it == map_->end() ? nullptr : &it->second;
  }
  void put(std::string_view name, PreparedStatement ps) {
    if (!map_) map_ = std::make_unique<Map>();
    (*map_)[std::string(name)] = std::move(ps);
  }
  bool erase(std::string_view name) {
    if (!map_) return false;
    auto it = map_->find(name);
    if (it == map_->end()) return false;
    map_->erase(it);
    return true;
  }
  void clear() { map_.reset(); }

 private:
  using Map = std::unordered_map<std::string, PreparedStatement, NameHash, std::equal_to<>>;
  std::unique_ptr<Map> map_;
};

class PgSession : public std::enable_shared_from_this<PgSession> {
 public:
  // tls: the listener's TLS settings, or null when it has no certificate.
  PgSession(net::ClientSocket socket, Worker& worker, const net::ServerTls* tls);
  ~PgSession();

  // Keeps itself alive (shared_from_this) until the client is gone.
  asio::awaitable<void> run();

  // For the login deadline (client_lifetime.h).
  bool logging_in() const {
    return state_ == ClientState::Startup || state_ == ClientState::Authenticating;
  }
  void cancel_client_io() { client_.cancel(); }

 private:
  // startup and authentication (pg_startup.cpp)
  asio::awaitable<bool> startup();
  asio::awaitable<bool> negotiate_tls(bool ssl_request);
  asio::awaitable<bool> authenticate();
  asio::awaitable<bool> authenticate_scram();
  asio::awaitable<bool> authenticate_md5();
  asio::awaitable<bool> send_login_ok();
  asio::awaitable<Result<std::string_view>> read_password_message();
  asio::awaitable<void> refuse(std::string_view sqlstate, std::string_view message);

  // command loop (pg_session.cpp)
  // Idle: the client is waited for by wait_while_idle, and serve() goes on.
  enum class LoopEnd { Idle, Closed };
  asio::awaitable<LoopEnd> command_loop();
  static asio::awaitable<void> serve(std::shared_ptr<PgSession> self);
  void wait_while_idle();
  void finish();  // the client is gone
  asio::awaitable<Result<void>> handle_message(const pg::Frame& f);
  asio::awaitable<Result<void>> handle_query(const pg::Frame& f);
  asio::awaitable<Result<void>> handle_extended(const pg::Frame& f);
  bool stage_extended(char type, std::string_view body, std::string_view raw);
  bool stage_parse(std::string_view body, std::string_view raw);
  bool stage_close(std::string_view body, std::string_view raw);
  asio::awaitable<std::optional<Result<void>>> deallocate_locally(const pg::Frame& f,
                                                                  std::string_view sql);
  asio::awaitable<Result<void>> finish_round();
  asio::awaitable<Result<void>> relay_until_answered();
  asio::awaitable<Result<FeedResult>> relay_buffered();
  asio::awaitable<Result<void>> copy_in();
  asio::awaitable<Result<void>> wait_for_input_or_server();
  void shed_idle_memory();

  // sharding (pg_shard.cpp)
  asio::awaitable<std::optional<Result<void>>> shard_query(const pg::Frame& f, std::string_view sql,
                                                           const router::Statement& stmt);
  Result<std::optional<std::uint32_t>> batch_shard(BatchFacts& facts);
  asio::awaitable<Result<void>> scatter_query(std::string sql, const router::Statement& stmt,
                                              const std::vector<std::uint32_t>& shards,
                                              const ScatterExtended* extended = nullptr);
  asio::awaitable<Result<void>> scatter_batch(std::vector<std::uint32_t> shards);
  // The one execution of a batch that runs on several shards, taken apart
  // up to its Sync (pg_lone_batch.cpp); the batch is consumed.
  struct LoneExecution {
    std::string query;
    ScatterExtended ext;
    std::string refusal;  // why it cannot run on several shards
    struct Begin {
      std::string query;
      bool parse_complete = false;
      bool describe = false;
    };
    std::optional<Begin> begin;  // a BEGIN executed before it in the batch
  };
  asio::awaitable<Result<LoneExecution>> take_lone_execution();
  void begin_lone_batch(const LoneExecution& lone);
  // BEGIN answered by the proxy: the transaction's first statement decides
  // where it begins.
  void defer_begin(std::string_view sql, const router::Statement& stmt);
  // A batch whose write needs several shards, with its parameters written
  // into the text (pg_execute_shards.cpp).
  asio::awaitable<Result<void>> fanout_batch();
  Result<void> settle_shard(std::optional<std::uint32_t> wanted, bool writes, bool multi_statement);
  asio::awaitable<Result<void>> answer_query(const pg::Frame& f, std::string_view tag, char status);
  asio::awaitable<Result<void>> refuse_round(std::string_view sqlstate, const std::string& message,
                                             bool simple);
  asio::awaitable<Result<void>> raise_on_server(std::string sql);
  void begin_deferred_transaction();
  bool in_client_transaction() const;

  // transactions over several shards (pg_legs.cpp)
  Result<void> switch_leg(std::uint32_t wanted, bool multi_statement);
  void park_server();
  bool unpark(std::uint32_t shard);
  void abandon_parked();
  void transaction_over();
  asio::awaitable<void> end_across_shards(bool commit);
  asio::awaitable<txn::EndResult> end_legs(bool commit);
  using Leg = ShardLeg<backend::PgServerConnection, ResponseTracker>;
  // begin = false: a connection for DDL that runs outside any transaction.
  asio::awaitable<Result<Leg>> open_leg(std::uint32_t shard, bool begin = true);
  // DDL that PostgreSQL runs only outside a transaction block, on every
  // shard (pg_fanout.cpp); extended: it came as an extended batch.
  asio::awaitable<Result<void>> fanout_ddl(const router::WritePlan& plan,
                                           const ScatterExtended* extended = nullptr);
  // extended: the write came as an extended batch (already consumed).
  asio::awaitable<Result<void>> fanout_write(const router::WritePlan& plan,
                                             const ScatterExtended* extended = nullptr);
  asio::awaitable<Result<void>> end_query_across_shards(const pg::Frame& f, bool commit);
  asio::awaitable<Result<void>> end_batch_across_shards(const pg::Frame& f);

  // server attachment (pg_attach.cpp)
  asio::awaitable<Result<void>> attach(router::TargetRole role);
  void detach(bool reusable);
  router::TargetRole decide(const router::Statement& stmt);
  router::TargetRole route_batch();
  bool prepare_on_server(const PreparedStatement& ps);
  const router::Statement& analyze_parse(std::string_view query);
  void note_statement_done();
  asio::awaitable<void> server_lost(const std::string& why);
  // The result-cache key of a simple Query that may be served from the
  // cache (pg_cache.cpp), with its plan; nullopt when it may not.
  std::optional<std::string> cache_key_of(std::string_view sql, const router::Statement& stmt,
                                          router::CachePlan& plan);
  asio::awaitable<std::optional<Result<void>>> answer_batch_from_cache();
  void cancel_running();

  // write journal (pg_journal.cpp). journal_query: how to send a simple
  // Query (Expect::Query: as it is; otherwise `rewritten`, answered so).
  Expect journal_query(std::string_view sql, const router::Statement& stmt, bool in_transaction,
                       std::string& rewritten);
  void journal_bind(std::string_view query, std::string_view param_types,
                    const router::Statement& stmt, std::string_view bind_rest);
  void journal_sync();
  void stage_journal_select();
  std::string_view prepare_journal_select();
  void journal_commit(std::string_view datarow);  // the journal SELECT's row, committed

  asio::awaitable<Result<void>> write_client(std::string_view bytes);
  asio::awaitable<Result<void>> flush_client();
  asio::awaitable<Result<void>> flush_server();
  asio::awaitable<void> protocol_error(const std::string& message);

  ClientSlot slot_;
  net::ClientStream client_;
  const net::ServerTls* tls_;
  Worker& worker_;
  ProxyContext& ctx_;
  // Members are ordered to leave no padding: thousands of idle clients each
  // hold this object.
  ClientState state_ = ClientState::Startup;
  std::uint32_t max_message_size_;
  net::ReadBuffer in_;
  std::string to_client_;  // proxy-made bytes waiting to be written to the client
  std::string to_server_;  // bytes waiting to be written to the attached server

  const config::User* user_ = nullptr;
  std::string database_;
  std::unique_ptr<pg::Params> startup_params_;  // until the login is done
  SharedSettings settings_;
  std::optional<CancelRegistry::Key> cancel_key_;

  // Attached server connection (state Active) and where it came from.
  backend::PgPool* pool_ = nullptr;
  std::unique_ptr<backend::PgServerConnection> server_;
  router::TargetRole server_role_ = router::TargetRole::Primary;
  bool server_dirty_ = false;     // session state changed in a way the proxy does not track
  bool skip_until_sync_ = false;  // an extended batch failed in the proxy: drop it up to Sync
  ResponseTracker tracker_;
  std::vector<asio::const_buffer> relay_out_;  // reused gather list for relayed bytes

  PreparedStatements prepared_;
  // The last Parse text analyzed: drivers parse the same text over and over,
  // and a batch is looked at twice (routing, then forwarding). State that
  // only some clients need lives on the heap, here and below, so that an
  // idle client costs little memory.
  std::unique_ptr<ParseMemo> last_parse_;
  // Pools this session used, by backend index (saves a keyed lookup per statement).
  SessionPools<backend::PgServerConnection> pools_;
  std::unique_ptr<SettingChange> pending_setting_;  // on the heap: idle clients carry none
  // SET statements run inside the open transaction: followed if it commits.
  std::vector<SettingChange> txn_settings_;
  std::chrono::steady_clock::time_point round_started_{};

  RoutingState routing_;
  SessionCache cache_;

  // Sharding: the shard the next attach goes to and the one attached.
  std::uint32_t round_shard_ = 0;
  std::uint32_t server_shard_ = 0;
  bool batch_routed_ = false;  // the batch in progress had its shard checked
  // Of a transaction over several shards (parked_ below):
  bool server_wrote_ = false;   // the attached leg ran a statement that may write
  bool savepoint_set_ = false;  // the transaction set a savepoint (on one shard)
  // An extended batch whose one statement is COMMIT or ROLLBACK of a
  // transaction over several shards: answered by the proxy up to its Sync.
  bool ending_batch_ = false;
  bool batch_end_commits_ = false;
  // BEGIN answered by the proxy and not yet sent: the transaction's first
  // statement decides its shard.
  std::unique_ptr<BeginText> deferred_begin_;
  // A refused batch inside a transaction: raised on the server at its Sync.
  std::unique_ptr<std::string> pending_raise_;
  // The writes of the client's transaction, for the write journal.
  std::unique_ptr<PgJournalTxn> journal_txn_;

  // A transaction over several shards: the server connections of its other
  // shards wait here, each still in the transaction, while the client's
  // statements go to one of them (server_). COMMIT ends them together.
  ParkedLegs<backend::PgServerConnection, ResponseTracker> parked_;  // Leg: see above
  std::unique_ptr<BeginText> txn_begin_;  // the BEGIN that opened it: opens each further leg
};

}  // namespace shardgate::session
