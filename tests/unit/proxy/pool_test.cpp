// Unit tests of the pool's state machine (proxy/backend/pool.h) with a fake
// connection type: no sockets, only an io_context and timers.
#include "proxy/backend/pool.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <chrono>
#include <exception>
#include <memory>
#include <string>
#include <vector>

namespace shardgate::backend {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Stands in for PgServerConnection: open() succeeds or fails as the test says,
// optionally after a delay. Its socket is a real, unconnected one, so that
// the pool can see it closed.
struct FakeConn {
  static inline bool fail_open = false;
  static inline std::chrono::milliseconds open_delay{0};
  static inline int opens = 0;
  static inline int alive = 0;

  FakeConn(asio::any_io_executor ex, std::uint32_t backend_index)
      : executor(std::move(ex)), index(backend_index), sock(executor) {
    sock.open(asio::generic::stream_protocol(AF_UNIX, SOCK_STREAM));
    ++alive;
  }
  FakeConn(const FakeConn&) = delete;
  FakeConn& operator=(const FakeConn&) = delete;
  ~FakeConn() { --alive; }

  asio::awaitable<Result<void>> open(const router::BackendInfo& backend, const ServerLogin& login,
                                     std::chrono::milliseconds timeout) {
    ++opens;
    opened_backend = backend.name;
    opened_user = login.user;
    connect_timeout = timeout;
    if (open_delay > 0ms) {
      asio::steady_timer t(executor, open_delay);
      co_await t.async_wait(asio::use_awaitable);
    }
    if (fail_open) co_return make_error("connection refused by " + backend.name);
    co_return Result<void>{};
  }

  asio::generic::stream_protocol::socket& socket() { return sock; }

  ServerState state = ServerState::Connecting;
  Clock::time_point idle_since{};

  asio::any_io_executor executor;
  std::uint32_t index;
  std::string opened_backend;
  std::string opened_user;
  std::chrono::milliseconds connect_timeout{0};
  asio::generic::stream_protocol::socket sock;
  LiveSockets::Membership live;
};

using FakePool = Pool<FakeConn>;
using Lease = std::unique_ptr<FakeConn>;

// What one acquire() gave, filled in when it completes.
struct Outcome {
  bool done = false;
  Result<Lease> result = make_error("acquire not finished");
  Clock::duration took{};
  FakeConn* conn() const { return result.has_value() ? result->get() : nullptr; }
  std::string error() const { return result.has_value() ? "" : result.error().message(); }
};

asio::awaitable<void> acquire_into(FakePool* pool, Outcome* out) {
  const auto start = Clock::now();
  out->result = co_await pool->acquire();
  out->took = Clock::now() - start;
  out->done = true;
}

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

// Acquires, holds the connection for `hold`, then releases it.
asio::awaitable<void> hold_and_release(FakePool* pool, Outcome* out, std::chrono::milliseconds hold,
                                       bool reusable) {
  co_await acquire_into(pool, out);
  if (!out->result.has_value()) co_return;
  co_await sleep_for(hold);
  pool->release(std::move(*out->result), reusable);
}

void rethrow(std::exception_ptr e) {
  if (e) std::rethrow_exception(e);
}

class PoolTest : public ::testing::Test {
 protected:
  PoolTest() {
    FakeConn::fail_open = false;
    FakeConn::open_delay = 0ms;
    FakeConn::opens = 0;
    FakeConn::alive = 0;
    backend_.index = 3;
    backend_.name = "s0-primary";
    backend_.host = "10.0.0.1";
    backend_.port = 5432;
  }

  std::unique_ptr<FakePool> make_pool(std::size_t max_size,
                                      std::chrono::milliseconds acquire_timeout = 2000ms) {
    PoolLimits limits;
    limits.max_size = max_size;
    limits.acquire_timeout = acquire_timeout;
    limits.connect_timeout = 1234ms;
    limits.idle_timeout = 1000ms;
    return std::make_unique<FakePool>(ctx_.get_executor(), backend_,
                                      ServerLogin{"server_user", "pw", "app"}, limits, metrics_);
  }

