#include "proxy/hot_key_watch.h"

#include <cstdio>
#include <string>

#include "proxy/proxy_context.h"

namespace shardgate {
namespace {

// Keys listed per report (hot ones are always listed on top of these).
constexpr std::size_t kTopKeys = 50;

std::string percent(double share) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", share * 100);
  return buf;
}

std::string describe(const router::HotKey& k, const router::Topology& t) {
  const std::string shard = k.shard < t.shards.size() ? t.shards[k.shard].name : "?";
  return k.table + " key " + k.key + " on shard " + shard + ": " +
         std::to_string(static_cast<long long>(k.rate)) + " statements/s, " + percent(k.share) +
         " of all, " + percent(k.shard_share) + " of its shard";
}

}  // namespace

HotKeyWatch::HotKeyWatch(ProxyContext& ctx, router::HotKeyThresholds thresholds,
                         std::chrono::milliseconds period)
    : ctx_(ctx),
      thresholds_(thresholds),
      period_(period),
      latest_(std::make_shared<const router::HotKeyReport>()) {}

HotKeyWatch::~HotKeyWatch() {
  stop();
}

void HotKeyWatch::start() {
  if (!ctx_.hot_keys || thread_.joinable()) return;
  thread_ = std::thread([this] { run(); });
}

void HotKeyWatch::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::shared_ptr<const router::HotKeyReport> HotKeyWatch::latest() const {
  std::lock_guard lock(mutex_);
  return latest_;
}

std::uint64_t HotKeyWatch::became_hot_total() const {
  std::lock_guard lock(mutex_);
  return became_hot_total_;
}

std::uint64_t HotKeyWatch::cooled_total() const {
  std::lock_guard lock(mutex_);
  return cooled_total_;
}

void HotKeyWatch::run() {
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, period_, [this] { return stopping_; })) {
    lock.unlock();
    evaluate_once();
    lock.lock();
  }
}

void HotKeyWatch::evaluate_once() {
  const double now =
      std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  std::vector<std::vector<router::HotKeyRecorder::ShardSample>> samples;
  for (const auto& w : ctx_.workers)
    if (const router::HotKeyRecorder* r = w->hot_key_recorder()) samples.push_back(r->sample(now));
  const auto topology = ctx_.topology.get();
  const auto previous = latest();
  auto report = std::make_shared<router::HotKeyReport>(router::evaluate_hot_keys(
      samples, *ctx_.hot_keys, thresholds_, *topology, *previous, kTopKeys));
  for (const auto& k : report->became_hot)
    std::fprintf(stderr, "shardgate: hot key: %s\n", describe(k, *topology).c_str());
  for (const auto& k : report->cooled)
    std::fprintf(stderr, "shardgate: hot key cooled down: %s\n", describe(k, *topology).c_str());
  if (report->hot != previous->hot) {
    auto ids = std::make_shared<const std::vector<std::uint64_t>>(report->hot);
    for (auto& w : ctx_.workers) {
      Worker* worker = w.get();
      asio::post(worker->io(), [worker, ids] { worker->set_hot_ids(ids); });
    }
  }
  std::lock_guard lock(mutex_);
  became_hot_total_ += report->became_hot.size();
  cooled_total_ += report->cooled.size();
  latest_ = std::move(report);
}

}  // namespace shardgate
