#include "proxy/failover_controller.h"

#include <cstdio>

#include "proxy/proxy_context.h"
#include "proxy/topology.h"
#include "proxy/topology_store.h"
#include "replication/failover_plan.h"
#include "replication/monitor.h"

namespace shardgate {
namespace {

using Clock = std::chrono::steady_clock;
using replication::ObservedRole;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

std::int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

bool FailoverController::mysql() const {
  return !ctx_.config->clusters().empty() &&
         ctx_.config->clusters(0).engine() == config::Cluster::MYSQL;
}

namespace {

bool fresh(const replication::BackendHealth& h) {
  return h.up && h.consecutive_failures == 0;
}

// What catch_up_from_journal did, into the failover's report.
void add_catch_up(FailoverReport& rep, FailoverReport& caught_up) {
  for (auto& step : caught_up.steps) rep.steps.push_back(std::move(step));
  rep.journal_replayed = caught_up.journal_replayed;
  rep.journal_replay_failed = caught_up.journal_replay_failed;
  rep.journal_replayed_nondeterministic = caught_up.journal_replayed_nondeterministic;
}

// A failed attempt is tried again after this, not on every round.
constexpr auto kRetryBackoff = std::chrono::seconds(2);
constexpr std::size_t kReportsKept = 50;

}  // namespace

FailoverController::FailoverController(ProxyContext& ctx, replication::Monitor& monitor,
                                       TopologyStore* store, config::TopologyRecord current,
                                       std::unique_ptr<replication::FailoverOps> ops)
    : ctx_(ctx),
      monitor_(monitor),
      store_(store),
      record_(std::move(current)),
      ops_(std::move(ops)) {}

FailoverController::~FailoverController() {
  stop();
}

void FailoverController::start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { run(); });
}

void FailoverController::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void FailoverController::on_snapshot(std::shared_ptr<const replication::HealthSnapshot> snapshot) {
  {
    std::lock_guard lock(mutex_);
    latest_ = std::move(snapshot);
  }
  cv_.notify_all();
}

Result<std::uint64_t> FailoverController::request_switchover(const std::string& shard,
                                                             const std::string& target) {
  const router::Topology& topo = *ctx_.topology;
  std::optional<std::uint32_t> index;
  for (std::uint32_t s = 0; s < topo.shards.size(); ++s)
    if (topo.shards[s].name == shard) index = s;
  if (!index) return make_error("no shard named '" + shard + "'");
  if (!target.empty()) {
    bool found = false;
    for (std::uint32_t b : topo.shards[*index].replicas)
      found = found || topo.backends[b].name == target;
    if (!found)
      return make_error("'" + target + "' is not a replica of shard " + shard +
                        " that can be promoted");
  }
  std::lock_guard lock(mutex_);
  const std::uint64_t id = next_id_++;
  requests_.push_back({id, *index, target});
  FailoverReport queued;
  queued.id = id;
  queued.shard = shard;
  queued.kind = "switchover";
  queued.outcome = "queued";
  queued.started_unix_ms = unix_ms_now();
  reports_.push_back(std::move(queued));
  if (reports_.size() > kReportsKept) reports_.pop_front();
  cv_.notify_all();
  return id;
}

std::vector<FailoverReport> FailoverController::reports() const {
  std::lock_guard lock(mutex_);
  return {reports_.begin(), reports_.end()};
}

std::optional<FailoverReport> FailoverController::report(std::uint64_t id) const {
  std::lock_guard lock(mutex_);
  for (const auto& r : reports_)
    if (r.id == id) return r;
  return std::nullopt;
}

std::vector<FencedBackend> FailoverController::fenced() const {
  std::lock_guard lock(mutex_);
  std::vector<FencedBackend> out;
  for (const auto& [name, f] : fenced_) out.push_back(f);
  return out;
}

Result<std::uint64_t> FailoverController::change_topology(TopologyChange change) {
  auto pending = std::make_unique<PendingChange>();
  pending->change = std::move(change);
  auto result = pending->done.get_future();
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return make_error("the proxy is stopping");
    changes_.push_back(std::move(pending));
  }
  cv_.notify_all();
  return result.get();
}

