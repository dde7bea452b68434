// A pool of server connections to one backend for one (user, database), owned
// by one I/O thread (so it needs no locks). Protocol-neutral: Conn is a server
// connection type with open(), a `state` and `idle_since` (PgServerConnection,
// MyServerConnection).
#pragma once

#include <boost/asio.hpp>
#include <chrono>
#include <list>
#include <memory>
#include <vector>

#include "common/result.h"
#include "proxy/backend/server_common.h"
#include "proxy/metrics.h"
#include "router/topology.h"

namespace shardgate::backend {

namespace asio = boost::asio;

struct PoolLimits {
  std::size_t max_size = 20;
  std::chrono::milliseconds acquire_timeout{5000};
  std::chrono::milliseconds connect_timeout{3000};
  std::chrono::milliseconds idle_timeout{60000};
};

// What the worker and the admin API see of any pool.
class PoolBase {
 public:
  virtual ~PoolBase() = default;
  virtual const router::BackendInfo& backend() const = 0;
  virtual std::size_t total() const = 0;
  virtual std::size_t idle() const = 0;
  virtual std::size_t waiting() const = 0;
  // Closes connections idle for longer than the idle timeout.
  virtual void close_expired(std::chrono::steady_clock::time_point now) = 0;
  // Closes the idle connections and resets the leased ones, whose sessions
  // see their pending and next operations fail: the backend was fenced.
  virtual void abort_all() = 0;
};

template <class Conn>
class Pool final : public PoolBase {
 public:
  Pool(asio::any_io_executor ex, router::BackendInfo backend, ServerLogin login, PoolLimits limits,
       Metrics& metrics)
      : ex_(ex),
        backend_(std::move(backend)),
        login_(std::move(login)),
        limits_(limits),
        metrics_(metrics) {}

  // A connection in state Active, or an error that says why not.
  asio::awaitable<Result<std::unique_ptr<Conn>>> acquire() {
    const auto deadline = std::chrono::steady_clock::now() + limits_.acquire_timeout;
    bool waited = false;
    for (;;) {
      if (!idle_.empty()) {
        auto c = std::move(idle_.back());
        idle_.pop_back();
        c->state = ServerState::Active;
        co_return c;
      }
      if (total_ < limits_.max_size) co_return co_await connect();
      if (!waited) bump(metrics_.pool_waits_total);
      waited = true;
      Waiter w{asio::steady_timer(ex_, deadline), nullptr, false};
      auto it = waiters_.insert(waiters_.end(), &w);
      co_await w.timer.async_wait(net_use_result());
      waiters_.erase(it);
      if (w.handed) co_return std::move(w.handed);
      if (!w.woken && std::chrono::steady_clock::now() >= deadline) {
        bump(metrics_.pool_timeouts_total);
        co_return make_error("timed out after " + std::to_string(limits_.acquire_timeout.count()) +
                             " ms waiting for a server connection to " + backend_.name +
                             " (pool size " + std::to_string(limits_.max_size) + ")");
      }
    }
  }

  // Returns a connection. Not reusable (broken, or in an unknown state): closed.
  void release(std::unique_ptr<Conn> c, bool reusable) {
    if (!reusable || c->state == ServerState::Broken || !c->socket().is_open()) {
      --total_;
      c.reset();
      wake_one();
      return;
    }
    c->state = ServerState::Idle;
    c->idle_since = std::chrono::steady_clock::now();
    for (Waiter* w : waiters_) {
      if (w->handed || w->woken) continue;
      c->state = ServerState::Active;
      w->handed = std::move(c);
      w->timer.cancel();
      return;
    }
    idle_.push_back(std::move(c));
  }

  // Closes idle connections: after a failure they are likely dead too.
  void drain_idle() {
    total_ -= idle_.size();
    idle_.clear();
  }

  void close_expired(std::chrono::steady_clock::time_point now) override {
    std::erase_if(idle_, [&](const std::unique_ptr<Conn>& c) {
      const bool expired = now - c->idle_since > limits_.idle_timeout;
      total_ -= expired;
      return expired;
    });
  }

  void abort_all() override {
    drain_idle();
    live_->abort_all();
  }

  const router::BackendInfo& backend() const override { return backend_; }
  std::size_t total() const override { return total_; }
  std::size_t idle() const override { return idle_.size(); }
  std::size_t waiting() const override { return waiters_.size(); }
  const ServerLogin& login() const { return login_; }

 private:
  struct Waiter {
    asio::steady_timer timer;
    std::unique_ptr<Conn> handed{};
    bool woken = false;  // a slot freed up: try again
  };

  static auto net_use_result() { return asio::as_tuple(asio::use_awaitable); }

  asio::awaitable<Result<std::unique_ptr<Conn>>> connect() {
    ++total_;
    auto c = std::make_unique<Conn>(ex_, backend_.index);
    c->live = LiveSockets::Membership(live_, &c->socket());
    bump(metrics_.server_connects_total);
    auto opened = co_await c->open(backend_, login_, limits_.connect_timeout);
    if (!opened) {
      --total_;
      bump(metrics_.server_connect_failures_total);
      drain_idle();
      wake_one();
      co_return opened.error();
    }
    c->state = ServerState::Active;
    co_return c;
  }

  void wake_one() {
    for (Waiter* w : waiters_) {
      if (w->handed || w->woken) continue;
      w->woken = true;
      w->timer.cancel();
      return;
    }
  }

  asio::any_io_executor ex_;
  router::BackendInfo backend_;
  ServerLogin login_;
  PoolLimits limits_;
  Metrics& metrics_;
  std::vector<std::unique_ptr<Conn>> idle_;
  std::shared_ptr<LiveSockets> live_ = std::make_shared<LiveSockets>();
  std::list<Waiter*> waiters_;
  std::size_t total_ = 0;
};

}  // namespace shardgate::backend
