// The engine-neutral background monitor: one thread, one round per interval,
// every backend probed in parallel, each round published as an immutable
// HealthSnapshot (see replication/health.h).
//
// The engines (PgMonitor, MySqlMonitor) only supply a ProbeConnection per
// backend: a small state machine over their client library's non-blocking
// API. Monitor polls all their sockets at once, so a slow or hung server costs
// the round nothing but its own probe, and ends it at the round's deadline.
#pragma once

#include <poll.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "replication/health.h"

namespace shardgate::replication {

// One backend's connection and this round's probe on it. Lives on the monitor
// thread. The connection stays open across rounds; a probe that fails on a
// connection kept from an earlier round reconnects once before it counts as a
// failure (the server may have closed an idle connection, or restarted).
//
// Monitor drives it: begin() once per round, then while !finished() it polls
// wait_spec() and calls advance() with what poll() reported; at the round's
// deadline round_ended(); then take_outcome(). close() when the thread ends.
//
// An engine implements the protected hooks and wait_spec/advance/close, and
// reports through succeed() and fail().
class ProbeConnection {
 public:
  using Clock = std::chrono::steady_clock;

  virtual ~ProbeConnection() = default;
  ProbeConnection(const ProbeConnection&) = delete;
  ProbeConnection& operator=(const ProbeConnection&) = delete;

  // Starts this round's probe on the open connection, or connects first. May
  // finish at once (e.g. a connect refused before any I/O).
  void begin();
  bool finished() const { return outcome_.has_value(); }
  // The descriptor and poll() events the unfinished probe waits for.
  virtual pollfd wait_spec() const = 0;
  // poll() reported `revents` (never 0) on wait_spec()'s descriptor.
  virtual void advance(short revents) = 0;
  // The round's deadline (`budget` after its start) passed with the probe
  // unfinished: a slow or hung server or network. The round counts it as a
  // failure either way. A connect or probe younger than `limit` is kept and
  // waited on in the next round; an older one is closed.
  void round_ended(Clock::duration budget, Clock::duration limit);
  // Valid once finished(); leaves the probe unfinished until the next begin().
  ProbeOutcome take_outcome();
  // Closes the connection without waiting on the server (also mid-probe).
  virtual void close() = 0;
  // close(), and the next begin() starts afresh (the monitor thread ends).
  void abandon();

 protected:
  ProbeConnection() = default;

  // Connected with no probe in flight: the next round reuses the connection.
  virtual bool idle() const = 0;
  // Still connecting (for the timeout message).
  virtual bool connecting() const = 0;
  // Opens a new connection (the old one is closed) and probes once connected.
  virtual void start_connect() = 0;
  // Sends the probe on the idle connection.
  virtual void start_probe() = 0;

  void succeed(ProbeOutcome outcome);
  // Closes the connection and, if it was kept from an earlier round and has
  // not been retried yet, connects afresh; otherwise the probe fails.
  void fail(std::string error);

 private:
  void connect();

  bool fresh_ = false;           // connection opened in this round
  bool retried_ = false;         // already reconnected once in this round
  bool carried_ = false;         // unfinished at the last round's end, still waited on
  Clock::time_point started_{};  // of the connect or probe in flight
  std::optional<ProbeOutcome> outcome_;
};

// Makes the probe of one target. The references stay valid for the probe's
// whole life (they point into the Monitor that owns it).
using ProbeFactory =
    std::function<std::unique_ptr<ProbeConnection>(const ProbeTarget&, const MonitorOptions&)>;

class Monitor {
 public:
  using Listener = std::function<void(const std::shared_ptr<const HealthSnapshot>&)>;

  Monitor(std::vector<ProbeTarget> targets, MonitorOptions options, const ProbeFactory& factory);
  virtual ~Monitor();
  Monitor(const Monitor&) = delete;
  Monitor& operator=(const Monitor&) = delete;

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

  // After a failover: which targets are their shard's primary now (by
  // target), for measuring lag from the next round on.
  void set_primaries(std::vector<bool> primary);

  // Probes these too from the next round on (a shard added while running);
  // their indexes follow the existing targets'. False when more than
  // kAddedTargets would have been added in all (probes hold references to
  // their target, so the targets never move).
  static constexpr std::size_t kAddedTargets = 64;
  bool add_targets(std::vector<ProbeTarget> targets);

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
  std::chrono::milliseconds round_budget() const;

  // configured_primary changes only on the monitor thread, at a round's
  // start (set_primaries); probes keep references to their target.
  std::vector<ProbeTarget> targets_;
  const MonitorOptions options_;
  const ProbeFactory factory_;
  std::size_t capacity_ = 0;  // targets_ never grows past its reserved size
  // Touched only by the monitor thread (and by the constructor/destructor).
  std::vector<std::unique_ptr<ProbeConnection>> probes_;

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
  std::optional<std::vector<bool>> new_primaries_;
  std::vector<ProbeTarget> added_;
  std::size_t accepted_ = 0;  // targets given to add_targets so far
};

namespace detail {

// Client-library messages may end in a newline and span lines ("...failed:
// Connection refused\n\tIs the server running..."): one line reads better in
// a snapshot. `fallback` when the message is empty.
std::string one_line(const char* message, std::string_view fallback);

std::string to_ms_text(std::chrono::steady_clock::duration d);

}  // namespace detail

}  // namespace shardgate::replication
