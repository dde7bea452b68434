// Maps the (pid, key) pair the proxy gave a client in BackendKeyData to that
// client's session, so that a CancelRequest arriving on another connection (and
// maybe another thread) reaches the server currently running its statement.
// Locked only at client connect, disconnect and cancel: never per statement.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <random>
#include <unordered_map>

namespace shardgate::session {

class CancelRegistry {
 public:
  // Called on a cancel: runs on the session's own thread (the callback posts itself there).
  using CancelHook = std::function<void()>;

  struct Key {
    std::uint32_t pid = 0;
    std::uint32_t secret = 0;
  };

  Key add(CancelHook hook);
  void remove(Key key);
  // Returns false when no session holds that key (or the secret is wrong).
  bool cancel(Key key);

 private:
  std::mutex mutex_;
  std::unordered_map<std::uint64_t, CancelHook> sessions_;
  std::uint32_t next_pid_ = 1;
  std::mt19937 random_{std::random_device{}()};
};

}  // namespace shardgate::session
