#include "tools/shardctl/partition.h"

#include <string>

#include "common/process.h"

namespace shardgate::shardctl {
namespace {

// One table per port, so that two drills on two sandboxes do not meet, and
// a table left behind by a killed drill is found by its name and replaced.
std::string table_of(int port) {
  return "shardgate_drill_partition_" + std::to_string(port);
}

Result<ProcessResult> nft(const std::string& script) {
  return run_process({"nft", script}, RunOptions{std::nullopt, std::chrono::seconds(10)});
}

}  // namespace

Result<std::unique_ptr<PortPartition>> PortPartition::cut(int port) {
  const std::string table = table_of(port);
  const std::string p = std::to_string(port);
  // Loopback packets pass the output hook once, whichever side sends them.
  const std::string script = "add table inet " + table + "; delete table inet " + table +
                             "; add table inet " + table + "; add chain inet " + table +
                             " out { type filter hook output priority 0 ; }; add rule inet " +
                             table + " out tcp dport " + p + " drop; add rule inet " + table +
                             " out tcp sport " + p + " drop";
  auto ran = nft(script);
  if (!ran)
    return make_error("--partition needs nft (Debian package nftables): " + ran.error().message());
  if (ran->exit_code != 0)
    return make_error("nft could not cut port " + p + " off (it needs root): " + ran->output);
  return std::unique_ptr<PortPartition>(new PortPartition(port));
}

Result<void> PortPartition::heal() {
  if (healed_) return {};
  auto ran = nft("delete table inet " + table_of(port_));
  if (!ran) return ran.error();
  if (ran->exit_code != 0)
    return make_error("nft could not heal the partition of port " + std::to_string(port_) + ": " +
                      ran->output);
  healed_ = true;
  return {};
}

PortPartition::~PortPartition() {
  (void)heal();
}

}  // namespace shardgate::shardctl
