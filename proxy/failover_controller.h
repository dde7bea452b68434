// Failover: the control-plane thread that watches the monitor's rounds,
// fails a shard over when its primary is dead (replication/failover_plan.h),
// runs planned switchovers for `shardctl failover`, fences old primaries that
// come back and lets them serve again once they replicate from the new one.
//
// Order of a failover, and why:
//  1. the shard is marked failing over: statements for its primary wait at
//     the proxy (bounded) instead of failing;
//  2. the old primary is fenced when reachable (read-only, its sessions
//     ended), so nothing commits there any more;
//  3. the candidate applies everything it received (a switchover also waits
//     for the old primary's last write) and is promoted;
//  4. the new topology is written to the store (synced) and published: the
//     shard's epoch grows, the old primary becomes a fenced replica that
//     gets no statement at all, whatever it claims when it comes back;
//  5. statements resume on the new primary; the other replicas are
//     repointed after, so they do not lengthen the write pause.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "proxy/config/config.pb.h"
#include "replication/failover_ops.h"
#include "replication/health.h"

namespace shardgate {

struct ProxyContext;
class TopologyStore;

namespace replication {
class Monitor;
}

struct FailoverReport {
  std::uint64_t id = 0;
  std::string shard;
  std::string kind;  // "automatic" or "switchover"
  std::string old_primary, new_primary;
  std::string outcome = "running";  // running, promoted, failed
  std::string error;
  std::int64_t started_unix_ms = 0;
  // automatic: from the old primary's last answered probe to the decision.
  double detect_ms = 0;
  // From the decision (statements start waiting) to the new topology.
  double promote_ms = 0;
  std::uint64_t epoch = 0;             // the shard's epoch after it
  std::uint64_t topology_version = 0;  // published by it
  std::vector<std::string> steps;      // what was done, in order, with errors
  // The write journal's catch-up: acknowledged writes the new primary
  // lacked, replayed on it before writes resumed.
  std::uint64_t journal_replayed = 0;
  std::uint64_t journal_replay_failed = 0;
  std::uint64_t journal_replayed_nondeterministic = 0;
  // When the old primary answered again: its transactions no replica had
  // received, applied on the new primary from its binlog (MariaDB).
  std::uint64_t old_primary_applied = 0;
  std::uint64_t old_primary_apply_failed = 0;
  bool finished = false;
};

// A fenced old primary, as failover last saw it.
struct FencedBackend {
  std::string name;
  std::string shard;
  std::string status;  // "down", "fenced (read-only)", "rejoining", "needs rebuild: ..."
  // Applying what only it had on the new primary: "pending" until it
  // answers, then "done" (even when some failed: see the report) or
  // "not possible: why". Whoever rebuilds it waits for this.
  std::string catch_up = "pending";
};

class FailoverController {
 public:
  FailoverController(ProxyContext& ctx, replication::Monitor& monitor, TopologyStore* store,
                     config::TopologyRecord current, std::unique_ptr<replication::FailoverOps> ops);
  ~FailoverController();
  FailoverController(const FailoverController&) = delete;
  FailoverController& operator=(const FailoverController&) = delete;

  void start();
  void stop();

  // From the monitor's listener: the latest round.
  void on_snapshot(std::shared_ptr<const replication::HealthSnapshot> snapshot);

  // Queues a planned switchover of the shard named `shard` (to `target` when
  // given, else the most advanced replica); the report's id.
  Result<std::uint64_t> request_switchover(const std::string& shard, const std::string& target);

  // Publishes the version `change` makes of the current one (another
  // control plane, resharding, changes the topology through here so that
  // versions never fork); runs on the failover thread, returns the version.
  using TopologyChange =
      std::function<Result<config::TopologyRecord>(const config::TopologyRecord& current)>;
  Result<std::uint64_t> change_topology(TopologyChange change);

  std::vector<FailoverReport> reports() const;
  std::optional<FailoverReport> report(std::uint64_t id) const;
  std::vector<FencedBackend> fenced() const;

 private:
  struct Switchover {
    std::uint64_t id;
    std::uint32_t shard;
    std::string target;
  };

