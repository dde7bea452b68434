// shardgate: the proxy. `shardgate --config FILE`.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <thread>

#include "proxy/admin/admin_server.h"
#include "proxy/config/load_config.h"
#include "proxy/failover_controller.h"
#include "proxy/hot_key_watch.h"
#include "proxy/net/listener.h"
#include "proxy/proxy_context.h"
#include "proxy/reshard/reshard_controller.h"
#include "proxy/topology.h"
#include "proxy/topology_store.h"
#include "proxy/txn/resolver.h"
#include "replication/mysql_monitor.h"
#include "replication/pg_monitor.h"

namespace {

using namespace shardgate;

constexpr int kExitUsage = 2;
constexpr int kExitFailed = 1;
// Shards that POST /api/v1/shards may add while the proxy runs.
constexpr std::size_t kAddedShards = 16;

void log(const std::string& line) {
  std::fprintf(stderr, "shardgate: %s\n", line.c_str());
}

struct Args {
  std::string config_path;
};

std::optional<Args> parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--config" && i + 1 < argc) {
      a.config_path = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      a.config_path = arg.substr(9);
    } else if (arg == "--help" || arg == "-h") {
      return std::nullopt;
    } else {
      log("unknown argument '" + arg + "'");
      return std::nullopt;
    }
  }
  if (a.config_path.empty()) return std::nullopt;
  return a;
}

// Converts each monitor round into the view the balancer reads, and hands it
// to every worker on its own thread.
void publish_health(ProxyContext& ctx,
                    const std::shared_ptr<const replication::HealthSnapshot>& snap) {
  auto view = std::make_shared<HealthView>();
  view->generation = snap->generation;
  view->round_started = snap->round_started;
  view->backends.resize(snap->backends.size());
  view->primary_lsn.resize(ctx.topology->shards.size());
  for (std::size_t i = 0; i < snap->backends.size(); ++i) {
    const auto& h = snap->backends[i];
    view->backends[i] = backend::ReplicaState{h.up, h.lag_bytes, h.lsn};
    const auto& b = ctx.topology->backends[i];
    if (b.role == router::MemberRole::Primary) view->primary_lsn[b.shard] = h.lsn;
  }
  for (auto& w : ctx.workers) {
    Worker* worker = w.get();
    asio::post(worker->io(), [worker, view] { worker->set_health(view); });
  }
}

std::vector<replication::ProbeTarget> probe_targets(const router::Topology& t) {
  std::vector<replication::ProbeTarget> out;
  for (const auto& b : t.backends)
    out.push_back({b.name, b.host, b.port, b.unix_socket_dir, b.shard,
                   b.role == router::MemberRole::Primary});
  return out;
}

asio::awaitable<void> expire_idle(Worker& w) {
  asio::steady_timer timer(w.io());
  for (;;) {
    timer.expires_after(std::chrono::seconds(5));
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    w.close_expired_idle();
  }
}

}  // namespace

