// What every client session does around its life, whatever its protocol:
// it counts as a client while it exists, and it must log in before a deadline.
#pragma once

#include <boost/asio.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "proxy/proxy_context.h"

namespace shardgate::session {

// Counts the client in the proxy's total (max_client_connections) and in the
// worker's gauge for as long as the session object exists.
class ClientSlot {
 public:
  explicit ClientSlot(Worker& worker) : worker_(worker) {
    worker_.ctx().clients.fetch_add(1, std::memory_order_relaxed);
    worker_.metrics().clients_connected.fetch_add(1, std::memory_order_relaxed);
    bump(worker_.metrics().client_connections_total);
  }
  ~ClientSlot() {
    worker_.ctx().clients.fetch_sub(1, std::memory_order_relaxed);
    worker_.metrics().clients_connected.fetch_sub(1, std::memory_order_relaxed);
  }
  ClientSlot(const ClientSlot&) = delete;
  ClientSlot& operator=(const ClientSlot&) = delete;

 private:
  Worker& worker_;
};

// A client that connects and never finishes logging in must not hold its
// slot forever: at the deadline its pending read is cancelled and
// `timed_out` set (it lives in the caller's coroutine frame, which outlives
// the timer). Session needs logging_in() and cancel_client_io().
template <class Session>
void arm_login_deadline(asio::steady_timer& deadline, std::weak_ptr<Session> weak,
                        bool& timed_out) {
  deadline.async_wait([weak = std::move(weak), &timed_out](boost::system::error_code ec) {
    auto s = weak.lock();
    if (ec || !s || !s->logging_in()) return;
    timed_out = true;
    s->cancel_client_io();
  });
}

// Allocates exactly what is asked, from the heap. An idle client's wait is
// bound to it: with std::allocator (or none) Asio would hand the wait a block
// from its per-thread recycling cache, sized for whatever operation used it
// before, and thousands of idle clients would each keep one.
template <class T>
struct ExactSizeAllocator {
  using value_type = T;
  ExactSizeAllocator() = default;
  template <class U>
  ExactSizeAllocator(const ExactSizeAllocator<U>&) {}
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) { ::operator delete(p, n * sizeof(T)); }
  template <class U>
  bool operator==(const ExactSizeAllocator<U>&) const {
    return true;
  }
};

inline std::string login_timeout_message(std::chrono::milliseconds limit) {
  return "login not completed within " + std::to_string(limit.count()) +
         " ms (limits.client_login_timeout_ms)";
}

}  // namespace shardgate::session
