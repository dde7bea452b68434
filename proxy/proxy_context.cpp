#include "proxy/proxy_context.h"

#include <algorithm>

namespace shardgate {

const config::User* ProxyContext::find_user(std::string_view name) const {
  for (const auto& u : config->users())
    if (u.name() == name) return &u;
  return nullptr;
}

const auth::ScramVerifier* ProxyContext::scram_verifier(const std::string& user) const {
  auto it = scram_verifiers.find(user);
  return it == scram_verifiers.end() ? nullptr : &it->second;
}

asio::awaitable<Result<pg::Params>> ProxyContext::login_parameters(Worker& worker,
                                                                   const config::User& user,
                                                                   const std::string& database) {
  {
    std::lock_guard lock(server_params_mutex);
    if (server_params) co_return *server_params;
  }
  // The first login asks the primary: parameters such as server_version and
  // server_encoding are the cluster's, and the same on every member, so a
  // replica answers when the primary is down (logins, and reads, go on
  // during a failover).
  const router::ShardInfo& shard = topology->shards[0];
  std::vector<std::uint32_t> members{shard.primary};
  members.insert(members.end(), shard.replicas.begin(), shard.replicas.end());
  Error last = make_error("no backend configured");
  for (std::uint32_t backend : members) {
    auto& pool = worker.pool<backend::PgServerConnection>(backend, user, database);
    auto lease = co_await pool.acquire();
    if (!lease) {
      last = lease.error();
      continue;
    }
    pg::Params params = (*lease)->parameters();
    pool.release(std::move(*lease), true);
    std::lock_guard lock(server_params_mutex);
    if (!server_params) server_params = params;
    co_return *server_params;
  }
  co_return last;
}

Worker::Worker(ProxyContext& ctx, std::size_t id) : ctx_(ctx), id_(id) {
  health_.backends.resize(ctx.topology->backends.size());
  health_.primary_lsn.resize(ctx.topology->shards.size());
  outstanding_scratch_.resize(ctx.topology->backends.size());
  if (ctx.hot_keys) hot_keys_ = std::make_unique<router::HotKeyRecorder>(*ctx.hot_keys);
}

backend::PoolLimits Worker::pool_limits() const {
  const auto& p = ctx_.config->pool();
  backend::PoolLimits limits;
  // The configured size is per backend: the workers share it.
  const std::size_t threads = std::max<std::size_t>(1, ctx_.workers.size());
  limits.max_size = std::max<std::size_t>(1, (p.size() + threads - 1) / threads);
  limits.acquire_timeout = std::chrono::milliseconds(p.acquire_timeout_ms());
  limits.connect_timeout = std::chrono::milliseconds(p.connect_timeout_ms());
  limits.idle_timeout = std::chrono::milliseconds(p.idle_timeout_ms());
  return limits;
}

backend::ServerLogin Worker::server_login(const config::User& user, const std::string& database,
                                          std::uint32_t options) {
  return backend::ServerLogin{user.server_user(), user.server_password(), database, options};
}

std::vector<const backend::PoolBase*> Worker::pools() const {
  std::vector<const backend::PoolBase*> out;
  for (const auto& [key, pool] : pools_) out.push_back(pool.get());
  return out;
}

backend::BalanceChoice Worker::choose(std::uint32_t shard, router::TargetRole role,
                                      std::optional<std::uint64_t> min_replay_lsn,
                                      std::span<const std::uint32_t> excluded) {
  // A shard added while running brings backends the scratch has no room for.
  if (outstanding_scratch_.size() < ctx_.topology->backends.size())
    outstanding_scratch_.resize(ctx_.topology->backends.size());
  for (std::size_t i = 0; i < outstanding_scratch_.size(); ++i)
    outstanding_scratch_[i] = ctx_.outstanding[i].load(std::memory_order_relaxed);
  backend::BalanceInput in;
  in.topology = ctx_.topology.get();
  in.shard = shard;
  in.role = role;
  in.policy = ctx_.config->routing().balance() == config::Routing::ROUND_ROBIN
                  ? backend::BalancePolicy::RoundRobin
                  : backend::BalancePolicy::LeastOutstanding;
  // The monitor measures lag in WAL bytes (PostgreSQL) or transactions (MySQL GTIDs).
  const bool mysql = ctx_.config->clusters(0).engine() == config::Cluster::MYSQL;
  in.max_lag_bytes = mysql ? ctx_.config->routing().max_replica_lag_transactions()
                           : ctx_.config->routing().max_replica_lag_bytes();
  in.state = health_.backends;
  in.outstanding = outstanding_scratch_;
  in.min_replay_lsn = min_replay_lsn;
  in.excluded = excluded;
  return backend::choose_backend(in, cursor_);
}

void Worker::close_expired_idle() {
  const auto now = std::chrono::steady_clock::now();
  for (auto& [key, pool] : pools_) pool->close_expired(now);
}

void Worker::abort_backend(std::uint32_t backend) {
  for (auto& [key, pool] : pools_)
    if (std::get<0>(key) == backend) pool->abort_all();
}

void Worker::run() {
  io_.run();
}

}  // namespace shardgate