  void spawn(asio::awaitable<void> a) { asio::co_spawn(ctx_, std::move(a), rethrow); }

  // Runs everything spawned until nothing is left to do.
  void run() {
    ctx_.run();
    ctx_.restart();
  }

  // Runs one acquire to completion.
  Outcome acquire(FakePool& pool) {
    Outcome o;
    spawn(acquire_into(&pool, &o));
    run();
    EXPECT_TRUE(o.done);
    return o;
  }

  asio::io_context ctx_;
  Metrics metrics_;
  router::BackendInfo backend_;
};

TEST_F(PoolTest, AcquireOpensConnectionsUpToMaxSize) {
  auto pool = make_pool(2, 50ms);
  Outcome a = acquire(*pool);
  Outcome b = acquire(*pool);
  ASSERT_NE(a.conn(), nullptr) << a.error();
  ASSERT_NE(b.conn(), nullptr) << b.error();
  EXPECT_NE(a.conn(), b.conn());
  EXPECT_EQ(a.conn()->state, ServerState::Active);
  EXPECT_EQ(a.conn()->index, 3u);
  EXPECT_EQ(a.conn()->opened_backend, "s0-primary");
  EXPECT_EQ(a.conn()->opened_user, "server_user");
  EXPECT_EQ(a.conn()->connect_timeout, 1234ms);
  EXPECT_EQ(pool->total(), 2u);
  EXPECT_EQ(pool->idle(), 0u);
  EXPECT_EQ(FakeConn::opens, 2);
  EXPECT_EQ(metrics_.server_connects_total.load(), 2u);
  EXPECT_EQ(metrics_.pool_waits_total.load(), 0u);

  // The third one has to wait, and nobody releases.
  Outcome c = acquire(*pool);
  EXPECT_EQ(c.conn(), nullptr);
  EXPECT_EQ(FakeConn::opens, 2);
  EXPECT_EQ(pool->total(), 2u);
}

TEST_F(PoolTest, ReleasedReusableConnectionIsReused) {
  auto pool = make_pool(4);
  Outcome a = acquire(*pool);
  ASSERT_NE(a.conn(), nullptr) << a.error();
  FakeConn* first = a.conn();
  const auto before = Clock::now();
  pool->release(std::move(*a.result), true);
  EXPECT_EQ(first->state, ServerState::Idle);
  EXPECT_GE(first->idle_since, before);
  EXPECT_EQ(pool->idle(), 1u);
  EXPECT_EQ(pool->total(), 1u);

  Outcome b = acquire(*pool);
  EXPECT_EQ(b.conn(), first);
  EXPECT_EQ(b.conn()->state, ServerState::Active);
  EXPECT_EQ(FakeConn::opens, 1);  // no new connection
  EXPECT_EQ(metrics_.server_connects_total.load(), 1u);
  EXPECT_EQ(pool->idle(), 0u);
  EXPECT_EQ(pool->total(), 1u);
}

TEST_F(PoolTest, ReleaseNotReusableClosesAndFreesTheSlot) {
  auto pool = make_pool(1, 50ms);
  Outcome a = acquire(*pool);
  ASSERT_NE(a.conn(), nullptr) << a.error();
  pool->release(std::move(*a.result), false);
  EXPECT_EQ(pool->total(), 0u);
  EXPECT_EQ(pool->idle(), 0u);
  EXPECT_EQ(FakeConn::alive, 0);  // closed

  Outcome b = acquire(*pool);
  ASSERT_NE(b.conn(), nullptr) << b.error();
  EXPECT_EQ(FakeConn::opens, 2);
  EXPECT_EQ(pool->total(), 1u);
  EXPECT_EQ(metrics_.pool_waits_total.load(), 0u);
}

TEST_F(PoolTest, BrokenConnectionIsClosedEvenIfCalledReusable) {
  auto pool = make_pool(2);
  Outcome a = acquire(*pool);
  ASSERT_NE(a.conn(), nullptr) << a.error();
  a.conn()->state = ServerState::Broken;
  pool->release(std::move(*a.result), true);
  EXPECT_EQ(pool->total(), 0u);
  EXPECT_EQ(pool->idle(), 0u);
  EXPECT_EQ(FakeConn::alive, 0);
}

TEST_F(PoolTest, WaiterGetsTheConnectionReleasedByAnotherCoroutine) {
  auto pool = make_pool(1, 2000ms);
  Outcome holder, waiter;
  std::size_t waiting_seen = 0;
  spawn([](FakePool* pool, Outcome* holder, Outcome* waiter,
           std::size_t* waiting_seen) -> asio::awaitable<void> {
    co_await acquire_into(pool, holder);
    auto ex = co_await asio::this_coro::executor;
    asio::co_spawn(ex, acquire_into(pool, waiter), rethrow);
    co_await sleep_for(30ms);
    *waiting_seen = pool->waiting();
    pool->release(std::move(*holder->result), true);
  }(pool.get(), &holder, &waiter, &waiting_seen));
  run();

  ASSERT_TRUE(holder.done);
  ASSERT_TRUE(waiter.done);
  EXPECT_EQ(waiting_seen, 1u);
  ASSERT_NE(waiter.conn(), nullptr) << waiter.error();
  EXPECT_EQ(waiter.conn()->state, ServerState::Active);
  EXPECT_EQ(FakeConn::opens, 1);  // handed over, not reopened
  EXPECT_EQ(FakeConn::alive, 1);
  EXPECT_GE(waiter.took, 25ms);
  EXPECT_LT(waiter.took, 1500ms);
  EXPECT_EQ(pool->waiting(), 0u);
  EXPECT_EQ(pool->idle(), 0u);
  EXPECT_EQ(pool->total(), 1u);
  EXPECT_EQ(metrics_.pool_waits_total.load(), 1u);
  EXPECT_EQ(metrics_.pool_timeouts_total.load(), 0u);
}

TEST_F(PoolTest, NotReusableReleaseLetsAWaiterOpenANewConnection) {
  auto pool = make_pool(1, 2000ms);
  Outcome holder, waiter;
  spawn(hold_and_release(pool.get(), &holder, 30ms, false));
  spawn([](FakePool* pool, Outcome* waiter) -> asio::awaitable<void> {
    co_await sleep_for(5ms);  // the holder has the only slot by now
    co_await acquire_into(pool, waiter);
  }(pool.get(), &waiter));
  run();

  ASSERT_NE(waiter.conn(), nullptr) << waiter.error();
  EXPECT_EQ(FakeConn::opens, 2);
  EXPECT_EQ(FakeConn::alive, 1);
  EXPECT_LT(waiter.took, 1500ms);
  EXPECT_EQ(pool->total(), 1u);
  EXPECT_EQ(metrics_.pool_waits_total.load(), 1u);
  EXPECT_EQ(metrics_.pool_timeouts_total.load(), 0u);
}

TEST_F(PoolTest, WaitersAreServedInArrivalOrder) {
  auto pool = make_pool(1, 2000ms);
  Outcome holder, first, second;
  std::vector<int> order;
  spawn(hold_and_release(pool.get(), &holder, 20ms, true));
  spawn([](FakePool* pool, Outcome* out, std::vector<int>* order) -> asio::awaitable<void> {
    co_await sleep_for(2ms);
    co_await acquire_into(pool, out);
    order->push_back(1);
    co_await sleep_for(20ms);
    pool->release(std::move(*out->result), true);
  }(pool.get(), &first, &order));
  spawn([](FakePool* pool, Outcome* out, std::vector<int>* order) -> asio::awaitable<void> {
    co_await sleep_for(8ms);
    co_await acquire_into(pool, out);
    order->push_back(2);
  }(pool.get(), &second, &order));
  run();

  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  ASSERT_NE(second.conn(), nullptr) << second.error();
  EXPECT_EQ(FakeConn::opens, 1);
  EXPECT_EQ(metrics_.pool_waits_total.load(), 2u);
  EXPECT_EQ(metrics_.pool_timeouts_total.load(), 0u);
}

TEST_F(PoolTest, WaiterTimesOut) {
  auto pool = make_pool(1, 40ms);
  Outcome holder = acquire(*pool);
  ASSERT_NE(holder.conn(), nullptr) << holder.error();

  Outcome waiter = acquire(*pool);
  ASSERT_TRUE(waiter.done);
  EXPECT_EQ(waiter.conn(), nullptr);
  const std::string e = waiter.error();
  EXPECT_NE(e.find("timed out"), std::string::npos) << e;
  EXPECT_NE(e.find("s0-primary"), std::string::npos) << e;
  EXPECT_GE(waiter.took, 40ms);
  EXPECT_EQ(pool->waiting(), 0u);
  EXPECT_EQ(pool->total(), 1u);
  EXPECT_EQ(FakeConn::opens, 1);
  EXPECT_EQ(metrics_.pool_waits_total.load(), 1u);
  EXPECT_EQ(metrics_.pool_timeouts_total.load(), 1u);

  // A release after the timeout keeps the connection idle for the next one.
  pool->release(std::move(*holder.result), true);
  EXPECT_EQ(pool->idle(), 1u);
  Outcome next = acquire(*pool);
  EXPECT_NE(next.conn(), nullptr) << next.error();
  EXPECT_EQ(metrics_.pool_waits_total.load(), 1u);
  EXPECT_EQ(metrics_.pool_timeouts_total.load(), 1u);
}

TEST_F(PoolTest, OpenFailureReturnsTheErrorWithoutLeakingASlot) {
  auto pool = make_pool(1, 50ms);
  FakeConn::fail_open = true;
  Outcome a = acquire(*pool);
  EXPECT_EQ(a.conn(), nullptr);
  EXPECT_NE(a.error().find("connection refused by s0-primary"), std::string::npos) << a.error();
  EXPECT_EQ(pool->total(), 0u);
  EXPECT_EQ(FakeConn::alive, 0);
  EXPECT_EQ(metrics_.server_connects_total.load(), 1u);
  EXPECT_EQ(metrics_.server_connect_failures_total.load(), 1u);

  FakeConn::fail_open = false;
  Outcome b = acquire(*pool);  // the slot is free again: no wait, no timeout
  ASSERT_NE(b.conn(), nullptr) << b.error();
  EXPECT_EQ(pool->total(), 1u);
  EXPECT_EQ(metrics_.pool_waits_total.load(), 0u);
  EXPECT_EQ(metrics_.pool_timeouts_total.load(), 0u);
  EXPECT_EQ(metrics_.server_connect_failures_total.load(), 1u);
}

TEST_F(PoolTest, OpenFailureWakesAWaiter) {
  auto pool = make_pool(1, 2000ms);
  FakeConn::fail_open = true;
  FakeConn::open_delay = 20ms;
  Outcome first, second;
  spawn(acquire_into(pool.get(), &first));
  spawn([](FakePool* pool, Outcome* out) -> asio::awaitable<void> {
    co_await sleep_for(5ms);  // the first is connecting: the pool is full
    co_await acquire_into(pool, out);
  }(pool.get(), &second));
  run();

  ASSERT_TRUE(first.done);
  ASSERT_TRUE(second.done);
  EXPECT_NE(first.error().find("connection refused"), std::string::npos) << first.error();
  // The waiter is woken by the failure and tries itself, well before its timeout.
  EXPECT_NE(second.error().find("connection refused"), std::string::npos) << second.error();
  EXPECT_LT(second.took, 1000ms);
  EXPECT_EQ(pool->total(), 0u);
  EXPECT_EQ(pool->waiting(), 0u);
  EXPECT_EQ(FakeConn::alive, 0);
  EXPECT_EQ(metrics_.pool_waits_total.load(), 1u);
  EXPECT_EQ(metrics_.pool_timeouts_total.load(), 0u);
  EXPECT_EQ(metrics_.server_connect_failures_total.load(), 2u);
}

TEST_F(PoolTest, OpenFailureDrainsIdleConnections) {
  auto pool = make_pool(3, 2000ms);
  Outcome held = acquire(*pool);
  ASSERT_NE(held.conn(), nullptr) << held.error();
  FakeConn::fail_open = true;
  FakeConn::open_delay = 20ms;
  Outcome failing;
  spawn(acquire_into(pool.get(), &failing));  // opens a second connection, slowly
  spawn([](FakePool* pool, Outcome* held) -> asio::awaitable<void> {
    co_await sleep_for(5ms);
    pool->release(std::move(*held->result), true);  // idle while the open is pending
  }(pool.get(), &held));
  run();

  EXPECT_FALSE(failing.result.has_value());
  EXPECT_EQ(pool->idle(), 0u);
  EXPECT_EQ(pool->total(), 0u);
  EXPECT_EQ(FakeConn::alive, 0);
}

TEST_F(PoolTest, DrainIdleClosesOnlyIdleConnections) {
  auto pool = make_pool(3);
  Outcome a = acquire(*pool), b = acquire(*pool), c = acquire(*pool);
  ASSERT_EQ(pool->total(), 3u);
  pool->release(std::move(*a.result), true);
  pool->release(std::move(*b.result), true);
  EXPECT_EQ(pool->idle(), 2u);
  pool->drain_idle();
  EXPECT_EQ(pool->idle(), 0u);
  EXPECT_EQ(pool->total(), 1u);
  EXPECT_EQ(FakeConn::alive, 1);
  pool->release(std::move(*c.result), true);
  EXPECT_EQ(pool->total(), 1u);
  pool->drain_idle();
  EXPECT_EQ(pool->total(), 0u);
  EXPECT_EQ(FakeConn::alive, 0);
}

// A fenced backend: idle connections close, leased ones have their sockets
// reset under their sessions, and none goes back to the pool after.
TEST_F(PoolTest, AbortAllResetsLeasedConnectionsAndClosesIdleOnes) {
  auto pool = make_pool(3);
  Outcome a = acquire(*pool), b = acquire(*pool);
  pool->release(std::move(*a.result), true);
  ASSERT_EQ(pool->idle(), 1u);
  FakeConn* leased = b.conn();
  ASSERT_TRUE(leased->socket().is_open());

  pool->abort_all();
  EXPECT_EQ(pool->idle(), 0u);
  EXPECT_EQ(FakeConn::alive, 1);
  EXPECT_FALSE(leased->socket().is_open()) << "a statement in flight there would wait on";

  pool->release(std::move(*b.result), true);  // its session thinks it is fine
  EXPECT_EQ(pool->idle(), 0u) << "a reset connection went back to the pool";
  EXPECT_EQ(pool->total(), 0u);
  EXPECT_EQ(FakeConn::alive, 0);

  Outcome c = acquire(*pool);  // new connections work as before
  ASSERT_NE(c.conn(), nullptr);
  EXPECT_TRUE(c.conn()->socket().is_open());
}

TEST_F(PoolTest, CloseExpiredClosesConnectionsIdlePastTheTimeout) {
  auto pool = make_pool(3);  // idle timeout 1000 ms
  Outcome a = acquire(*pool), b = acquire(*pool), c = acquire(*pool);
  FakeConn* old_one = a.conn();
  FakeConn* fresh = b.conn();
  pool->release(std::move(*a.result), true);
  pool->release(std::move(*b.result), true);
  const auto now = Clock::now();
  old_one->idle_since = now - 1500ms;
  fresh->idle_since = now - 1000ms;  // exactly at the timeout: kept

  pool->close_expired(now);
  EXPECT_EQ(pool->idle(), 1u);
  EXPECT_EQ(pool->total(), 2u);
  EXPECT_EQ(FakeConn::alive, 2);

  Outcome again = acquire(*pool);  // the one left is the fresh one
  EXPECT_EQ(again.conn(), fresh);
  pool->release(std::move(*again.result), true);

  pool->close_expired(Clock::now() + 1001ms);
  EXPECT_EQ(pool->idle(), 0u);
  EXPECT_EQ(pool->total(), 1u);  // c is still leased
  EXPECT_EQ(c.conn()->state, ServerState::Active);
}

}  // namespace
}  // namespace shardgate::backend
