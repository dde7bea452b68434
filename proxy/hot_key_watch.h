// The control-plane side of hot-key detection: a thread that, every period,
// samples each worker's HotKeyRecorder, merges the samples into a report
// (router::evaluate_hot_keys), logs keys that became hot or cooled down,
// keeps the report for the admin API and metrics, and hands the hot ids to
// every worker on its own thread (reads of those keys may spread over
// replicas, router/topology.h spread_hot_reads).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>

#include "router/hot_keys.h"

namespace shardgate {

struct ProxyContext;

class HotKeyWatch {
 public:
  HotKeyWatch(ProxyContext& ctx, router::HotKeyThresholds thresholds,
              std::chrono::milliseconds period = std::chrono::milliseconds(250));
  ~HotKeyWatch();

  void start();
  void stop();

  // The last report; an empty one before the first.
  std::shared_ptr<const router::HotKeyReport> latest() const;
  // Keys that became hot, and that cooled down, since start.
  std::uint64_t became_hot_total() const;
  std::uint64_t cooled_total() const;
  const router::HotKeyThresholds& thresholds() const { return thresholds_; }

 private:
  void run();
  void evaluate_once();

  ProxyContext& ctx_;
  router::HotKeyThresholds thresholds_;
  std::chrono::milliseconds period_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::shared_ptr<const router::HotKeyReport> latest_;
  std::uint64_t became_hot_total_ = 0;
  std::uint64_t cooled_total_ = 0;
  std::thread thread_;
};

}  // namespace shardgate
