// Finishes what two-phase commits left behind: at start-up, before clients
// are served, every transaction an earlier run left prepared is committed
// (decision in the log) or rolled back (none); while running, a thread
// retries decided commits whose second phase failed (a shard was down) and
// forgets decisions once no shard holds their transaction.
#pragma once

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "replication/prepared_recovery.h"

namespace shardgate {
struct ProxyContext;
}

namespace shardgate::txn {

class Resolver {
 public:
  explicit Resolver(ProxyContext& ctx);  // ctx.decisions must be open
  ~Resolver();

  // One pass over every shard's primary; blocking.
  replication::RecoveryReport resolve_now();
  // A pass every `interval` while decisions wait.
  void start(std::chrono::milliseconds interval);
  void stop();

 private:
  void loop(std::chrono::milliseconds interval);

  ProxyContext& ctx_;
  std::vector<replication::RecoveryLogin> logins_;
  replication::RecoveryOptions options_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
};

// "2 committed, 1 rolled back; errors: ..." for the log.
std::string describe(const replication::RecoveryReport& report);

}  // namespace shardgate::txn
