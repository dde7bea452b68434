// The state the whole proxy shares (config, topology, cancel registry, client
// count) and the per-thread Worker: one io_context, its pools, its metrics and
// its copy of the latest health snapshot. A session lives on one worker and
// only ever touches that worker's pools, so the data path takes no locks.
#pragma once

#include <atomic>
#include <boost/asio.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <tuple>
#include <vector>

#include "proxy/backend/balancer.h"
#include "proxy/backend/pg_server_connection.h"
#include "proxy/backend/pool.h"
#include "proxy/cache/result_cache.h"
#include "proxy/config/config.pb.h"
#include "proxy/metrics.h"
#include "proxy/protocol/auth/scram.h"
#include "proxy/protocol/postgres/messages.h"
#include "proxy/reshard/reshard_watch.h"
#include "proxy/session/cancel_registry.h"
#include "proxy/session/replica_wait_breaker.h"
#include "proxy/topology_handle.h"
#include "proxy/txn/decision_log.h"
#include "proxy/txn/two_phase.h"
#include "replication/write_journal.h"
#include "router/hot_keys.h"
#include "router/shard_keys.h"
#include "router/statement.h"
#include "router/topology.h"

namespace shardgate {

namespace asio = boost::asio;

// What the monitor last saw, in the form the balancer wants, plus the primary
// LSN of each shard in that round (read-your-writes barriers).
struct HealthView {
  std::uint64_t generation = 0;
  std::chrono::steady_clock::time_point round_started{};
  std::vector<backend::ReplicaState> backends;  // by backend index
  std::vector<std::uint64_t> primary_lsn;       // by shard
};

class Worker;

struct ProxyContext {
  std::shared_ptr<const config::Config> config;
  TopologyHandle topology;
  // The topology store's path; empty without data_dir.
  std::string topology_store_path;
  router::AnalyzeOptions analyze_options;
  // Commit decisions of transactions over several shards (data_dir); null
  // without a data_dir, and such transactions are then refused.
  std::unique_ptr<txn::DecisionLog> decisions;
  std::optional<txn::TestPause> test_pause;  // SHARDGATE_TEST_PAUSE_2PC, tests only
  // Failover (proxy/failover_controller.h). failing_over[shard] is set while a
  // promotion runs: statements for that shard's primary wait up to
  // failover_write_wait instead of failing, as they do while the primary is
  // unreachable and failover is enabled.
  bool failover_enabled = false;
  std::chrono::milliseconds failover_write_wait{5000};
  std::chrono::milliseconds failover_promote_timeout{10000};
  std::uint64_t failover_rejoin_lag = 0;  // a fenced old primary serves again within this lag
  std::unique_ptr<std::atomic<bool>[]> failing_over;
  // Sizes of the per-backend and per-shard arrays: the topology's at start
  // plus room for shards added while running (proxy/admin/add_shard.h).
  std::size_t backend_capacity = 0;
  std::size_t shard_capacity = 0;
  // Acknowledged writes not yet on every replica (MariaDB; null when off).
  std::unique_ptr<replication::WriteJournal> journal;
  session::CancelRegistry cancels;
  std::atomic<std::int64_t> clients{0};
  // Statements in flight per backend, across threads (least-outstanding balancing).
  std::unique_ptr<std::atomic<std::int64_t>[]> outstanding;
  // Statements (rounds) served per backend since start: lets a failover drill
  // check that nothing reached a fenced old primary.
  std::unique_ptr<std::atomic<std::int64_t>[]> served;
  // Hot-key detection (proxy/hot_key_watch.h); off when hot_keys is unset.
  std::optional<router::HotKeySettings> hot_keys;
  // The slice a resharding job moves, its written keys and the cutover pause.
  ReshardWatch reshard;
  // Results of cacheable reads (proxy/cache/result_cache.h).
  std::unique_ptr<cache::ResultCache> result_cache;
  std::vector<std::unique_ptr<Worker>> workers;

  // Parameters a server reported at startup (server_version, encoding ...),
  // replayed to clients at login. Filled by the first server connection.
  std::mutex server_params_mutex;
  std::optional<pg::Params> server_params;
  // A MySQL cluster's version string, shown in the greeting to clients.
  std::optional<std::string> mysql_server_version;

