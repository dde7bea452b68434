// The write journal: every write the proxy acknowledged on a shard's primary,
// kept in RocksDB (data_dir/journal) with the commit's position until the
// shard's replicas have received it. When a primary dies before any replica
// received its last writes, failover replays the entries past the promoted
// replica's position on it before writes resume (proxy/failover_controller.h).
//
// MariaDB only for now: the position is the commit's GTID, which the server
// reports in the OK packet (session_track_system_variables=last_gtid), so
// journaling costs no round trip. Entries are keyed by shard and GTID
// sequence number; with gtid_strict_mode and one domain those order commits.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "replication/journal.pb.h"

namespace rocksdb {
class DB;
}

namespace shardgate::replication {

class WriteJournal {
 public:
  // Opens (creating) dir/journal. Fails when another process holds it.
  static Result<std::unique_ptr<WriteJournal>> open(const std::string& dir);
  ~WriteJournal();
  WriteJournal(const WriteJournal&) = delete;
  WriteJournal& operator=(const WriteJournal&) = delete;

  // Before the client sees the acknowledgement. Written to RocksDB's log
  // without fsync: it survives the proxy process, not the proxy's machine.
  Result<void> append(const journal::Entry& entry);
  // The shard's entries after `seq`, in commit order.
  Result<std::vector<journal::Entry>> after(std::uint32_t shard, std::uint64_t seq) const;
  // Forgets the shard's entries up to and including `seq` (every replica has them).
  Result<void> forget_through(std::uint32_t shard, std::uint64_t seq);
  // Forgets the shard's entries after `seq` (replayed on a new primary,
  // whose own commits reuse those sequence numbers).
  Result<void> forget_after(std::uint32_t shard, std::uint64_t seq);

  std::uint64_t appended() const { return appended_.load(std::memory_order_relaxed); }
  const std::string& path() const { return path_; }

 private:
  WriteJournal(std::unique_ptr<rocksdb::DB> db, std::string path);

  std::unique_ptr<rocksdb::DB> db_;
  std::string path_;
  std::atomic<std::uint64_t> appended_{0};
};

// Whether replaying `sql` may not reproduce what it did: it calls a function
// whose value differs per call or per server (RAND, UUID, SYSDATE ...).
bool replay_may_differ(std::string_view sql);

}  // namespace shardgate::replication