void FailoverController::run() {
  std::uint64_t seen_generation = 0;
  for (;;) {
    std::shared_ptr<const replication::HealthSnapshot> health;
    std::optional<Switchover> request;
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [&] {
        return stopping_ || !requests_.empty() || !changes_.empty() ||
               (latest_ && latest_->generation != seen_generation);
      });
      if (stopping_) {
        for (auto& c : changes_) c->done.set_value(make_error("the proxy is stopping"));
        changes_.clear();
        return;
      }
      if (!changes_.empty()) {
        auto pending = std::move(changes_.front());
        changes_.pop_front();
        lock.unlock();
        auto next = pending->change(record_);
        if (!next) {
          pending->done.set_value(next.error());
          continue;
        }
        auto published = publish_record(std::move(*next));
        if (published)
          pending->done.set_value(record_.version());
        else
          pending->done.set_value(published.error());
        continue;
      }
      health = latest_;
      if (!requests_.empty()) {
        request = requests_.front();
        requests_.pop_front();
      }
    }
    if (!health) health = monitor_.snapshot();
    seen_generation = health->generation;
    if (request) {
      switch_over(*request, *health);
      continue;
    }
    if (health->generation > 0) check(*health);
  }
}

void FailoverController::check(const replication::HealthSnapshot& health) {
  const router::Topology& topo = *ctx_.topology;
  const bool enabled = ctx_.failover_enabled;
  for (std::uint32_t s = 0; s < topo.shards.size(); ++s) {
    const auto a = replication::assess_shard(topo, health, s);
    if (a.verdict == replication::Verdict::Healthy) {
      last_reason_.erase(s);
      continue;
    }
    if (last_reason_[s] != a.reason) {
      last_reason_[s] = a.reason;
      log("shard " + topo.shards[s].name + ": " + a.reason +
          (a.verdict == replication::Verdict::Failover && !enabled
               ? " (failover is disabled in the config)"
               : ""));
    }
    if (a.verdict != replication::Verdict::Failover || !enabled) continue;
    if (auto it = retry_after_.find(s); it != retry_after_.end() && Clock::now() < it->second)
      continue;
    fail_over(s, a.candidate, health);
  }
  watch_fenced(health);
  retry_repoints(health);
  check_journal_support(health);
  trim_journal(health);
  if (enabled) keep_catch_up_points(health);
  if (enabled) restore_restarted_primaries(health);
}

// A MariaDB server reads read_only from its option file at start, and a
// promoted replica's file says ON (MariaDB has no SET PERSIST to change it
// from here). So a primary that restarts comes back refusing every write,
// though the topology names it primary. One that went down and came back
// read-only, replicating from nowhere, is made writable again. A primary an
// operator made read-only while it ran is left alone: it never went down.
void FailoverController::restore_restarted_primaries(const replication::HealthSnapshot& health) {
  const router::Topology& topo = *ctx_.topology;
  for (const auto& shard : topo.shards) {
    const std::uint32_t p = shard.primary;
    if (p >= health.backends.size()) continue;
    const auto& h = health.backends[p];
    if (!fresh(h)) {
      primary_went_down_.insert(p);
      continue;
    }
    if (!primary_went_down_.count(p)) continue;
    if (h.role != ObservedRole::Replica || h.replication_configured) {
      primary_went_down_.erase(p);  // back writable, or really a replica: not ours to change
      continue;
    }
    auto writable = ops_->unfence(address(p));
    log("shard " + shard.name + ": primary " + topo.backends[p].name + " came back read-only; " +
        (writable ? std::string("made it writable again")
                  : "could not make it writable: " + writable.error().message()));
    if (writable) primary_went_down_.erase(p);
  }
}

