// The topology the data path reads, swapped whole when the control plane
// (failover, later resharding) publishes a new version.
//
// Readers get a plain reference with one atomic load and no reference count:
// every version ever published stays alive until the process ends, so a
// session that read a version before a co_await may keep using it after a
// swap. A version is a few hundred bytes and versions come from failovers and
// reshards, a handful in a process's life: keeping them costs nothing and
// saves every statement an atomic shared_ptr copy.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "router/topology.h"

namespace shardgate {

class TopologyHandle {
 public:
  const router::Topology& operator*() const { return *get(); }
  const router::Topology* operator->() const { return get(); }
  const router::Topology* get() const { return current_.load(std::memory_order_acquire); }

  // Makes `next` current for every later read, from any thread.
  void publish(std::shared_ptr<const router::Topology> next) {
    std::lock_guard lock(mutex_);
    current_.store(next.get(), std::memory_order_release);
    kept_.push_back(std::move(next));
  }

 private:
  std::atomic<const router::Topology*> current_{nullptr};
  std::mutex mutex_;
  std::vector<std::shared_ptr<const router::Topology>> kept_;
};

}  // namespace shardgate
