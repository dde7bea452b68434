// One MySQL/MariaDB client, as one coroutine in straight-line phases:
// greeting -> authenticate -> command loop. It meets the rest of the proxy
// through the same protocol-neutral pieces as the PostgreSQL session: the
// router (analyze, route), RoutingState, the worker's pools and balancer
// (attach_server). Between statements it holds no server connection unless
// the client's state lives on one (a transaction, user variables, locks,
// temporary tables, an open cursor): then the session is pinned to it.
#pragma once

#include <boost/asio.hpp>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "proxy/backend/my_server_connection.h"
#include "proxy/net/buffer.h"
#include "proxy/net/client_stream.h"
#include "proxy/protocol/mysql/messages.h"
#include "proxy/proxy_context.h"
#include "proxy/session/cancel_registry.h"
#include "proxy/session/client_lifetime.h"
#include "proxy/session/client_state.h"
#include "proxy/session/my_response_tracker.h"
#include "proxy/session/my_session_state.h"
#include "proxy/session/routing_state.h"
#include "proxy/session/server_attach.h"
#include "proxy/session/session_cache.h"
#include "proxy/session/shard_legs.h"
#include "router/statement.h"
#include "router/write_split.h"

namespace shardgate::session {

namespace asio = boost::asio;

// A statement the client prepared (COM_STMT_PREPARE), under the id the proxy
// gave it; prepared again on whichever server connection executes it.
struct MyClientStatement {
  std::string query;
  router::Statement routing;
  bool reads_insert_id = false;  // LAST_INSERT_ID() or @@identity in the text
  std::uint16_t num_params = 0;
  std::uint16_t num_columns = 0;
  // The parameter types of the last execution that bound them (2 bytes each):
  // a server connection that has not seen them gets them with the execute.
  std::string param_types;
  // COM_STMT_SEND_LONG_DATA payloads since the last execute, replayed before it.
  std::vector<std::string> long_data;
};

// SET autocommit = 1 | ON | TRUE (my_legs.cpp): with autocommit off, it
// commits the open transaction.
bool sets_autocommit_on(std::string_view sql);

class MySession : public std::enable_shared_from_this<MySession> {
 public:
  MySession(net::ClientSocket socket, Worker& worker, const net::ServerTls* tls);
  ~MySession();

  asio::awaitable<void> run();

  // For the login deadline (client_lifetime.h).
  bool logging_in() const {
    return state_ == ClientState::Startup || state_ == ClientState::Authenticating;
  }
  void cancel_client_io() { client_.cancel(); }

 private:
  using Conn = backend::MyServerConnection;

  // greeting and authentication (my_startup.cpp)
  asio::awaitable<bool> greet_and_authenticate();
  asio::awaitable<Result<std::string>> read_client_packet();
  asio::awaitable<bool> verify_password(const std::string& plugin, const std::string& response);
  asio::awaitable<Result<void>> fetch_server_version();
  asio::awaitable<void> refuse(mysql::ErrorCode code, const std::string& message);

  // command loop (my_session.cpp)
  asio::awaitable<void> command_loop();
  asio::awaitable<Result<void>> handle_command(std::string_view payload);
  asio::awaitable<Result<void>> handle_query(std::string_view payload);
  asio::awaitable<Result<void>> forward(std::string_view payload, const router::Statement& stmt,
                                        MyAnswer answer);
  asio::awaitable<Result<void>> send_and_relay(MyAnswer answer);
  asio::awaitable<Result<void>> relay_until_answered();
  asio::awaitable<Result<void>> change_user(std::string_view payload);
  asio::awaitable<Result<void>> kill(const KillRequest& request);
  void cancel_running(bool whole_connection);
  asio::awaitable<void> kill_on_server(std::uint32_t backend, std::uint32_t thread_id);
  asio::awaitable<void> reset_session_state();

  // prepared statements (my_prepared.cpp)
  asio::awaitable<Result<void>> stmt_prepare(std::string_view payload);
  asio::awaitable<Result<void>> stmt_execute(std::string_view payload);
  void stmt_send_long_data(std::string_view payload);
  asio::awaitable<Result<void>> stmt_reset(std::string_view payload);
  asio::awaitable<Result<void>> stmt_fetch(std::string_view payload);
  void stmt_close(std::string_view payload);
  asio::awaitable<Result<backend::MyServerStatement*>> ensure_prepared(
      const MyClientStatement& stmt);
  void remember_prepared(const std::string& query, const mysql::StmtPrepareOk& ok);
  void finish_prepare(bool failed);

