#include "proxy/session/cancel_registry.h"

namespace shardgate::session {

CancelRegistry::Key CancelRegistry::add(CancelHook hook) {
  std::lock_guard lock(mutex_);
  Key k;
  do {
    k.pid = next_pid_++;
    if (next_pid_ == 0) next_pid_ = 1;
  } while (sessions_.count(k.pid));
  k.secret = static_cast<std::uint32_t>(random_());
  sessions_.emplace(k.pid, Entry{k.secret, {}, std::move(hook)});
  return k;
}

void CancelRegistry::remove(Key key) {
  std::lock_guard lock(mutex_);
  auto it = sessions_.find(key.pid);
  if (it != sessions_.end() && it->second.secret == key.secret) sessions_.erase(it);
}

bool CancelRegistry::cancel(Key key) {
  CancelHook hook;
  {
    std::lock_guard lock(mutex_);
    auto it = sessions_.find(key.pid);
    if (it == sessions_.end() || it->second.secret != key.secret) return false;
    hook = it->second.hook;
  }
  hook(false);
  return true;
}

void CancelRegistry::set_owner(std::uint32_t pid, std::string owner) {
  std::lock_guard lock(mutex_);
  auto it = sessions_.find(pid);
  if (it != sessions_.end()) it->second.owner = std::move(owner);
}

bool CancelRegistry::cancel_owned(std::uint32_t pid, std::string_view owner,
                                  bool whole_connection) {
  CancelHook hook;
  {
    std::lock_guard lock(mutex_);
    auto it = sessions_.find(pid);
    if (it == sessions_.end() || it->second.owner.empty() || it->second.owner != owner)
      return false;
    hook = it->second.hook;
  }
  hook(whole_connection);
  return true;
}

}  // namespace shardgate::session
