// The durable memory of the two-phase-commit coordinator: RocksDB in
// data_dir/transactions. A transaction prepared on several shards commits
// only after its decision is written here and synced; the decision is
// forgotten once every shard has committed. After a crash, a prepared
// transaction named by this proxy commits when its decision is here and is
// rolled back otherwise (presumed abort), so no transaction stays in doubt
// and none commits on some shards only.
//
// Transaction names ("global transaction ids") carry this data_dir's node id,
// so that recovery touches only what this proxy prepared, never another
// proxy's transactions on the same servers.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "proxy/config/config.pb.h"

namespace rocksdb {
class DB;
}

namespace shardgate::txn {

struct Decision {
  std::string gid;
  config::CommitDecision record;
};

class DecisionLog {
 public:
  static Result<std::unique_ptr<DecisionLog>> open(const std::string& data_dir);
  ~DecisionLog();

  // "sg_<node>_" : every transaction name this proxy makes starts with it.
  const std::string& gid_prefix() const { return prefix_; }
  // "sg_<node>_<incarnation>_": the names this process makes (its start time
  // tells them from an earlier run's).
  std::string live_prefix() const { return prefix_ + incarnation_ + "_"; }
  // A new transaction name, unique across restarts; [a-z0-9_] only, at most
  // 48 bytes (MySQL XA allows 64, PostgreSQL 200). Thread-safe.
  std::string next_gid();

  // Durable (synced) before it returns. Thread-safe; blocks for the fsync.
  Result<void> record_commit(const std::string& gid, const std::vector<std::string>& shards);
  // Not synced: losing it only makes recovery look for a transaction that is gone.
  Result<void> forget(const std::string& gid);
  Result<std::vector<Decision>> decisions() const;
  bool decided_commit(const std::string& gid) const;

  const std::string& path() const { return path_; }

 private:
  DecisionLog(std::unique_ptr<rocksdb::DB> db, std::string path, std::string node);
  std::unique_ptr<rocksdb::DB> db_;
  std::string path_;
  std::string prefix_;
  std::string incarnation_;  // start time: names stay unique across restarts
  std::atomic<std::uint64_t> counter_{0};
};

}  // namespace shardgate::txn
