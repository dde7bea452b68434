// A network partition of one server on the loopback, for `shardctl drill
// failover --partition primary`: nftables rules drop every TCP packet to or
// from the server's port, both ways. Its connections hang (nothing resets
// them) and new ones time out, as when a machine drops off the network while
// it keeps running; Unix-socket connections are not cut.
#pragma once

#include <memory>

#include "common/result.h"

namespace shardgate::shardctl {

class PortPartition {
 public:
  // Cuts `port` off; needs root and nft (Debian package nftables).
  static Result<std::unique_ptr<PortPartition>> cut(int port);
  ~PortPartition();  // heals, if heal() did not

  PortPartition(const PortPartition&) = delete;
  PortPartition& operator=(const PortPartition&) = delete;

  Result<void> heal();

 private:
  explicit PortPartition(int port) : port_(port) {}
  int port_;
  bool healed_ = false;
};

}  // namespace shardgate::shardctl
