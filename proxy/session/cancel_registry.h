// Maps the (pid, key) pair the proxy gave a client in BackendKeyData to that
// client's session, so that a CancelRequest arriving on another connection (and
// maybe another thread) reaches the server currently running its statement.
// MySQL clients know only the connection id (the pid) from the greeting and
// cancel with KILL QUERY <id>, which the proxy allows to the same user.
// Locked only at client connect, disconnect and cancel: never per statement.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>

namespace shardgate::session {

class CancelRegistry {
 public:
  // Called on a cancel: runs on the session's own thread (the callback posts itself there).
  // whole_connection: MySQL's KILL [CONNECTION] ends the client too.
  using CancelHook = std::function<void(bool whole_connection)>;

  struct Key {
    std::uint32_t pid = 0;
    std::uint32_t secret = 0;
  };

  Key add(CancelHook hook);
  void remove(Key key);
  // Returns false when no session holds that key (or the secret is wrong).
  bool cancel(Key key);

  // The user that owns a session, once it logged in (MySQL KILL checks it).
  void set_owner(std::uint32_t pid, std::string owner);
  // Cancels by pid when `owner` owns it; false when no such session is owned by them.
  bool cancel_owned(std::uint32_t pid, std::string_view owner, bool whole_connection);

 private:
  struct Entry {
    std::uint32_t secret = 0;
    std::string owner;
    CancelHook hook;
  };
  std::mutex mutex_;
  std::unordered_map<std::uint32_t, Entry> sessions_;  // by pid
  std::uint32_t next_pid_ = 1;
  std::mt19937 random_{std::random_device{}()};
};

}  // namespace shardgate::session
