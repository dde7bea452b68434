// Online resharding: the control-plane thread that runs one job at a time
// (plan -> copy -> catch-up -> verify -> cutover -> cleanup), checkpointed in
// RocksDB under data_dir/reshard so that a restarted proxy resumes it.
//
// States: copying (a consistent snapshot of the source is copied in
// primary-key chunks, each chunk's end checkpointed), repairing (after a
// restart the copy's chunks are compared with the source and fixed, since
// the writes made while the proxy was down were not seen), catching_up
// (keys written since the snapshot are re-copied, continuously; the job is
// ready for cutover when few are left), cut_over (the new topology serves),
// cleaned (the source's moved rows are gone), aborted, paused (an error or
// a failover of the source shard stopped it; `start` resumes it).
//
// Cutover: catch up, verify every moving table (row counts and checksums
// over the slice on both sides; a difference that catch-up does not explain
// refuses the cutover), pause new rounds outside transactions, wait for the
// transactions holding writes into the slice to end, apply their keys,
// publish topology v+1 through the failover thread, resume. The pause is
// bounded: if the transactions do not end in time, writes resume and the
// cutover is refused.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/result.h"
#include "proxy/config/config.pb.h"
#include "replication/reshard_conn.h"
#include "replication/reshard_copy.h"

namespace rocksdb {
class DB;
}

namespace shardgate {

struct ProxyContext;
class FailoverController;

struct ReshardRequest {
  std::string op;          // plan, start, cutover, abort, cleanup, verify
  std::string kind;        // split, merge, rebalance, isolate (plan, start)
  std::string source;      // split, merge: the shard that gives rows; rebalance: the left one
  std::string target;      // split: the spare; merge: the neighbour; rebalance: the right one
  std::string at;          // split (optional), rebalance: the boundary in hex
  std::string table, key;  // isolate: the key whose slice moves to `target`
  std::string database;
  bool auto_cutover = false;
};

struct ReshardVerify {
  bool ok = false;
  std::string summary;  // per table: rows and checksums on both sides
};

class ReshardController {
 public:
  ReshardController(ProxyContext& ctx, FailoverController& topology_owner, std::string data_dir,
                    bool mysql, replication::CopyLogin login);
  ~ReshardController();
  ReshardController(const ReshardController&) = delete;
  ReshardController& operator=(const ReshardController&) = delete;

  // Opens the checkpoint store and resumes an unfinished job.
  Result<void> start();
  void stop();

  // plan: the plan's description; verify: waits for the comparison; the
  // others are queued for the job thread (status() shows how they went).
  Result<std::string> request(const ReshardRequest& request);
  // The job as JSON (no job: {"state":"none"}).
  std::string status_json() const;

 private:
  void run();
  Result<std::string> handle(const ReshardRequest& request);
  Result<void> step();
  Result<void> begin_job(const ReshardRequest& request);
  Result<void> resume_tracking();
  Result<void> open_connections();
  std::uint32_t table_index(const std::string& name) const;
  Result<void> copy_step();
  Result<void> repair_step();
  Result<std::uint64_t> apply_dirty(bool include_tables);
  Result<void> cutover();
  Result<ReshardVerify> verify(bool repair_explained);
  Result<void> cleanup();
  Result<void> abort_job();
  // Waits (bounded) until every replica of the target has applied what its
  // primary holds now: after the cutover reads of moved rows go there, and
  // a replica that has not yet replayed the copy would answer "no row".
  Result<void> wait_for_target_replicas(std::chrono::milliseconds limit);
  bool source_failed_over();
  std::string failover_message() const;
  void save();
  void set_state(const std::string& state, const std::string& message = "");
  void log(const std::string& line) const;

  ProxyContext& ctx_;
  FailoverController& owner_;
  std::string dir_;
  bool mysql_;
  replication::CopyLogin login_;
  std::unique_ptr<rocksdb::DB> db_;

  // Job thread only.
  std::optional<config::ReshardJob> work_;
  std::int64_t tracking_since_ms_ = 0;
  std::unique_ptr<replication::ReshardConn> source_, target_, snapshot_;
  std::vector<std::unique_ptr<replication::ReshardConn>> target_replicas_;
  std::vector<replication::SliceTable> tables_;
  std::chrono::steady_clock::time_point copy_started_{};

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::optional<config::ReshardJob> job_;  // guarded: read by status_json
  struct Command {
    ReshardRequest request;
    std::shared_ptr<std::promise<Result<std::string>>> done;
  };
  std::deque<Command> commands_;
  std::optional<ReshardVerify> last_verify_;
  std::thread thread_;
};

}  // namespace shardgate