void FailoverController::fail_over(std::uint32_t shard, std::uint32_t candidate,
                                   const replication::HealthSnapshot& health) {
  const auto t0 = Clock::now();
  const router::Topology& topo = *ctx_.topology;
  const std::uint32_t old = topo.shards[shard].primary;
  FailoverReport r;
  r.shard = topo.shards[shard].name;
  r.kind = "automatic";
  r.old_primary = topo.backends[old].name;
  r.new_primary = topo.backends[candidate].name;
  r.started_unix_ms = unix_ms_now();
  const auto& last = health.backends[old].last_success;
  if (last != Clock::time_point{}) r.detect_ms = ms_between(last, t0);
  const std::uint64_t id = new_report(r);
  ctx_.failing_over[shard].store(true, std::memory_order_release);
  log("shard " + r.shard + ": failing over from " + r.old_primary + " to " + r.new_primary);

  cut_connections(old);
  const std::string fence_step = fence_dead_primary(old);
  update(id, [&](FailoverReport& rep) { rep.steps.push_back(fence_step); });
  const auto deadline = t0 + ctx_.failover_promote_timeout;
  auto promoted = ops_->promote(address(candidate), std::nullopt, deadline);
  if (!promoted) {
    ctx_.failing_over[shard].store(false, std::memory_order_release);
    retry_after_[shard] = Clock::now() + kRetryBackoff;
    log("shard " + r.shard + ": failover failed: " + promoted.error().message());
    update(id, [&](FailoverReport& rep) {
      rep.outcome = "failed";
      rep.error = promoted.error().message();
      rep.finished = true;
    });
    return;
  }
  update(id, [&](FailoverReport& rep) { rep.steps.push_back("promoted " + r.new_primary); });
  FailoverReport caught_up;
  catch_up_from_journal(shard, candidate, *promoted, caught_up);
  update(id, [&](FailoverReport& rep) { add_catch_up(rep, caught_up); });
  FailoverReport published;
  auto stored = publish_promotion(shard, candidate, published);
  ctx_.failing_over[shard].store(false, std::memory_order_release);
  const double promote_ms = ms_between(t0, Clock::now());
  if (!stored) {
    log("shard " + r.shard + ": " + stored.error().message());
    update(id, [&](FailoverReport& rep) { rep.error = stored.error().message(); });
  }
  promoted_position_[shard] = *promoted;
  last_report_[shard] = id;
  update(id, [&](FailoverReport& rep) {
    rep.promote_ms = promote_ms;
    rep.epoch = published.epoch;
    rep.topology_version = published.topology_version;
    rep.steps.push_back("published topology v" + std::to_string(published.topology_version));
  });
  log("shard " + r.shard + ": " + r.new_primary + " is the primary (epoch " +
      std::to_string(published.epoch) + "), " + std::to_string(static_cast<int>(r.detect_ms)) +
      " ms to detect, " + std::to_string(static_cast<int>(promote_ms)) + " ms to promote");
  FailoverReport repointed;
  repoint_replicas(shard, candidate, repointed);
  update(id, [&](FailoverReport& rep) {
    for (auto& step : repointed.steps) rep.steps.push_back(std::move(step));
    rep.outcome = "promoted";
    rep.finished = true;
  });
}

// A dead primary's connections mostly broke with it, but one cut off by a
// network partition leaves them hanging: statements in flight there get
// their error now, not when TCP gives up minutes later.
void FailoverController::cut_connections(std::uint32_t backend) {
  for (auto& w : ctx_.workers)
    asio::post(w->io(), [worker = w.get(), backend] { worker->abort_backend(backend); });
}

// A primary cut off by a network partition does not even refuse the
// connection: its fence would wait out the connect timeout (libpq: at
// least 2 s) before the promotion could start. It gets kFenceWait; then the
// promotion goes ahead and the fence keeps trying in the background. The
// proxy already sends the old primary nothing, and watch_fenced fences it
// whenever it answers again.
std::string FailoverController::fence_dead_primary(std::uint32_t backend) {
  constexpr auto kFenceWait = std::chrono::milliseconds(300);
  const std::string& name = ctx_.topology->backends[backend].name;
  if (background_fence_.valid()) background_fence_.wait();  // one at a time
  background_fence_ = std::async(std::launch::async, [ops = ops_.get(), server = address(backend)] {
    return ops->fence(server);
  });
  if (background_fence_.wait_for(kFenceWait) != std::future_status::ready)
    return "fencing " + name + ": no answer within " + std::to_string(kFenceWait.count()) +
           " ms (unreachable); the proxy no longer uses it and fences it when it answers";
  auto fenced = background_fence_.get();
  return fenced ? "fenced " + name
                : "could not fence " + name + " (" + fenced.error().message() +
                      "); the proxy no longer uses it";
}

