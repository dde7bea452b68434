// The write journal: every write the proxy acknowledged on a shard's primary,
// kept in RocksDB (data_dir/journal) with the commit's position until the
// shard's replicas have received it. When a primary dies before any replica
// received its last writes, failover replays the entries past the promoted
// replica's position on it before writes resume (proxy/failover_controller.h).
//
// MariaDB: the position is the commit's GTID, which the server reports in
// the OK packet (session_track_system_variables=last_gtid), so journaling
// costs no round trip. Entries are keyed by shard and GTID sequence number;
// with gtid_strict_mode and one domain those order commits.
//
// PostgreSQL reports no commit position: the proxy learns the transaction's
// id and a WAL position in the commit's round trip (proxy/session/pg_journal.h).
// Entries are keyed by shard and the journal's own append order
// (append_next), which the failover controller's watermarks use to forget
// what every replica received.
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
  // PostgreSQL: the same, with the next number of the journal's own append
  // order as the entry's seq.
  Result<void> append_next(journal::Entry& entry);
  // The seq the next append_next takes: every entry numbered below it was
  // numbered (its commit acknowledged by the server) before this call.
  std::uint64_t next_seq() const { return next_seq_.load(std::memory_order_seq_cst); }
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
  std::atomic<std::uint64_t> next_seq_{1};  // past every stored entry's seq
};

// Whether replaying `sql` may not reproduce what it did: it calls a function
// whose value differs per call or per server (RAND, UUID, SYSDATE ...).
bool replay_may_differ(std::string_view sql);

}  // namespace shardgate::replication