  // SCRAM verifiers of the configured users, derived once at start-up.
  std::map<std::string, auth::ScramVerifier> scram_verifiers;

  const config::User* find_user(std::string_view name) const;
  const auth::ScramVerifier* scram_verifier(const std::string& user) const;
  asio::awaitable<Result<pg::Params>> login_parameters(Worker& worker, const config::User& user,
                                                       const std::string& database);
};

class Worker {
 public:
  Worker(ProxyContext& ctx, std::size_t id);

  asio::io_context& io() { return io_; }
  ProxyContext& ctx() { return ctx_; }
  Metrics& metrics() { return metrics_; }
  // Shard analyses by statement shape, for this thread's sessions.
  router::ShardPlanCache& shard_plans() { return shard_plans_; }
  session::ReplicaWaitBreaker& replica_waits() { return replica_waits_; }
  std::size_t id() const { return id_; }
  // Hot-key detection for this thread's sessions (router/hot_keys.h).
  router::HotKeyTap hot_key_tap() {
    return {hot_keys_.get(), hot_ids_ ? std::span<const std::uint64_t>(*hot_ids_)
                                      : std::span<const std::uint64_t>()};
  }
  const router::HotKeyRecorder* hot_key_recorder() const { return hot_keys_.get(); }
  void set_hot_ids(std::shared_ptr<const std::vector<std::uint64_t>> ids) {
    hot_ids_ = std::move(ids);
  }
  const HealthView& health() const { return health_; }
  void set_health(std::shared_ptr<const HealthView> h) {
    health_ptr_ = std::move(h);
    health_ = *health_ptr_;
  }

  // The pool of Conn connections to `backend` for (user, database). `variant`
  // separates connections opened with different protocol options (MySQL
  // capability flags that change the format of results).
  template <class Conn>
  backend::Pool<Conn>& pool(std::uint32_t backend, const config::User& user,
                            const std::string& database, std::uint32_t variant = 0) {
    PoolKey key{backend, user.name(), database, variant};
    auto it = pools_.find(key);
    if (it == pools_.end()) {
      auto made = std::make_unique<backend::Pool<Conn>>(
          io_.get_executor(), ctx_.topology->backends[backend],
          server_login(user, database, variant), pool_limits(), metrics_);
      it = pools_.emplace(std::move(key), std::move(made)).first;
    }
    // A backend belongs to one cluster of one engine: its pools hold one Conn type.
    return static_cast<backend::Pool<Conn>&>(*it->second);
  }
  std::vector<const backend::PoolBase*> pools() const;

  // Chooses a backend for (shard, role) with this worker's balancing state.
  backend::BalanceChoice choose(std::uint32_t shard, router::TargetRole role,
                                std::optional<std::uint64_t> min_replay_lsn,
                                std::span<const std::uint32_t> excluded);

  void run();  // blocks: the thread body
  void close_expired_idle();
  // Cuts every connection of this worker to `backend` (fenced): see
  // backend::LiveSockets. Runs on this worker's thread.
  void abort_backend(std::uint32_t backend);

 private:
  ProxyContext& ctx_;
  std::size_t id_;
  asio::io_context io_{1};
  Metrics metrics_;
  router::ShardPlanCache shard_plans_;
  session::ReplicaWaitBreaker replica_waits_;
  std::unique_ptr<router::HotKeyRecorder> hot_keys_;  // null when detection is off
  std::shared_ptr<const std::vector<std::uint64_t>> hot_ids_;
  using PoolKey = std::tuple<std::uint32_t, std::string, std::string, std::uint32_t>;
  backend::PoolLimits pool_limits() const;
  static backend::ServerLogin server_login(const config::User& user, const std::string& database,
                                           std::uint32_t options);

  std::map<PoolKey, std::unique_ptr<backend::PoolBase>> pools_;
  std::shared_ptr<const HealthView> health_ptr_;
  HealthView health_;
  std::vector<std::int64_t> outstanding_scratch_;
  std::uint64_t cursor_ = 0;
};

}  // namespace shardgate