void FailoverController::switch_over(const Switchover& request,
                                     const replication::HealthSnapshot& health) {
  const router::Topology& topo = *ctx_.topology;
  const std::uint32_t shard = request.shard;
  const std::uint32_t old = topo.shards[shard].primary;
  auto finish = [&](const std::string& error) {
    log("shard " + topo.shards[shard].name + ": switchover refused: " + error);
    update(request.id, [&](FailoverReport& rep) {
      rep.outcome = "failed";
      rep.error = error;
      rep.finished = true;
    });
  };
  std::optional<std::uint32_t> candidate;
  if (request.target.empty()) {
    candidate = replication::choose_candidate(topo, health, shard);
  } else {
    for (std::uint32_t b : topo.shards[shard].replicas)
      if (topo.backends[b].name == request.target) candidate = b;
  }
  if (!candidate || !fresh(health.backends[*candidate]) ||
      health.backends[*candidate].role != ObservedRole::Replica)
    return finish("no replica of shard " + topo.shards[shard].name +
                  " is reachable and replicating to promote");
  const auto t0 = Clock::now();
  update(request.id, [&](FailoverReport& rep) {
    rep.outcome = "running";
    rep.old_primary = topo.backends[old].name;
    rep.new_primary = topo.backends[*candidate].name;
  });
  ctx_.failing_over[shard].store(true, std::memory_order_release);
  // Statements already on the primary finish first (briefly); new ones wait.
  const auto drain_until = t0 + std::chrono::milliseconds(500);
  while (ctx_.outstanding[old].load(std::memory_order_relaxed) > 0 && Clock::now() < drain_until)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  auto resume = [&](const std::string& error) {
    ctx_.failing_over[shard].store(false, std::memory_order_release);
    finish(error);
  };
  if (auto f = ops_->fence(address(old)); !f) return resume(f.error().message());
  auto position = ops_->write_position(address(old));
  if (!position) {
    ops_->unfence(address(old));
    return resume(position.error().message());
  }
  const auto deadline = Clock::now() + ctx_.failover_promote_timeout;
  auto promoted = ops_->promote(address(*candidate), *position, deadline);
  if (!promoted) {
    ops_->unfence(address(old));
    return resume(promoted.error().message());
  }
  FailoverReport caught_up;
  catch_up_from_journal(shard, *candidate, *promoted, caught_up);
  FailoverReport published;
  auto stored = publish_promotion(shard, *candidate, published);
  ctx_.failing_over[shard].store(false, std::memory_order_release);
  const double pause_ms = ms_between(t0, Clock::now());
  if (!stored) {
    log("shard " + topo.shards[shard].name + ": " + stored.error().message());
    update(request.id, [&](FailoverReport& rep) { rep.error = stored.error().message(); });
  }
  promoted_position_[shard] = *promoted;
  last_report_[shard] = request.id;
  FailoverReport repointed;
  repoint_replicas(shard, *candidate, repointed);
  log("shard " + topo.shards[shard].name + ": switched over from " + topo.backends[old].name +
      " to " + topo.backends[*candidate].name + ", writes paused " +
      std::to_string(static_cast<int>(pause_ms)) + " ms");
  update(request.id, [&](FailoverReport& rep) {
    rep.steps.push_back("fenced " + rep.old_primary);
    rep.steps.push_back("promoted " + rep.new_primary + " at the old primary's last write");
    add_catch_up(rep, caught_up);
    rep.steps.push_back("published topology v" + std::to_string(published.topology_version));
    for (auto& step : repointed.steps) rep.steps.push_back(std::move(step));
    rep.promote_ms = pause_ms;
    rep.epoch = published.epoch;
    rep.topology_version = published.topology_version;
    rep.outcome = "promoted";
    rep.finished = true;
  });
}

Result<void> FailoverController::publish_promotion(std::uint32_t shard, std::uint32_t candidate,
                                                   FailoverReport& report) {
  const router::Topology& topo = *ctx_.topology;
  const std::string reason = "failover of shard " + topo.shards[shard].name + ": " +
                             topo.backends[topo.shards[shard].primary].name + " -> " +
                             topo.backends[candidate].name;
  auto next =
      promoted_record(record_, static_cast<int>(shard), topo.backends[candidate].name, reason);
  report.epoch = next.cluster().shards(static_cast<int>(shard)).epoch();
  report.topology_version = next.version();
  return publish_record(std::move(next));
}