  // sharding (my_shard.cpp)
  // binary_rows: the statement is a prepared one's execution written out as
  // text (my_execute_shards.cpp); rows over several shards go back in the
  // binary format.
  asio::awaitable<std::optional<Result<void>>> shard_query(std::string_view sql,
                                                           const router::Statement& stmt,
                                                           bool binary_rows = false);
  enum class ExecuteRoute {
    Settled,  // the session is on the shard it needs
    Several,  // it needs several: execute_across_shards
    Retry,    // a cutover's pause refused its moved writes; wait it out and call again
  };
  Result<ExecuteRoute> shard_execute(const MyClientStatement& st, const mysql::StmtExecute& exec);
  // nullopt: the execution needs one shard after all (the topology moved);
  // the session is settled there.
  asio::awaitable<std::optional<Result<void>>> execute_across_shards(
      MyClientStatement& st, const mysql::StmtExecute& exec);
  asio::awaitable<Result<void>> scatter_query(std::string_view sql, const router::Statement& stmt,
                                              const std::vector<std::uint32_t>& shards,
                                              bool binary_rows = false);
  Result<void> settle_shard(std::optional<std::uint32_t> wanted, bool writes);
  void begin_deferred_transaction();
  void defer_begin(std::string_view sql, const router::Statement& stmt);
  void begin_implicitly(const router::Statement& stmt);

  // transactions over several shards (my_legs.cpp)
  Result<void> switch_leg(std::uint32_t wanted);
  void park_server();
  bool unpark(std::uint32_t shard);
  void abandon_parked();
  void transaction_over();
  asio::awaitable<Result<void>> end_across_shards(bool commit);
  asio::awaitable<txn::EndResult> end_legs(bool commit);
  void queue_commit_failure(const txn::EndResult& result);
  using Leg = ShardLeg<Conn, MyResponseTracker>;
  asio::awaitable<Result<Leg>> open_leg(std::uint32_t shard, bool begin = true);
  asio::awaitable<Result<void>> fanout_ddl(const router::WritePlan& plan);
  asio::awaitable<Result<void>> fanout_write(std::string_view sql, const router::WritePlan& plan);
  void queue_transaction_ok(bool in_transaction);

  // the write journal (my_journal.cpp)
  bool journal_wanted(const router::Statement& stmt);
  void journal_statement(std::string_view sql, const router::Statement& stmt);
  void journal_execute(const MyClientStatement& st, const mysql::StmtExecute& exec);
  void journal_add(replication::journal::Statement s);
  void journal_commit(const std::string& gtid);
  void settle_journal(bool failed);
  void drop_journal();

  // server attachment (my_attach.cpp)
  // runs_statement: a query or execute, which a deferred BEGIN goes with.
  asio::awaitable<Result<void>> attach_for(const router::Statement& stmt, bool runs_statement);
  // Read-your-writes: waits (bounded) on a replica connection until it has
  // applied `gtid`; false when it did not in time (my_replica_wait.cpp).
  asio::awaitable<Result<bool>> wait_for_commit(Conn& conn, const std::string& gtid);
  void sync_session_state();
  std::vector<MyAnswer> append_session_sync(Conn& c, std::string& out);
  void restore_last_insert_id();
  void after_answer();
  void detach(bool reusable);
  asio::awaitable<void> release_at_end();
  bool in_client_transaction() const;
  // Shared by COM_QUERY and COM_STMT_EXECUTE: may `sql` be cached now?
  bool cache_allowed(std::string_view sql) const;
  // A cached answer for `key` is queued for the client (true); a miss is
  // marked to be kept once the command has run (false).
  bool answer_or_fill(router::CachePlan& plan, std::string& key);
  std::string cache_settings() const;
  std::uint32_t cache_shard() const;
  // The same for COM_STMT_EXECUTE of `st` (its text, types and parameter
  // values are the key).
  std::optional<std::string> execute_cache_key(const MyClientStatement& st,
                                               const mysql::StmtExecute& exec,
                                               std::string_view payload, router::CachePlan& plan);
  // The result-cache key of a COM_QUERY that may be served from the cache
  // (my_cache.cpp), with its plan; nullopt when it may not.
  std::optional<std::string> cache_key_of(std::string_view sql, const router::Statement& stmt,
                                          router::CachePlan& plan);
  asio::awaitable<void> server_lost(const std::string& why);
  void server_gone_before_send();
  std::uint32_t pool_variant() const;

