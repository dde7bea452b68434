// Background health and replication-position monitor for PostgreSQL backends.
//
// One thread probes every backend each interval, all in parallel over libpq's
// non-blocking API, and publishes the result as an immutable HealthSnapshot.
// The data path only ever loads the latest snapshot (a shared_ptr copy): it
// never waits for a probe, and a hung server delays nothing but its own probe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/result.h"

namespace shardgate::replication {

struct ProbeTarget {
  std::string name;
  std::string host;
  uint16_t port = 0;            // 0: libpq's default
  std::string unix_socket_dir;  // when set, used instead of host
  uint32_t shard = 0;
  bool configured_primary = false;
};

struct MonitorOptions {
  std::string user, password, database = "postgres";
  std::chrono::milliseconds interval{250};
  std::chrono::milliseconds connect_timeout{1000};
  uint32_t failures_before_down = 3;  // 0 is treated as 1
};

enum class ObservedRole { Unknown, Primary, Replica };

struct BackendHealth {
  bool up = true;
  ObservedRole role = ObservedRole::Unknown;
  // Primary: pg_current_wal_lsn(); replica: pg_last_wal_replay_lsn(); 0 when
  // unknown. After a failed probe role, lsn and receive_lsn keep the values of
  // the last successful probe (failover wants the last known position);
  // last_success says how old they are.
  uint64_t lsn = 0;
  uint64_t receive_lsn = 0;  // replica: pg_last_wal_receive_lsn(); 0 when unknown
  // Replica only: its shard primary's lsn minus its replay lsn, clamped at 0,
  // when both were probed successfully in the same round.
  std::optional<uint64_t> lag_bytes;
  uint32_t consecutive_failures = 0;
  std::string last_error;  // empty after a successful probe
  std::chrono::steady_clock::time_point last_success{};
};

struct HealthSnapshot {
  uint64_t generation = 0;  // rounds completed; 0 is the optimistic initial snapshot
  std::chrono::steady_clock::time_point round_started{};
  std::vector<BackendHealth> backends;  // same order as the targets
};

// "16/B374D848" -> 0x16B374D848, as PostgreSQL's pg_lsn type reads it.
Result<uint64_t> parse_lsn(std::string_view text);
std::string format_lsn(uint64_t lsn);

// What one probe of one backend found in one round.
struct ProbeOutcome {
  bool ok = false;
  ObservedRole role = ObservedRole::Unknown;
  std::optional<uint64_t> lsn;          // NULL from the server: nullopt
  std::optional<uint64_t> receive_lsn;  // NULL from the server: nullopt
  std::string error;                    // set when !ok
  std::chrono::steady_clock::time_point finished{};
};

// Pure: the snapshot that follows `previous` given this round's outcomes (one
// per target, same order). Exposed so the up/down and lag rules can be tested
// without servers.
HealthSnapshot next_snapshot(const HealthSnapshot& previous,
                             const std::vector<ProbeTarget>& targets,
                             const std::vector<ProbeOutcome>& outcomes,
                             uint32_t failures_before_down,
                             std::chrono::steady_clock::time_point round_started);

namespace detail {
class ProbeConnection;  // one backend's libpq connection; lives on the monitor thread
}

class PgMonitor {
 public:
  using Listener = std::function<void(const std::shared_ptr<const HealthSnapshot>&)>;

  PgMonitor(std::vector<ProbeTarget> targets, MonitorOptions options);
  ~PgMonitor();
  PgMonitor(const PgMonitor&) = delete;
  PgMonitor& operator=(const PgMonitor&) = delete;

  // Starts the monitor thread; no-op when already running (and when called
  // from the listener).
  void start();
  // Interrupts the current round or sleep and joins the thread. The round in
  // flight is not published. From the listener (the monitor thread itself) it
  // only asks the thread to end; a later stop() or the destructor joins it.
  void stop();

  // The latest published snapshot; never null, never blocks on probes.
  std::shared_ptr<const HealthSnapshot> snapshot() const;

  // Blocks until a round that started at or after `t` has been published and
  // returns it; on timeout, or when the monitor is stopped, returns the latest.
  std::shared_ptr<const HealthSnapshot> wait_for_round_after(
      std::chrono::steady_clock::time_point t, std::chrono::milliseconds timeout);

  // Called on the monitor thread after each published round. Keep it short:
  // the next round waits for it.
  void set_listener(Listener listener);

 private:
  void run();
  // Probes all targets in parallel; nullopt when stop() interrupted the round.
  std::optional<std::vector<ProbeOutcome>> probe_round(
      std::chrono::steady_clock::time_point deadline);
  void publish(std::shared_ptr<const HealthSnapshot> snapshot);
  void close_connections();
  bool on_monitor_thread() const;
  void request_stop();

  const std::vector<ProbeTarget> targets_;
  const MonitorOptions options_;
  // Touched only by the monitor thread (and by the constructor/destructor).
  std::vector<std::unique_ptr<detail::ProbeConnection>> probes_;

  std::atomic<std::shared_ptr<const HealthSnapshot>> snapshot_;

  std::mutex lifecycle_mutex_;  // serializes start() and stop()
  std::thread thread_;
  // Set by the thread itself: thread_ is being assigned while the new thread
  // may already run, so comparing against thread_.get_id() would race.
  std::atomic<std::thread::id> monitor_thread_id_;
  int wake_fd_ = -1;  // eventfd that stop() writes so a round in poll() ends at once

  std::mutex mutex_;            // guards the fields below
  std::condition_variable cv_;  // signalled on publish and on stop
  bool stopping_ = false;
  Listener listener_;
};

}  // namespace shardgate::replication