// The data path gets the new version even when the store refuses it: the
// servers have already changed (a replica was promoted), and serving the old
// version would send writes to a fenced primary or, on the next round,
// promote a second replica. The error says the version is not durable.
Result<void> FailoverController::publish_record(config::TopologyRecord next) {
  Result<void> stored;
  if (store_) stored = store_->publish(next);
  record_ = std::move(next);
  auto t = std::make_shared<const router::Topology>(topology_from_record(record_));
  std::vector<bool> primaries(t->backends.size());
  for (const auto& b : t->backends) primaries[b.index] = b.role == router::MemberRole::Primary;
  ctx_.topology.publish(std::move(t));
  monitor_.set_primaries(std::move(primaries));
  if (!stored)
    return make_error("topology v" + std::to_string(record_.version()) +
                      " is served but could not be stored (a restart would go back to the last "
                      "stored version): " +
                      stored.error().message());
  return {};
}

// The journal holds every write the proxy acknowledged that some replica may
// lack. Those past what the new primary took over with exist nowhere else
// reachable: run them again there, in commit order, before any new write.
// They get new GTIDs, so they are forgotten under the old ones, replayed or
// not (a failure is reported: its client was told it committed).
void FailoverController::catch_up_from_journal(std::uint32_t shard, std::uint32_t new_primary,
                                               std::uint64_t took_over_at, FailoverReport& report) {
  journal_replayed_[shard].clear();
  if (!ctx_.journal) return;
  const router::Topology& topo = *ctx_.topology;
  const std::string& name = topo.backends[new_primary].name;
  // MariaDB: the entries past the GTID it took over at. PostgreSQL: every
  // entry of the shard, each asked of the new primary by transaction id
  // before any new write can reuse the id.
  const bool by_gtid = mysql();
  const std::uint64_t from = by_gtid ? took_over_at : 0;
  auto all = ctx_.journal->after(shard, from);
  const std::size_t held = all ? all->size() : 0;
  Result<std::vector<replication::journal::Entry>> entries =
      all ? ops_->lacking(address(new_primary), std::move(*all), took_over_at)
          : Result<std::vector<replication::journal::Entry>>(all.error());
  if (entries)
    log("shard " + topo.shards[shard].name + ": the write journal held " + std::to_string(held) +
        " transactions; " + name + " lacks " + std::to_string(entries->size()));
  if (!entries) {
    report.steps.push_back("could not read the write journal: " + entries.error().message());
    log("shard " + topo.shards[shard].name + ": " + report.steps.back());
    return;
  }
  for (const auto& e : *entries) {
    const config::User* user = ctx_.find_user(e.user());
    auto r =
        user ? ops_->replay(address(new_primary), e, user->server_user(), user->server_password())
             : Result<void>(make_error("replaying " + e.gtid() + ": user " + e.user() +
                                       " is no longer configured"));
    if (r) {
      journal_replayed_[shard].insert(by_gtid ? e.seq() : e.xid());
      ++report.journal_replayed;
      if (e.nondeterministic()) ++report.journal_replayed_nondeterministic;
    } else {
      ++report.journal_replay_failed;
      report.steps.push_back("journal: " + r.error().message());
      log("shard " + topo.shards[shard].name + ": " + r.error().message());
    }
  }
  ops_->replay_done();
  if (auto forgotten = ctx_.journal->forget_after(shard, from); !forgotten)
    log(forgotten.error().message());
  journal_trimmed_.erase(shard);
  watermarks_.erase(shard);
  if (entries->empty()) {
    report.steps.push_back("the write journal held nothing " + name + " lacked");
    return;
  }
  report.steps.push_back("replayed " + std::to_string(report.journal_replayed) +
                         " journaled writes " + name + " lacked" +
                         (report.journal_replay_failed
                              ? ", " + std::to_string(report.journal_replay_failed) + " failed"
                              : std::string()) +
                         (report.journal_replayed_nondeterministic
                              ? " (" + std::to_string(report.journal_replayed_nondeterministic) +
                                    " call functions replay cannot reproduce)"
                              : std::string()));
  log("shard " + topo.shards[shard].name + ": " + report.steps.back());
}

namespace {

// The lowest position the shard's answering replicas have received; none
// when none answers.
std::optional<std::uint64_t> lowest_received(const router::ShardInfo& shard,
                                             const replication::HealthSnapshot& health) {
  std::optional<std::uint64_t> low;
  for (std::uint32_t b : shard.replicas) {
    if (b >= health.backends.size() || !fresh(health.backends[b])) continue;
    const auto& h = health.backends[b];
    const std::uint64_t received = std::max(h.receive_lsn, h.lsn);
    low = std::min(low.value_or(received), received);
  }
  return low;
}

}  // namespace