  asio::awaitable<Result<void>> write_client(std::string_view bytes);
  asio::awaitable<Result<void>> flush_client();
  asio::awaitable<Result<void>> flush_server();
  // Queues one ERR packet for the client with the next sequence id.
  void queue_error(mysql::ErrorCode code, const std::string& message);
  void queue_ok();

  ClientSlot slot_;
  net::ClientStream client_;
  const net::ServerTls* tls_;
  Worker& worker_;
  ProxyContext& ctx_;
  ClientState state_ = ClientState::Startup;
  net::ReadBuffer in_;
  std::string to_client_;
  std::string to_server_;
  std::uint8_t seq_ = 0;  // next sequence id towards the client in this exchange
  std::uint32_t max_message_size_;
  std::uint32_t connection_id_ = 0;  // shown in the greeting: the pid of cancel_key_
  std::optional<CancelRegistry::Key> cancel_key_;
  std::string nonce_;

  const config::User* user_ = nullptr;
  std::uint32_t capabilities_ = 0;  // agreed with the client
  std::uint8_t charset_ = 0;
  std::string login_database_;
  std::string database_;               // current schema (COM_INIT_DB, USE)
  std::vector<std::string> settings_;  // SET statements that succeeded, in order
  SessionChange pending_;              // of the statement in flight, applied if it succeeds
  bool autocommit_ = true;

  Attachment<Conn> server_;
  SessionPools<Conn> pools_;
  MyResponseTracker tracker_;
  RoutingState routing_;
  SessionCache cache_;
  // The client's state lives on the attached server: keep it until the client
  // leaves (user variables, locks, temporary tables, a cursor ...).
  bool pinned_ = false;
  // The attached connection's state is unknown (a replay failed): close it.
  bool server_broken_ = false;
  // The id the client's last insert generated, as its OK packet said: set on
  // the server connection before a statement that reads LAST_INSERT_ID().
  std::uint64_t last_insert_id_ = 0;
  bool restore_insert_id_ = false;  // for the command being forwarded
  // The command being sent may go again elsewhere if it cannot be sent at all
  // (a read on a replica, outside a transaction).
  bool retry_if_lost_ = false;
  bool lost_quietly_ = false;  // it could not: forward() sends it again
  std::vector<asio::const_buffer> relay_out_;

  std::unordered_map<std::uint32_t, MyClientStatement> statements_;
  std::uint32_t next_statement_id_ = 1;
  // The client statement a relayed COM_STMT_PREPARE answers, until it is known.
  std::optional<std::uint32_t> preparing_id_;
  std::optional<MyClientStatement> preparing_;

  // Sharding: the shard the next attach goes to (default shard when unset)
  // and the one attached.
  std::optional<std::uint32_t> next_shard_;
  std::uint32_t server_shard_ = 0;
  // BEGIN answered by the proxy and not yet sent: the transaction's first
  // statement decides its shard.
  std::optional<std::string> deferred_begin_;
  router::Statement deferred_begin_stmt_;

  // A transaction over several shards: the connections of its other shards
  // wait here, each inside it, while statements go to one (server_). In a
  // sharded cluster a transaction the proxy began is an XA transaction on
  // every shard from its first statement (a plain one cannot become one
  // later), so that COMMIT can prepare each shard; a READ ONLY one is plain.
  ParkedLegs<Conn, MyResponseTracker> parked_;
  bool server_wrote_ = false;   // the attached leg ran a statement that may write
  bool savepoint_set_ = false;  // savepoints live on one shard
  bool txn_xa_ = false;         // the client's transaction runs as XA txn_gid_
  bool txn_read_only_ = false;  // ... or as plain READ ONLY legs
  std::string txn_gid_;
  std::string txn_begin_;  // the client's BEGIN (read-only legs open with it)

  // Writes on the primary since the transaction began, for the journal.
  std::vector<replication::journal::Statement> journal_pending_;
  bool journal_differs_ = false;                       // one may not replay the same (RAND() ...)
  bool journal_awaiting_ = false;                      // the last one's answer has not come yet
  bool journal_broken_ = false;                        // one could not be kept: none of them is
  std::string journal_first_schema_, journal_schema_;  // at the first and the last
};

}  // namespace shardgate::session
