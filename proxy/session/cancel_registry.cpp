#include "proxy/session/cancel_registry.h"

namespace shardgate::session {
namespace {
std::uint64_t pack(CancelRegistry::Key k) {
  return (std::uint64_t{k.pid} << 32) | k.secret;
}
}  // namespace

CancelRegistry::Key CancelRegistry::add(CancelHook hook) {
  std::lock_guard lock(mutex_);
  Key k;
  do {
    k.pid = next_pid_++;
    if (next_pid_ == 0) next_pid_ = 1;
    k.secret = static_cast<std::uint32_t>(random_());
  } while (sessions_.count(pack(k)));
  sessions_.emplace(pack(k), std::move(hook));
  return k;
}

void CancelRegistry::remove(Key key) {
  std::lock_guard lock(mutex_);
  sessions_.erase(pack(key));
}

bool CancelRegistry::cancel(Key key) {
  CancelHook hook;
  {
    std::lock_guard lock(mutex_);
    auto it = sessions_.find(pack(key));
    if (it == sessions_.end()) return false;
    hook = it->second;
  }
  hook();
  return true;
}

}  // namespace shardgate::session