// Every few seconds, each primary keeps readable what it committed past
// the point all its replicas have received: should it fail, that is what
// catch_up_from_old_primary will look for when it comes back. A shard
// without replicas cannot fail over and keeps nothing (a slot nobody
// advances would hold its WAL forever); one whose replicas all stopped
// answering keeps everything from where they were.
void FailoverController::keep_catch_up_points(const replication::HealthSnapshot& health) {
  constexpr auto kEvery = std::chrono::seconds(2);
  using Problems = std::vector<std::pair<std::string, std::string>>;  // (backend, problem)
  // On a thread of its own: a primary cut off by a partition the moment
  // before would hold a connect for seconds, and detection must not wait.
  if (catch_up_points_.valid()) {
    if (catch_up_points_.wait_for(std::chrono::seconds(0)) != std::future_status::ready) return;
    for (auto& [name, problem] : catch_up_points_.get()) {
      if (!problem.empty() && problem != catch_up_point_problem_[name])
        log("cannot keep what only " + name + " has readable for a catch-up: " + problem);
      catch_up_point_problem_[name] = std::move(problem);
    }
  }
  const router::Topology& topo = *ctx_.topology;
  std::vector<std::pair<replication::ServerAddress, std::uint64_t>> due;
  for (std::uint32_t s = 0; s < topo.shards.size(); ++s) {
    const auto& shard = topo.shards[s];
    const std::uint32_t p = shard.primary;
    if (shard.replicas.empty() || p >= health.backends.size() || !fresh(health.backends[p]) ||
        ctx_.failing_over[s].load(std::memory_order_acquire))
      continue;
    auto& next = catch_up_point_next_[s];
    if (Clock::now() < next) continue;
    next = Clock::now() + kEvery;
    if (const auto low = lowest_received(shard, health)) due.emplace_back(address(p), *low);
  }
  if (due.empty()) return;
  catch_up_points_ = std::async(std::launch::async, [ops = ops_.get(), due = std::move(due)] {
    Problems problems;
    for (const auto& [server, low] : due) {
      auto kept = ops->keep_catch_up_point(server, low);
      problems.emplace_back(server.name, kept ? "" : kept.error().message());
    }
    return problems;
  });
}

// Entries every answering, unfenced replica has received are not needed by
// any candidate. A replica that does not answer cannot be promoted, and
// catches up from the primary when it is back.
void FailoverController::trim_journal(const replication::HealthSnapshot& health) {
  if (!ctx_.journal) return;
  if (!mysql()) return trim_pg_journal(health);
  const router::Topology& topo = *ctx_.topology;
  for (std::uint32_t s = 0; s < topo.shards.size(); ++s) {
    std::optional<std::uint64_t> low = lowest_received(topo.shards[s], health);
    if (!low || *low == 0) continue;
    if (auto it = journal_trimmed_.find(s); it != journal_trimmed_.end() && it->second >= *low)
      continue;
    if (auto r = ctx_.journal->forget_through(s, *low); !r) {
      log(r.error().message());
      continue;
    }
    journal_trimmed_[s] = *low;
  }
}

// An entry numbered before a mark was acknowledged before the mark was
// taken; a primary WAL position read in a round that began after the mark
// covers its commit. A shard's entries below the mark are forgotten once
// every answering replica has received that position.
void FailoverController::trim_pg_journal(const replication::HealthSnapshot& health) {
  const router::Topology& topo = *ctx_.topology;
  std::optional<std::uint64_t> mark;  // the last one taken before this round began
  while (!marks_.empty() && marks_.front().first < health.round_started) {
    mark = marks_.front().second;
    marks_.pop_front();
  }
  for (std::uint32_t s = 0; s < topo.shards.size(); ++s) {
    auto& pending = watermarks_[s];
    const std::uint32_t p = topo.shards[s].primary;
    if (mark && p < health.backends.size()) {
      const auto& h = health.backends[p];
      if (fresh(h) && h.last_success >= health.round_started && h.lsn &&
          (pending.empty() || pending.back().first < *mark))
        pending.emplace_back(*mark, h.lsn);
    }
    std::optional<std::uint64_t> low = lowest_received(topo.shards[s], health);
    if (topo.shards[s].replicas.empty() && mark) low = UINT64_MAX;  // no replica will need it
    if (!low) continue;
    std::optional<std::uint64_t> below;
    while (!pending.empty() && pending.front().second <= *low) {
      below = pending.front().first;
      pending.pop_front();
    }
    if (!below || *below <= 1) continue;
    if (auto r = ctx_.journal->forget_through(s, *below - 1); !r) log(r.error().message());
  }
  marks_.emplace_back(Clock::now(), ctx_.journal->next_seq());
}