int main(int argc, char** argv) {
  auto args = parse_args(argc, argv);
  if (!args) {
    std::fprintf(stderr, "usage: shardgate --config FILE\n");
    return kExitUsage;
  }
  auto loaded = config::load_config_file(args->config_path);
  if (!loaded) {
    log(loaded.error().message());
    return kExitUsage;
  }
  ::signal(SIGPIPE, SIG_IGN);
  // SIGINT/SIGTERM are taken by sigwait() below (blocked before any thread
  // starts, so every thread inherits the mask) and end the process at once:
  // clients see their connections close, servers roll back what was in flight.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  ProxyContext ctx;
  ctx.config = std::make_shared<const config::Config>(std::move(*loaded));
  const config::Config& cfg = *ctx.config;
  const config::Cluster& cluster = cfg.clusters(0);
  const bool mysql = cluster.engine() == config::Cluster::MYSQL;
  // The topology store (data_dir) is the durable source of the topology,
  // seeded and kept in step with the config's cluster section.
  std::unique_ptr<TopologyStore> store;
  config::TopologyRecord record;
  if (!cfg.data_dir().empty()) {
    auto opened = TopologyStore::open(cfg.data_dir());
    if (!opened) {
      log(opened.error().message());
      return kExitFailed;
    }
    store = std::move(*opened);
    auto reconciled = reconcile_with_config(*store, cluster);
    if (!reconciled) {
      log(reconciled.error().message());
      return kExitFailed;
    }
    record = std::move(*reconciled);
    ctx.topology_store_path = store->path();
  } else {
    record.set_version(1);
    *record.mutable_cluster() = cluster;
    record.set_reason("from the configuration file (no data_dir: not stored)");
  }
  ctx.topology.publish(std::make_shared<const router::Topology>(topology_from_record(record)));
  log("topology v" + std::to_string(record.version()) + " of cluster " + cluster.name() + " (" +
      record.reason() + ")");
  for (const auto& f : cfg.routing().writing_functions())
    ctx.analyze_options.writing_functions.push_back(f);
  for (const auto& u : cfg.users()) {
    if (u.auth() != config::User::SCRAM_SHA_256) continue;
    auto v = auth::verifier_for(u.password());
    if (!v) {
      log("config key 'users." + u.name() + ".password': " + v.error().message());
      return kExitUsage;
    }
    ctx.scram_verifiers.emplace(u.name(), *v);
  }
  // Room for the backends of shards added while running (POST /api/v1/shards).
  ctx.backend_capacity = ctx.topology->backends.size() + replication::Monitor::kAddedTargets;
  ctx.shard_capacity = ctx.topology->shards.size() + kAddedShards;
  ctx.outstanding = std::make_unique<std::atomic<std::int64_t>[]>(ctx.backend_capacity);
  ctx.served = std::make_unique<std::atomic<std::int64_t>[]>(ctx.backend_capacity);

  // Hot-key detection needs sharded tables: keys are what it counts.
  const config::HotKeys& hk = cluster.sharding().hot_keys();
  if (!hk.disabled() && cluster.sharding().tables_size() > 0) {
    router::HotKeySettings settings;
    settings.window_seconds = hk.window_ms() / 1000.0;
    settings.capacity = hk.capacity();
    ctx.hot_keys = settings;
  }
  router::HotKeyThresholds hot_thresholds;
  hot_thresholds.share = hk.hot_share();
  hot_thresholds.rate = hk.hot_rate();
  hot_thresholds.min_rate = hk.min_rate();
  HotKeyWatch hot_key_watch(ctx, hot_thresholds);
  bool tables_cached = false;
  for (const auto& t : cluster.sharding().tables())
    tables_cached |= t.cache_ttl_ms() > 0 || t.hot_key_cache_ttl_ms() > 0;
  if (cfg.result_cache().has_enabled() ? cfg.result_cache().enabled() : tables_cached)
    ctx.result_cache = std::make_unique<cache::ResultCache>(cfg.result_cache().max_bytes(),
                                                            cfg.result_cache().max_entry_bytes());

  const unsigned threads =
      cfg.threads() ? cfg.threads() : std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < threads; ++i) ctx.workers.push_back(std::make_unique<Worker>(ctx, i));

  // Two-phase commit: decisions live in data_dir; what an earlier run left
  // prepared on the shards is resolved before any client is served.
  std::unique_ptr<txn::Resolver> resolver;
  if (!cfg.data_dir().empty()) {
    auto opened = txn::DecisionLog::open(cfg.data_dir());
    if (!opened) {
      log(opened.error().message());
      return kExitFailed;
    }
    ctx.decisions = std::move(*opened);
    resolver = std::make_unique<txn::Resolver>(ctx);
    if (ctx.topology->shards.size() > 1) {
      log("two-phase commit recovery: " + txn::describe(resolver->resolve_now()));
      resolver->start(std::chrono::seconds(5));
    }
  }
  // "after_prepare:3000": tests kill the proxy while it waits there.
  if (const char* pause = std::getenv("SHARDGATE_TEST_PAUSE_2PC")) {
    const std::string spec = pause;
    const auto colon = spec.find(':');
    if (colon != std::string::npos)
      ctx.test_pause = txn::TestPause{
          spec.substr(0, colon), std::chrono::milliseconds(std::atoi(spec.c_str() + colon + 1))};
  }

  replication::MonitorOptions mopts;
  mopts.user = cluster.monitor().user();
  mopts.password = cluster.monitor().password();
  mopts.database = cluster.monitor().database();
  mopts.interval = std::chrono::milliseconds(cluster.monitor().interval_ms());
  mopts.connect_timeout = std::chrono::milliseconds(cluster.monitor().connect_timeout_ms());
  mopts.failures_before_down = cluster.monitor().failures_before_down();
  std::unique_ptr<replication::Monitor> monitor;
  if (mysql)
    monitor = std::make_unique<replication::MySqlMonitor>(probe_targets(*ctx.topology), mopts);
  else
    monitor = std::make_unique<replication::PgMonitor>(probe_targets(*ctx.topology), mopts);
  // Failover watches every round; with failover disabled it still reports
  // dead primaries and serves `shardctl failover` switchovers.
  const config::Failover& fo = cluster.failover();
  ctx.failover_enabled = fo.enabled();
  ctx.failover_write_wait = std::chrono::milliseconds(fo.write_wait_ms());
  ctx.failover_promote_timeout = std::chrono::milliseconds(fo.promote_timeout_ms());
  ctx.failover_rejoin_lag =
      mysql ? cfg.routing().max_replica_lag_transactions() : cfg.routing().max_replica_lag_bytes();
  ctx.failing_over = std::make_unique<std::atomic<bool>[]>(ctx.shard_capacity);
  const bool journal = fo.has_journal() ? fo.journal() : fo.enabled() && !cfg.data_dir().empty();
  if (journal) {
    if (cfg.data_dir().empty()) {
      log("config key 'clusters[0].failover.journal': the write journal lives in data_dir: set "
          "data_dir");
      return kExitUsage;
    }
    auto opened = replication::WriteJournal::open(cfg.data_dir());
    if (!opened) {
      log(opened.error().message());
      return kExitFailed;
    }
    ctx.journal = std::move(*opened);
    log("write journal in " + ctx.journal->path());
  }
  replication::FailoverLogin flogin{mopts.user,
                                    mopts.password,
                                    mopts.database,
                                    fo.replication_user(),
                                    fo.replication_password(),
                                    mopts.connect_timeout};
  FailoverController failover(ctx, *monitor, store.get(), record,
                              mysql ? replication::make_mysql_failover_ops(std::move(flogin))
                                    : replication::make_pg_failover_ops(std::move(flogin)));
  monitor->set_listener([&ctx, &failover](const auto& snap) {
    publish_health(ctx, snap);
    failover.on_snapshot(snap);
  });

  // Listener TLS settings live as long as the process (main never returns).
  std::vector<std::unique_ptr<net::ServerTls>> listener_tls;
  for (int i = 0; i < cfg.listeners_size(); ++i) {
    const auto& l = cfg.listeners(i);
    const net::ServerTls* tls = nullptr;
    if (!l.tls_cert_file().empty()) {
      auto context = net::make_server_tls_context(l.tls_cert_file(), l.tls_key_file());
      if (!context) {
        log("config key 'listeners[" + std::to_string(i) +
            "].tls_cert_file': " + context.error().message());
        return kExitUsage;
      }
      listener_tls.push_back(
          std::make_unique<net::ServerTls>(net::ServerTls{std::move(*context), l.tls_required()}));
      tls = listener_tls.back().get();
    }
    if ((l.protocol() == config::Listener::MYSQL) != mysql) {
      log("config key 'listeners[" + std::to_string(i) + "].protocol': the cluster is " +
          (mysql ? "mysql" : "postgres") + "; a listener must speak its protocol");
      return kExitUsage;
    }
    auto ok = net::start_listener(ctx, l.protocol(), l.address(),
                                  static_cast<std::uint16_t>(l.port()), tls);
    if (!ok) {
      log(ok.error().message());
      return 1;
    }
    log(std::string("listening for ") + (mysql ? "MySQL" : "PostgreSQL") + " clients on " +
        l.address() + ":" + std::to_string(l.port()) +
        (tls ? (tls->required ? " (TLS required)" : " (TLS offered)") : ""));
  }
  // Resharding copies as the first configured user's server login.
  replication::CopyLogin copy_login;
  if (cfg.users_size() > 0) {
    const config::User& u = cfg.users(0);
    copy_login.user = u.server_user().empty() ? u.name() : u.server_user();
    copy_login.password = u.server_password().empty() ? u.password() : u.server_password();
  }
  copy_login.database = cluster.monitor().database();
  ReshardController reshard(ctx, failover, cfg.data_dir(), mysql, copy_login);
  admin::AdminServer admin(ctx, *monitor, failover, hot_key_watch, reshard);
  if (cfg.admin().port() != 0) {
    auto ok = admin.start(cfg.admin().address(), static_cast<std::uint16_t>(cfg.admin().port()));
    if (!ok) {
      log(ok.error().message());
      return 1;
    }
    log("admin API on http://" + cfg.admin().address() + ":" + std::to_string(cfg.admin().port()));
  }
  monitor->start();
  failover.start();
  hot_key_watch.start();
  if (auto ok = reshard.start(); !ok) {
    log(ok.error().message());
    return kExitFailed;
  }

  std::vector<std::thread> pool_threads;
  for (auto& w : ctx.workers) {
    asio::co_spawn(w->io(), expire_idle(*w), asio::detached);
    Worker* worker = w.get();
    pool_threads.emplace_back([worker] { worker->run(); });
  }
  int sig = 0;
  sigwait(&set, &sig);
  log(std::string("stopping on ") + strsignal(sig));
  monitor->stop();
  reshard.stop();
  failover.stop();
  std::fflush(stderr);
  ::_exit(0);
}
