#include "proxy/txn/resolver.h"

#include <chrono>
#include <set>

#include "proxy/proxy_context.h"

namespace shardgate::txn {

namespace {

// A decision younger than this may belong to a session still in phase two.
constexpr std::chrono::milliseconds kSessionGrace{2000};

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Resolver::Resolver(ProxyContext& ctx) : ctx_(ctx) {
  const config::Config& cfg = *ctx.config;
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& u : cfg.users()) {
    const std::string user = u.server_user().empty() ? u.name() : u.server_user();
    const std::string password = u.server_password().empty() ? u.password() : u.server_password();
    if (seen.insert({user, password}).second) logins_.push_back({user, password});
  }
  const config::Cluster& cluster = cfg.clusters(0);
  options_.mysql = cluster.engine() == config::Cluster::MYSQL;
  options_.prefix = ctx.decisions->gid_prefix();
  options_.live_prefix = ctx.decisions->live_prefix();
  options_.list_database =
      cluster.monitor().database().empty() ? "postgres" : cluster.monitor().database();
  options_.connect_timeout = std::chrono::milliseconds(cfg.pool().connect_timeout_ms());
}

Resolver::~Resolver() {
  stop();
}

replication::RecoveryReport Resolver::resolve_now() {
  auto decided = ctx_.decisions->decisions();
  std::map<std::string, std::int64_t> decided_at;
  if (decided)
    for (const auto& d : *decided) decided_at[d.gid] = d.record.decided_unix_ms();
  const std::int64_t cutoff = now_ms() - kSessionGrace.count();
  const std::string live = options_.live_prefix;
  auto commit = [&](const std::string& gid) {
    auto it = decided_at.find(gid);
    if (it == decided_at.end()) return false;
    // The running process's young decisions are still its sessions' to finish.
    return gid.rfind(live, 0) != 0 || it->second <= cutoff;
  };
  std::vector<replication::RecoveryServer> primaries;
  const router::Topology& topo = *ctx_.topology;
  for (const auto& shard : topo.shards) {
    const router::BackendInfo& b = topo.backends[shard.primary];
    primaries.push_back({shard.name, b.host, b.port, b.unix_socket_dir, b.unix_socket});
  }
  replication::RecoveryReport report =
      replication::resolve_prepared(primaries, logins_, options_, commit);
  if (!decided) report.errors.push_back(decided.error().message());
  // A decision whose transaction no shard holds any more is done.
  if (decided && report.every_server_read) {
    for (const auto& [gid, at] : decided_at)
      if (commit(gid) && !report.still_prepared.count(gid)) (void)ctx_.decisions->forget(gid);
  }
  return report;
}

void Resolver::start(std::chrono::milliseconds interval) {
  thread_ = std::thread([this, interval] { loop(interval); });
}

void Resolver::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Resolver::loop(std::chrono::milliseconds interval) {
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, interval, [this] { return stopping_; })) {
    lock.unlock();
    auto pending = ctx_.decisions->decisions();
    if (pending && !pending->empty()) {
      auto report = resolve_now();
      if (report.committed > 0 || !report.errors.empty())
        std::fprintf(stderr, "shardgate: resolver: %s\n", describe(report).c_str());
    }
    lock.lock();
  }
}

std::string describe(const replication::RecoveryReport& report) {
  std::string out = std::to_string(report.committed) + " committed, " +
                    std::to_string(report.rolled_back) + " rolled back";
  if (!report.still_prepared.empty())
    out += ", " + std::to_string(report.still_prepared.size()) + " still prepared";
  for (const auto& e : report.errors) out += "; " + e;
  return out;
}

}  // namespace shardgate::txn