// The journal learns a commit's GTID from the OK packet only when the server
// tracks last_gtid; a server that does not would leave it empty, silently.
// Asked once per backend, when it first answers the monitor.
void FailoverController::check_journal_support(const replication::HealthSnapshot& health) {
  if (!ctx_.journal) return;
  const router::Topology& topo = *ctx_.topology;
  for (const auto& b : topo.backends) {
    if (b.index >= health.backends.size() || !fresh(health.backends[b.index]) ||
        !journal_checked_.insert(b.index).second)
      continue;
    auto r = ops_->check_journal(address(b.index));
    if (!r) log("write journal: " + r.error().message());
  }
}

void FailoverController::repoint_replicas(std::uint32_t shard, std::uint32_t new_primary,
                                          FailoverReport& report) {
  const router::Topology& topo = *ctx_.topology;
  for (std::uint32_t b : topo.shards[shard].replicas) {
    auto r = ops_->follow(address(b), address(new_primary), false, std::nullopt);
    report.steps.push_back(r ? topo.backends[b].name + " follows " + topo.backends[new_primary].name
                             : "could not repoint " + topo.backends[b].name + ": " +
                                   r.error().message());
    if (!r) {
      log("repointing " + topo.backends[b].name + ": " + r.error().message() +
          "; tried again when it answers");
      repoint_pending_[b] = Clock::now() + kRetryBackoff;
    }
  }
}

// A replica that was down (or would not listen) during a failover still
// replicates from the old primary when it comes back: it is repointed at the
// shard's current primary as soon as it answers.
void FailoverController::retry_repoints(const replication::HealthSnapshot& health) {
  const router::Topology& topo = *ctx_.topology;
  for (auto it = repoint_pending_.begin(); it != repoint_pending_.end();) {
    const std::uint32_t b = it->first;
    const auto& backend = topo.backends[b];
    const std::uint32_t primary = topo.shards[backend.shard].primary;
    if (primary == b || backend.fenced) {  // promoted since, or now watched as a fenced one
      it = repoint_pending_.erase(it);
      continue;
    }
    if (b >= health.backends.size() || !fresh(health.backends[b]) || Clock::now() < it->second) {
      ++it;
      continue;
    }
    auto r = ops_->follow(address(b), address(primary), false, std::nullopt);
    log(backend.name + (r ? " answers again and now follows " + topo.backends[primary].name
                          : " still cannot be repointed: " + r.error().message()));
    if (r) {
      it = repoint_pending_.erase(it);
    } else {
      it->second = Clock::now() + kRetryBackoff;
      ++it;
    }
  }
}

