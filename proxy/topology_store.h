// The durable, versioned topology: one RocksDB database in the proxy's
// data_dir holding, per cluster, the current TopologyRecord and every earlier
// version. Writes are synced before they return, so a published version
// survives a crash. One shardgate owns a data_dir at a time (RocksDB's lock).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "proxy/config/config.pb.h"

namespace rocksdb {
class DB;
}

namespace shardgate {

class TopologyStore {
 public:
  static Result<std::unique_ptr<TopologyStore>> open(const std::string& dir);
  ~TopologyStore();

  Result<std::optional<config::TopologyRecord>> current(const std::string& cluster) const;
  // Oldest first.
  Result<std::vector<config::TopologyRecord>> history(const std::string& cluster) const;
  // Makes `record` current and adds it to the history, atomically.
  Result<void> publish(const config::TopologyRecord& record);

  const std::string& path() const { return path_; }

 private:
  TopologyStore(std::unique_ptr<rocksdb::DB> db, std::string path);
  std::unique_ptr<rocksdb::DB> db_;
  std::string path_;
};

// Digest of a cluster section (deterministic serialization, XXH3-64 hex).
std::string cluster_digest(const config::Cluster& cluster);

// The record to serve at start: the stored one when the config's cluster
// section is what it was built from; otherwise (first start, or the operator
// changed the config) a new version from the config, published first. A
// changed config keeps what failover and resharding decided since: the
// primaries and fenced members (while the stored primary is still
// configured), epochs, key ranges and shards added while running.
Result<config::TopologyRecord> reconcile_with_config(TopologyStore& store,
                                                     const config::Cluster& from_config);

}  // namespace shardgate