  void run();
  void check(const replication::HealthSnapshot& health);
  void cut_connections(std::uint32_t backend);
  std::string fence_dead_primary(std::uint32_t backend);
  void fail_over(std::uint32_t shard, std::uint32_t candidate,
                 const replication::HealthSnapshot& health);
  void switch_over(const Switchover& request, const replication::HealthSnapshot& health);
  // Stores and serves the version in which `candidate` leads `shard`; an
  // error only when the store refused it (it is served all the same).
  Result<void> publish_promotion(std::uint32_t shard, std::uint32_t candidate,
                                 FailoverReport& report);
  void repoint_replicas(std::uint32_t shard, std::uint32_t new_primary, FailoverReport& report);
  // Replays the journaled writes past `took_over_at` on the new primary.
  void catch_up_from_journal(std::uint32_t shard, std::uint32_t new_primary,
                             std::uint64_t took_over_at, FailoverReport& report);
  // Forgets journaled writes every answering replica of a shard has received.
  void trim_journal(const replication::HealthSnapshot& health);
  void trim_pg_journal(const replication::HealthSnapshot& health);
  void keep_catch_up_points(const replication::HealthSnapshot& health);
  bool mysql() const;  // the cluster's engine
  void check_journal_support(const replication::HealthSnapshot& health);
  void watch_fenced(const replication::HealthSnapshot& health);
  // Applies on the shard's primary what the fenced old primary `backend`
  // alone had; returns FencedBackend::catch_up.
  std::string catch_up_from_old_primary(std::uint32_t backend, std::uint32_t primary,
                                        std::uint64_t took_over_at);
  void retry_repoints(const replication::HealthSnapshot& health);
  void restore_restarted_primaries(const replication::HealthSnapshot& health);
  // Serves `next` and stores it; see publish_promotion.
  Result<void> publish_record(config::TopologyRecord next);

  replication::ServerAddress address(std::uint32_t backend) const;
  std::uint64_t new_report(FailoverReport report);
  void update(std::uint64_t id, const std::function<void(FailoverReport&)>& change);
  void log(const std::string& line) const;

  ProxyContext& ctx_;
  replication::Monitor& monitor_;
  TopologyStore* store_;           // null without data_dir: versions live in memory only
  config::TopologyRecord record_;  // the current version (failover thread only)
  std::unique_ptr<replication::FailoverOps> ops_;
  // A fence still trying to reach an old primary that did not answer in
  // time (fence_dead_primary); destroyed before ops_, waiting for it.
  std::future<Result<void>> background_fence_;
  // keep_catch_up_points' work in flight: (backend, problem) for each
  // primary it kept; destroyed before ops_, waiting for it.
  std::future<std::vector<std::pair<std::string, std::string>>> catch_up_points_;

  // Failover thread only.
  std::map<std::uint32_t, std::chrono::steady_clock::time_point> retry_after_;  // by shard
  std::map<std::uint32_t, std::string> last_reason_;                            // by shard
  std::map<std::uint32_t, std::uint64_t> promoted_position_;  // by shard: the new primary's
  std::map<std::uint32_t, std::uint64_t> last_report_;        // by shard: its last failover's
  // By shard: the old primary's transactions the journal replayed in the
  // last failover (MariaDB seq_nos, PostgreSQL xids), which its own log
  // must not apply again.
  std::map<std::uint32_t, std::set<std::uint64_t>> journal_replayed_;
  std::map<std::uint32_t, std::string> old_primary_caught_up_;  // by backend, while fenced
  std::map<std::uint32_t, std::chrono::steady_clock::time_point> catch_up_point_next_;  // shard
  std::map<std::string, std::string> catch_up_point_problem_;  // by backend, last logged
  std::map<std::uint32_t, bool> fence_tried_;                  // by backend, while it is up
  std::set<std::uint32_t> primary_went_down_;                  // by backend, until writable again
  std::map<std::uint32_t, std::chrono::steady_clock::time_point> repoint_pending_;  // next try
  std::map<std::uint32_t, std::uint64_t> journal_trimmed_;  // by shard: forgotten through
  std::set<std::uint32_t> journal_checked_;                 // by backend
  // PostgreSQL's journal is forgotten by watermark: the journal's next seq
  // when a trim ran (marks_), then per shard that seq with a primary WAL
  // position read after it (watermarks_): once every replica received that
  // position, the entries below the seq are on all of them.
  std::deque<std::pair<std::chrono::steady_clock::time_point, std::uint64_t>> marks_;
  std::map<std::uint32_t, std::deque<std::pair<std::uint64_t, std::uint64_t>>> watermarks_;

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::shared_ptr<const replication::HealthSnapshot> latest_;
  std::deque<Switchover> requests_;
  struct PendingChange {
    TopologyChange change;
    std::promise<Result<std::uint64_t>> done;
  };
  std::deque<std::unique_ptr<PendingChange>> changes_;
  std::deque<FailoverReport> reports_;  // newest last, the last 50
  std::map<std::string, FencedBackend> fenced_;
  std::uint64_t next_id_ = 1;
  std::thread thread_;
};

}  // namespace shardgate