// A fenced old primary: fenced again whenever it comes back writable; a
// MariaDB one that holds nothing the new primary lacks is made to follow it;
// once it replicates from the new primary and has caught up, it serves reads.
void FailoverController::watch_fenced(const replication::HealthSnapshot& health) {
  const router::Topology& topo = *ctx_.topology;
  std::map<std::string, FencedBackend> now;
  for (const auto& b : topo.backends) {
    // A backend that rejoined starts afresh if it is ever fenced again.
    if (!b.fenced) {
      fence_tried_.erase(b.index);
      old_primary_caught_up_.erase(b.index);
    }
    if (!b.fenced || b.index >= health.backends.size()) continue;
    const auto& h = health.backends[b.index];
    const std::uint32_t primary = topo.shards[b.shard].primary;
    FencedBackend f{b.name, topo.shards[b.shard].name, "down", "pending"};
    if (auto done = old_primary_caught_up_.find(b.index); done != old_primary_caught_up_.end())
      f.catch_up = done->second;
    {
      std::lock_guard lock(mutex_);
      if (auto it = fenced_.find(b.name); it != fenced_.end()) f.status = it->second.status;
    }
    if (!fresh(h)) {
      fence_tried_[b.index] = false;
      f.status = "down";
      now[b.name] = f;
      continue;
    }
    if (h.role == ObservedRole::Replica && h.upstream_connected && h.lag_bytes &&
        *h.lag_bytes <= ctx_.failover_rejoin_lag) {
      auto stored = publish_record(rejoined_record(
          record_, b.name, b.name + " rejoined shard " + f.shard + " as a replica"));
      log(b.name + " rejoined shard " + f.shard + " as a replica of " +
          topo.backends[primary].name + (stored ? "" : "; " + stored.error().message()));
      continue;
    }
    if (!fence_tried_[b.index]) {
      fence_tried_[b.index] = true;
      if (h.role == ObservedRole::Primary) {
        auto fenced = ops_->fence(address(b.index));
        log(b.name + " is back and writable: " +
            (fenced ? std::string("fenced") : "could not fence it: " + fenced.error().message()));
      }
      std::optional<std::uint64_t> took_over_at;
      if (auto known = promoted_position_.find(b.shard); known != promoted_position_.end())
        took_over_at = known->second;
      // Once per fencing: what it applied would be applied twice.
      if (!old_primary_caught_up_.count(b.index)) {
        old_primary_caught_up_[b.index] =
            took_over_at ? catch_up_from_old_primary(b.index, primary, *took_over_at)
                         : "not possible: the proxy restarted since the failover and does not "
                           "know where the new primary took over";
        f.catch_up = old_primary_caught_up_[b.index];
      }
      auto follows = ops_->follow(address(b.index), address(primary), true, took_over_at);
      f.status = follows ? "rejoining: replicating from " + topo.backends[primary].name
                         : "fenced: " + follows.error().message();
      log(b.name + ": " + f.status);
    }
    now[b.name] = f;
  }
  std::lock_guard lock(mutex_);
  fenced_ = std::move(now);
}

std::string FailoverController::catch_up_from_old_primary(std::uint32_t backend,
                                                          std::uint32_t primary,
                                                          std::uint64_t took_over_at) {
  const router::Topology& topo = *ctx_.topology;
  const auto& b = topo.backends[backend];
  const std::string& shard = topo.shards[b.shard].name;
  auto r = ops_->catch_up_from_old_primary(address(backend), address(primary), took_over_at,
                                           journal_replayed_[b.shard]);
  if (!r) {
    log(b.name + ": cannot apply what only it had: " + r.error().message());
    return "not possible: " + r.error().message();
  }
  if (r->errant == 0) return "done";
  std::string step = b.name + " held " + std::to_string(r->errant) +
                     " transactions no replica received (" + std::to_string(r->skipped) +
                     " replayed from the journal); applied " + std::to_string(r->applied) + " on " +
                     topo.backends[primary].name + " from its own log";
  if (!r->failures.empty()) step += ", " + std::to_string(r->failures.size()) + " failed";
  log("shard " + shard + ": " + step);
  for (const auto& f : r->failures) log("shard " + shard + ": not applied: " + f);
  if (auto report = last_report_.find(b.shard); report != last_report_.end()) {
    update(report->second, [&](FailoverReport& rep) {
      rep.old_primary_applied += r->applied;
      rep.old_primary_apply_failed += r->failures.size();
      rep.steps.push_back(step);
      for (const auto& f : r->failures) rep.steps.push_back("not applied: " + f);
    });
  }
  return "done";
}

replication::ServerAddress FailoverController::address(std::uint32_t backend) const {
  const auto& b = ctx_.topology->backends[backend];
  return {b.name, b.host, b.port, b.unix_socket_dir, b.unix_socket};
}

std::uint64_t FailoverController::new_report(FailoverReport report) {
  std::lock_guard lock(mutex_);
  report.id = next_id_++;
  const std::uint64_t id = report.id;
  reports_.push_back(std::move(report));
  if (reports_.size() > kReportsKept) reports_.pop_front();
  return id;
}

void FailoverController::update(std::uint64_t id,
                                const std::function<void(FailoverReport&)>& change) {
  std::lock_guard lock(mutex_);
  for (auto& r : reports_)
    if (r.id == id) change(r);
}

void FailoverController::log(const std::string& line) const {
  std::fprintf(stderr, "shardgate: %s\n", line.c_str());
}

}  // namespace shardgate
