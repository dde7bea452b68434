#include "replication/monitor.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace shardgate::replication {
namespace {

using Clock = std::chrono::steady_clock;

MonitorOptions sanitized(MonitorOptions options) {
  // A zero interval would spin; a zero timeout would fail every probe.
  options.interval = std::max(options.interval, std::chrono::milliseconds(1));
  options.connect_timeout = std::max(options.connect_timeout, std::chrono::milliseconds(1));
  options.failures_before_down = std::max<uint32_t>(options.failures_before_down, 1);
  return options;
}

}  // namespace

namespace detail {

std::string one_line(const char* message, std::string_view fallback) {
  std::string out = message ? message : "";
  for (char& c : out) {
    if (c == '\n' || c == '\t') c = ' ';
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out.empty() ? std::string(fallback) : out;
}

std::string to_ms_text(Clock::duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}

}  // namespace detail

// ------------------------------------------------------------ ProbeConnection

void ProbeConnection::begin() {
  outcome_.reset();
  if (carried_) {  // still connecting or waiting from an earlier round: go on waiting
    carried_ = false;
    return;
  }
  retried_ = false;
  if (idle()) {
    fresh_ = false;
    started_ = Clock::now();
    start_probe();
  } else {
    connect();
  }
}

void ProbeConnection::connect() {
  fresh_ = true;
  started_ = Clock::now();
  start_connect();
}

void ProbeConnection::round_ended(Clock::duration budget, Clock::duration limit) {
  const std::string what = connecting() ? "connecting" : "waiting for the probe result";
  if (Clock::now() - started_ >= limit) {
    close();
    outcome_ = probe_failure("timed out after " + detail::to_ms_text(limit) + " " + what);
    return;
  }
  // Slow, not given up on: closing it now would make the next round start
  // over, and an overloaded server that needs longer than one round to accept
  // a connection would never get one, each attempt adding to its load.
  carried_ = true;
  outcome_ = probe_failure("no answer within " + detail::to_ms_text(budget) + " (" + what +
                           ", waiting up to " + detail::to_ms_text(limit) + ")");
}

void ProbeConnection::abandon() {
  carried_ = false;
  close();
}

ProbeOutcome ProbeConnection::take_outcome() {
  ProbeOutcome outcome = std::move(*outcome_);
  outcome_.reset();
  return outcome;
}

void ProbeConnection::succeed(ProbeOutcome outcome) {
  outcome.ok = true;
  outcome.finished = Clock::now();
  outcome_ = std::move(outcome);
}

void ProbeConnection::fail(std::string error) {
  close();
  // A connection kept from an earlier round may have been closed under us
  // (server restart, idle timeout, a killed session): that says nothing about
  // the server now, so connect afresh once before counting a failure.
  if (!fresh_ && !retried_) {
    retried_ = true;
    return connect();
  }
  outcome_ = probe_failure(std::move(error));
}

// -------------------------------------------------------------------- Monitor

Monitor::Monitor(std::vector<ProbeTarget> targets, MonitorOptions options,
                 const ProbeFactory& factory)
    : targets_(std::move(targets)), options_(sanitized(std::move(options))), factory_(factory) {
  capacity_ = targets_.size() + kAddedTargets;
  targets_.reserve(capacity_);
  probes_.reserve(capacity_);
  for (const ProbeTarget& target : targets_) probes_.push_back(factory(target, options_));
  // Generation 0: everything up, role unknown, so the proxy can serve before
  // the first round completes.
  auto initial = std::make_shared<HealthSnapshot>();
  initial->backends.resize(targets_.size());
  snapshot_.store(std::move(initial));
  // Without the eventfd stop() still works, only no faster than the round deadline.
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

Monitor::~Monitor() {
  stop();
  probes_.clear();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void Monitor::set_primaries(std::vector<bool> primary) {
  std::lock_guard lock(mutex_);
  new_primaries_ = std::move(primary);
}

bool Monitor::add_targets(std::vector<ProbeTarget> targets) {
  std::lock_guard lock(mutex_);
  if (accepted_ + targets.size() > kAddedTargets) return false;
  accepted_ += targets.size();
  for (auto& t : targets) added_.push_back(std::move(t));
  return true;
}

void Monitor::start() {
  if (on_monitor_thread()) return;  // from the listener: it is running
  std::lock_guard lifecycle(lifecycle_mutex_);
  if (thread_.joinable()) {
    {
      std::lock_guard lock(mutex_);
      if (!stopping_) return;
    }
    thread_.join();  // the listener asked it to stop; it is ending or has ended
  }
  if (wake_fd_ >= 0) {
    uint64_t drained = 0;
    while (read(wake_fd_, &drained, sizeof drained) > 0) {
    }
  }
  {
    std::lock_guard lock(mutex_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { run(); });
}

void Monitor::stop() {
  // Joining itself would deadlock: from the listener, only ask; the thread
  // ends after the listener returns and a later stop() or start() joins it.
  if (on_monitor_thread()) return request_stop();
  // Under the lifecycle lock, so a concurrent start() cannot clear the request
  // and leave this join waiting on a thread that never stops.
  std::lock_guard lifecycle(lifecycle_mutex_);
  request_stop();
  if (thread_.joinable()) thread_.join();
}

void Monitor::request_stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (wake_fd_ >= 0) {
    uint64_t one = 1;
    // Best effort: if it fails, the round simply runs to its deadline.
    [[maybe_unused]] auto written = write(wake_fd_, &one, sizeof one);
  }
}

std::shared_ptr<const HealthSnapshot> Monitor::snapshot() const {
  return snapshot_.load();
}

std::shared_ptr<const HealthSnapshot> Monitor::wait_for_round_after(
    Clock::time_point t, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  cv_.wait_for(lock, timeout, [&] {
    auto latest = snapshot_.load();
    return stopping_ || (latest->generation > 0 && latest->round_started >= t);
  });
  return snapshot_.load();
}

void Monitor::set_listener(Listener listener) {
  std::lock_guard lock(mutex_);
  listener_ = std::move(listener);
}

void Monitor::publish(std::shared_ptr<const HealthSnapshot> snapshot) {
  snapshot_.store(std::move(snapshot));
  // Taking the mutex orders the store before any waiter's next predicate check.
  { std::lock_guard lock(mutex_); }
  cv_.notify_all();
}

bool Monitor::on_monitor_thread() const {
  return monitor_thread_id_.load() == std::this_thread::get_id();
}

std::chrono::milliseconds Monitor::round_budget() const {
  return std::min(options_.interval, options_.connect_timeout);
}

void Monitor::run() {
  monitor_thread_id_.store(std::this_thread::get_id());
  while (true) {
    {
      std::lock_guard lock(mutex_);
      // Within the reserved capacity: no reference to a target moves.
      for (auto& t : added_) {
        if (targets_.size() == capacity_) break;
        targets_.push_back(std::move(t));
        probes_.push_back(factory_(targets_.back(), options_));
      }
      added_.clear();
      if (new_primaries_) {
        for (size_t i = 0; i < targets_.size() && i < new_primaries_->size(); ++i)
          targets_[i].configured_primary = (*new_primaries_)[i];
        new_primaries_.reset();
      }
    }
    const auto round_started = Clock::now();
    auto outcomes = probe_round(round_started + round_budget());
    if (!outcomes) break;
    auto next = std::make_shared<const HealthSnapshot>(next_snapshot(
        *snapshot_.load(), targets_, *outcomes, options_.failures_before_down, round_started));
    publish(next);

    Listener listener;
    {
      std::lock_guard lock(mutex_);
      if (stopping_) break;
      listener = listener_;
    }
    if (listener) listener(next);

    // Rounds start an interval apart. A round that overran (a hung server
    // uses the whole budget, which may equal the interval; or a slow
    // listener) is followed at once, without catching up on missed ticks.
    const auto next_tick = round_started + options_.interval;
    std::unique_lock lock(mutex_);
    if (cv_.wait_until(lock, next_tick, [&] { return stopping_; })) break;
  }
  close_connections();
  monitor_thread_id_.store(std::thread::id());
}

std::optional<std::vector<ProbeOutcome>> Monitor::probe_round(Clock::time_point deadline) {
  for (auto& probe : probes_) probe->begin();
  std::vector<pollfd> fds;
  std::vector<size_t> owners;  // fds[k] belongs to probes_[owners[k]]
  while (true) {
    fds.clear();
    owners.clear();
    for (size_t i = 0; i < probes_.size(); ++i) {
      if (probes_[i]->finished()) continue;
      fds.push_back(probes_[i]->wait_spec());
      owners.push_back(i);
    }
    if (owners.empty()) break;
    const auto now = Clock::now();
    if (now >= deadline) break;
    if (wake_fd_ >= 0) fds.push_back(pollfd{wake_fd_, POLLIN, 0});
    // Round up so we do not wake just before the deadline and spin.
    const auto wait = std::chrono::ceil<std::chrono::milliseconds>(deadline - now);
    int ready = poll(fds.data(), fds.size(), static_cast<int>(wait.count()));
    if (ready < 0 && errno != EINTR) break;  // cannot wait: fail what is left
    if (ready <= 0) continue;                // revents are meaningless after an error
    if (wake_fd_ >= 0 && (fds.back().revents & POLLIN)) {
      close_connections();
      return std::nullopt;
    }
    for (size_t k = 0; k < owners.size(); ++k) {
      if (fds[k].revents != 0) probes_[owners[k]]->advance(fds[k].revents);
    }
  }
  std::vector<ProbeOutcome> outcomes;
  outcomes.reserve(probes_.size());
  for (auto& probe : probes_) {
    if (!probe->finished()) probe->round_ended(round_budget(), options_.connect_timeout);
    outcomes.push_back(probe->take_outcome());
  }
  return outcomes;
}

void Monitor::close_connections() {
  for (auto& probe : probes_) probe->abandon();
}

}  // namespace shardgate::replication
