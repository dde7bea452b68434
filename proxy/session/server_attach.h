// Finding a server connection for a round, whatever the protocol: the
// balancer picks a backend for the role, its pool gives a connection, one that
// looks dead is dropped and the next backend tried. What follows (session
// settings, prepared statements) is the protocol session's business.
#pragma once

#include <sys/socket.h>

#include <boost/asio.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "proxy/backend/pool.h"
#include "proxy/proxy_context.h"
#include "proxy/session/routing_state.h"

namespace shardgate::session {

// A pooled connection whose server went away has EOF (or an error packet)
// waiting; one non-blocking peek finds it before a statement is lost on it.
// Connections back in use within a millisecond skip the peek: under load that
// is one system call less per statement, and a server that died in that
// millisecond is reported to the client like any server lost mid-statement.
template <class Conn>
bool looks_alive(Conn& c) {
  if (std::chrono::steady_clock::now() - c.idle_since < std::chrono::milliseconds(1)) return true;
  char byte;
  const ssize_t n = ::recv(c.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

template <class Conn>
struct Attachment {
  std::unique_ptr<Conn> conn;
  backend::Pool<Conn>* pool = nullptr;
  router::TargetRole role = router::TargetRole::Primary;  // of the backend it came from
};

// The pools one session uses, by backend index (saves a keyed lookup per round).
template <class Conn>
struct SessionPools {
  std::vector<backend::Pool<Conn>*> by_backend;
  std::uint32_t variant = 0;

  backend::Pool<Conn>& get(Worker& worker, std::uint32_t backend, const config::User& user,
                           const std::string& database) {
    if (by_backend.size() <= backend)
      by_backend.resize(worker.ctx().topology->backends.size(), nullptr);
    if (by_backend[backend] == nullptr)
      by_backend[backend] = &worker.pool<Conn>(backend, user, database, variant);
    return *by_backend[backend];
  }
};

// A short sleep on the session's own executor (waiting for a failover).
inline asio::awaitable<void> pause_briefly() {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_after(std::chrono::milliseconds(20));
  co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
}

// Leases a connection for `role` on `shard`; a replica must have replayed
// `min_position` (read-your-writes). Counts the statement by route.
template <class Conn>
asio::awaitable<Result<Attachment<Conn>>> attach_server(Worker& worker, SessionPools<Conn>& pools,
                                                        const config::User& user,
                                                        const std::string& database,
                                                        router::TargetRole role,
                                                        std::uint32_t shard,
                                                        std::optional<std::uint64_t> min_position) {
  ProxyContext& ctx = worker.ctx();
  std::vector<std::uint32_t> excluded;
  std::string last_error = "no backend configured";
  // While the shard's primary is being replaced, or unreachable with
  // failover enabled, a statement for it waits (bounded) for the new one.
  // The clock is read only once a wait begins, not on every statement.
  std::optional<std::chrono::steady_clock::time_point> wait_until;
  auto may_wait = [&] {
    const auto now = std::chrono::steady_clock::now();
    if (!wait_until) wait_until = now + ctx.failover_write_wait;
    return now < *wait_until;
  };
  for (int attempt = 0; attempt < 6; ++attempt) {
    if (ctx.failing_over && ctx.failing_over[shard].load(std::memory_order_acquire) &&
        role == router::TargetRole::Primary && may_wait()) {
      co_await pause_briefly();
      --attempt;
      continue;
    }
    const auto min = role == router::TargetRole::Replica ? min_position : std::nullopt;
    const auto choice = worker.choose(shard, role, min, excluded);
    if (choice.fell_back_to_primary) bump(worker.metrics().replica_fallback_total);
    backend::Pool<Conn>& pool = pools.get(worker, choice.backend, user, database);
    auto lease = co_await pool.acquire();
    if (!lease) {
      last_error = lease.error().message();
      excluded.push_back(choice.backend);
      const bool primary = choice.backend == ctx.topology->shards[shard].primary;
      if (!primary) continue;  // another replica, or the primary, may serve
      if (ctx.failover_enabled && may_wait()) {
        // Failover may be about to replace it: ask the next topology.
        excluded.clear();
        co_await pause_briefly();
        --attempt;
        continue;
      }
      break;
    }
    std::unique_ptr<Conn> conn = std::move(*lease);
    if (!looks_alive(*conn)) {
      pool.release(std::move(conn), false);
      pool.drain_idle();
      continue;
    }
    Attachment<Conn> a;
    a.conn = std::move(conn);
    a.pool = &pool;
    a.role = ctx.topology->backends[choice.backend].role == router::MemberRole::Primary
                 ? router::TargetRole::Primary
                 : router::TargetRole::Replica;
    ctx.outstanding[choice.backend].fetch_add(1, std::memory_order_relaxed);
    if (ctx.served) ctx.served[choice.backend].fetch_add(1, std::memory_order_relaxed);
    bump(a.role == router::TargetRole::Primary ? worker.metrics().statements_primary_total
                                               : worker.metrics().statements_replica_total);
    co_return a;
  }
  if (ctx.failover_enabled && role == router::TargetRole::Primary)
    co_return make_error("the primary of shard " + ctx.topology->shards[shard].name +
                         " is unreachable (" + last_error +
                         ") and no failover replaced it within " +
                         std::to_string(ctx.failover_write_wait.count()) +
                         " ms; the proxy's log and /api/v1/failovers say why");
  co_return make_error("no server could take the statement: " + last_error);
}

// Gives a connection back; `reusable` false closes it.
template <class Conn>
void release_server(Worker& worker, Attachment<Conn>& a, bool reusable) {
  worker.ctx().outstanding[a.conn->backend_index()].fetch_sub(1, std::memory_order_relaxed);
  a.pool->release(std::move(a.conn), reusable);
  a.pool = nullptr;
}

// Leases one connection on each of `shards` for a read over several shards;
// role_of(shard) is routing's choice there, and each replica must have
// replayed that shard's read-your-writes position. On failure the ones
// already leased go back.
template <class Conn, class RoleOf>
asio::awaitable<Result<std::vector<Attachment<Conn>>>> attach_shards(
    Worker& worker, SessionPools<Conn>& pools, const config::User& user,
    const std::string& database, const std::vector<std::uint32_t>& shards,
    const RoutingState& routing, RoleOf role_of) {
  std::vector<Attachment<Conn>> out;
  out.reserve(shards.size());
  for (std::uint32_t shard : shards) {
    const router::TargetRole role = role_of(shard);
    auto a = co_await attach_server(worker, pools, user, database, role, shard,
                                    routing.replica_min_position(shard));
    if (!a) {
      for (auto& held : out) release_server(worker, held, true);
      co_return a.error();
    }
    out.push_back(std::move(*a));
  }
  co_return out;
}

}  // namespace shardgate::session
