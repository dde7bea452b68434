#include "replication/pg_monitor.h"

#include <libpq-fe.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <cstring>

namespace shardgate::replication {
namespace {

using Clock = std::chrono::steady_clock;

// One statement answers role and position, so both come from the same instant
// of the server. Every column may be NULL (e.g. receive LSN on a primary).
constexpr const char* kProbeQuery =
    "SELECT pg_is_in_recovery(), "
    "CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END, "
    "pg_last_wal_receive_lsn()";

Result<uint32_t> parse_lsn_half(std::string_view digits) {
  // PostgreSQL's pg_lsn_in accepts 1 to 8 hex digits per half, nothing else.
  if (digits.empty() || digits.size() > 8) return make_error("bad length");
  for (char c : digits) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return make_error("not hexadecimal");
  }
  uint32_t value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value, 16);
  if (ec != std::errc() || end != digits.data() + digits.size()) return make_error("bad digits");
  return value;
}

// libpq messages end in a newline and may span lines ("...failed: Connection
// refused\n\tIs the server running..."): one line reads better in a snapshot.
std::string one_line(const char* message) {
  std::string out = message ? message : "";
  for (char& c : out) {
    if (c == '\n' || c == '\t') c = ' ';
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out.empty() ? "unknown libpq error" : out;
}

Result<std::optional<uint64_t>> lsn_column(const PGresult* result, int column) {
  if (PQgetisnull(result, 0, column)) return std::optional<uint64_t>();
  auto lsn = parse_lsn(PQgetvalue(result, 0, column));
  if (!lsn) return lsn.error();
  return std::optional<uint64_t>(*lsn);
}

Result<ProbeOutcome> parse_probe_result(const PGresult* result) {
  if (PQresultStatus(result) != PGRES_TUPLES_OK) {
    return make_error("probe query failed: " + one_line(PQresultErrorMessage(result)));
  }
  if (PQntuples(result) != 1 || PQnfields(result) != 3) {
    return make_error("probe query returned an unexpected shape");
  }
  ProbeOutcome outcome;
  if (!PQgetisnull(result, 0, 0)) {
    outcome.role = std::strcmp(PQgetvalue(result, 0, 0), "t") == 0 ? ObservedRole::Replica
                                                                   : ObservedRole::Primary;
  }
  auto lsn = lsn_column(result, 1);
  if (!lsn) return lsn.error();
  auto receive = lsn_column(result, 2);
  if (!receive) return receive.error();
  outcome.ok = true;
  outcome.lsn = *lsn;
  outcome.receive_lsn = *receive;
  return outcome;
}

// The primary a shard's replicas are measured against in this round: the one
// backend seen as primary, or, when several claim it (a split brain or a
// failover in progress), the configured one if exactly one of them is.
std::optional<uint64_t> shard_primary_lsn(const std::vector<ProbeTarget>& targets,
                                          const std::vector<ProbeOutcome>& outcomes,
                                          uint32_t shard) {
  std::optional<uint64_t> any, configured;
  int any_count = 0, configured_count = 0;
  for (size_t i = 0; i < targets.size() && i < outcomes.size(); ++i) {
    const ProbeOutcome& o = outcomes[i];
    if (targets[i].shard != shard || !o.ok || o.role != ObservedRole::Primary || !o.lsn) continue;
    any = o.lsn;
    ++any_count;
    if (targets[i].configured_primary) {
      configured = o.lsn;
      ++configured_count;
    }
  }
  if (any_count == 1) return any;
  if (configured_count == 1) return configured;
  return std::nullopt;
}

ProbeOutcome failed(std::string error) {
  ProbeOutcome outcome;
  outcome.error = std::move(error);
  return outcome;
}

std::string to_ms_text(Clock::duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}

MonitorOptions sanitized(MonitorOptions options) {
  // A zero interval would spin; a zero timeout would fail every probe.
  options.interval = std::max(options.interval, std::chrono::milliseconds(1));
  options.connect_timeout = std::max(options.connect_timeout, std::chrono::milliseconds(1));
  options.failures_before_down = std::max<uint32_t>(options.failures_before_down, 1);
  return options;
}

}  // namespace

Result<uint64_t> parse_lsn(std::string_view text) {
  auto bad = [&] {
    std::string shown(text.substr(0, 64));
    return make_error("invalid LSN '" + shown +
                      "': expected two hexadecimal numbers of 1 to 8 digits separated by '/'");
  };
  size_t slash = text.find('/');
  if (slash == std::string_view::npos) return bad();
  auto hi = parse_lsn_half(text.substr(0, slash));
  auto lo = parse_lsn_half(text.substr(slash + 1));
  if (!hi || !lo) return bad();
  return (static_cast<uint64_t>(*hi) << 32) | *lo;
}

std::string format_lsn(uint64_t lsn) {
  char buffer[24];
  std::snprintf(buffer, sizeof buffer, "%" PRIX32 "/%" PRIX32, static_cast<uint32_t>(lsn >> 32),
                static_cast<uint32_t>(lsn));
  return buffer;
}

HealthSnapshot next_snapshot(const HealthSnapshot& previous,
                             const std::vector<ProbeTarget>& targets,
                             const std::vector<ProbeOutcome>& outcomes,
                             uint32_t failures_before_down, Clock::time_point round_started) {
  const uint32_t threshold = std::max<uint32_t>(failures_before_down, 1);
  HealthSnapshot next;
  next.generation = previous.generation + 1;
  next.round_started = round_started;
  next.backends.resize(targets.size());
  for (size_t i = 0; i < targets.size(); ++i) {
    BackendHealth h = i < previous.backends.size() ? previous.backends[i] : BackendHealth{};
    h.lag_bytes.reset();
    const ProbeOutcome missing = failed("not probed");
    const ProbeOutcome& o = i < outcomes.size() ? outcomes[i] : missing;
    if (o.ok) {
      h.up = true;
      h.role = o.role;
      h.lsn = o.lsn.value_or(0);
      h.receive_lsn = o.receive_lsn.value_or(0);
      h.consecutive_failures = 0;
      h.last_error.clear();
      h.last_success = o.finished;
    } else {
      if (h.consecutive_failures < UINT32_MAX) ++h.consecutive_failures;
      h.last_error = o.error;
      if (h.consecutive_failures >= threshold) h.up = false;
    }
    next.backends[i] = std::move(h);
  }
  for (size_t i = 0; i < targets.size() && i < outcomes.size(); ++i) {
    const ProbeOutcome& o = outcomes[i];
    if (!o.ok || o.role != ObservedRole::Replica || !o.lsn) continue;
    auto primary = shard_primary_lsn(targets, outcomes, targets[i].shard);
    if (primary) next.backends[i].lag_bytes = *primary > *o.lsn ? *primary - *o.lsn : 0;
  }
  return next;
}

namespace detail {

// One backend's connection and the state of this round's probe on it. A small
// state machine over libpq's non-blocking calls: the monitor polls the socket
// for wait_spec() and calls advance() when it is ready.
class ProbeConnection {
 public:
  ProbeConnection(const ProbeTarget& target, const MonitorOptions& options)
      : target_(target), options_(options) {}
  ~ProbeConnection() { drop(); }
  ProbeConnection(const ProbeConnection&) = delete;
  ProbeConnection& operator=(const ProbeConnection&) = delete;

  void begin() {
    outcome_.reset();
    retried_ = false;
    if (phase_ == Phase::Idle) {
      fresh_ = false;
      send_query();
    } else {
      start_connect();
    }
  }

  bool finished() const { return outcome_.has_value(); }

  pollfd wait_spec() const { return pollfd{PQsocket(conn_), events_, 0}; }

  void advance(short revents) {
    switch (phase_) {
      case Phase::Connecting:
        return continue_connect();
      case Phase::Sending:
        // libpq asks to read while a flush is pending: the server may be
        // waiting for us to drain its output before it reads ours.
        if ((revents & POLLIN) && !PQconsumeInput(conn_)) return fail(connection_error("query"));
        return flush();
      case Phase::Receiving:
        return receive();
      case Phase::Closed:
      case Phase::Idle:
        return;
    }
  }

  // The round's deadline passed with this probe unfinished: a hung server.
  void time_out(Clock::duration budget) {
    std::string what = phase_ == Phase::Connecting ? "connecting" : "waiting for the probe result";
    drop();
    outcome_ = failed("timed out after " + to_ms_text(budget) + " " + what);
  }

  void abandon() {
    drop();
    outcome_ = failed("monitor stopped");
  }

  ProbeOutcome take_outcome() { return std::move(*outcome_); }

  void drop() {
    if (conn_) PQfinish(conn_);
    conn_ = nullptr;
    phase_ = Phase::Closed;
    sample_.reset();
    query_error_.clear();
  }

 private:
  enum class Phase { Closed, Connecting, Idle, Sending, Receiving };

  void start_connect() {
    drop();
    fresh_ = true;
    const std::string port = target_.port ? std::to_string(target_.port) : "";
    // libpq's connect_timeout is whole seconds and only bounds blocking
    // connects; the round deadline is what bounds ours.
    const auto seconds = (options_.connect_timeout.count() + 999) / 1000;
    const std::string timeout = std::to_string(std::max<int64_t>(seconds, 1));
    const std::string& host =
        target_.unix_socket_dir.empty() ? target_.host : target_.unix_socket_dir;
    const std::string application = "shardgate-monitor";
    // libpq copies the values, but only when PQconnectStartParams runs: every
    // string must be a named local that outlives that call.
    std::vector<const char*> keys, values;
    auto add = [&](const char* key, const std::string& value) {
      if (value.empty()) return;  // unset: let libpq apply its default
      keys.push_back(key);
      values.push_back(value.c_str());
    };
    add("host", host);
    add("port", port);
    add("user", options_.user);
    add("password", options_.password);
    add("dbname", options_.database);
    add("application_name", application);
    add("connect_timeout", timeout);
    keys.push_back(nullptr);
    values.push_back(nullptr);
    conn_ = PQconnectStartParams(keys.data(), values.data(), 0);
    if (!conn_) return fail("connect: out of memory");
    if (PQstatus(conn_) == CONNECTION_BAD) return fail(connection_error("connect"));
    phase_ = Phase::Connecting;
    // Before the first PQconnectPoll, libpq wants the socket writable.
    wait_for(POLLOUT, "connect");
  }

  void continue_connect() {
    switch (PQconnectPoll(conn_)) {
      case PGRES_POLLING_READING:
        return wait_for(POLLIN, "connect");
      case PGRES_POLLING_WRITING:
        return wait_for(POLLOUT, "connect");
      case PGRES_POLLING_OK:
        // Non-blocking mode also for sends, so PQsendQuery never waits on a
        // full socket buffer (a stopped server stops reading).
        if (PQsetnonblocking(conn_, 1) != 0) return fail(connection_error("connect"));
        phase_ = Phase::Idle;
        return send_query();
      default:
        return fail(connection_error("connect"));
    }
  }

  void send_query() {
    sample_.reset();
    query_error_.clear();
    if (!PQsendQuery(conn_, kProbeQuery)) return fail(connection_error("query"));
    flush();
  }

  void flush() {
    int pending = PQflush(conn_);
    if (pending < 0) return fail(connection_error("query"));
    if (pending > 0) {
      phase_ = Phase::Sending;
      return wait_for(POLLIN | POLLOUT, "query");
    }
    phase_ = Phase::Receiving;
    wait_for(POLLIN, "query");
  }

  void receive() {
    if (!PQconsumeInput(conn_)) return fail(connection_error("query"));
    // Results until PQgetResult says the query is complete (nullptr); while
    // PQisBusy, the rest has not arrived and PQgetResult would block.
    while (!PQisBusy(conn_)) {
      PGresult* result = PQgetResult(conn_);
      if (!result) return complete_query();
      if (!sample_ && query_error_.empty()) {
        auto parsed = parse_probe_result(result);
        if (parsed) {
          sample_ = std::move(*parsed);
        } else {
          query_error_ = parsed.error().message();
        }
      }
      PQclear(result);
    }
    wait_for(POLLIN, "query");
  }

  void complete_query() {
    if (!sample_)
      return fail(query_error_.empty() ? "probe query returned no result" : query_error_);
    phase_ = Phase::Idle;
    outcome_ = std::move(*sample_);
    outcome_->finished = Clock::now();
    sample_.reset();
  }

  void wait_for(short events, const char* stage) {
    if (PQsocket(conn_) < 0) return fail(std::string(stage) + ": connection has no socket");
    events_ = events;
  }

  std::string connection_error(const char* stage) const {
    return std::string(stage) + ": " + one_line(conn_ ? PQerrorMessage(conn_) : nullptr);
  }

  void fail(std::string error) {
    drop();
    // A connection kept from an earlier round may have been closed under us
    // (server restart, idle timeout, pg_terminate_backend): that says nothing
    // about the server now, so connect afresh once before counting a failure.
    if (!fresh_ && !retried_) {
      retried_ = true;
      return start_connect();
    }
    outcome_ = failed(std::move(error));
  }

  const ProbeTarget& target_;
  const MonitorOptions& options_;
  PGconn* conn_ = nullptr;
  Phase phase_ = Phase::Closed;
  short events_ = 0;
  bool fresh_ = false;    // connection opened in this round
  bool retried_ = false;  // already reconnected once in this round
  std::optional<ProbeOutcome> sample_;
  std::string query_error_;
  std::optional<ProbeOutcome> outcome_;
};

}  // namespace detail

PgMonitor::PgMonitor(std::vector<ProbeTarget> targets, MonitorOptions options)
    : targets_(std::move(targets)), options_(sanitized(std::move(options))) {
  probes_.reserve(targets_.size());
  for (const ProbeTarget& target : targets_) {
    probes_.push_back(std::make_unique<detail::ProbeConnection>(target, options_));
  }
  // Generation 0: everything up, role unknown, so the proxy can serve before
  // the first round completes.
  auto initial = std::make_shared<HealthSnapshot>();
  initial->backends.resize(targets_.size());
  snapshot_.store(std::move(initial));
  // Without the eventfd stop() still works, only no faster than the round deadline.
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

PgMonitor::~PgMonitor() {
  stop();
  probes_.clear();
  if (wake_fd_ >= 0) close(wake_fd_);
}

void PgMonitor::start() {
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

void PgMonitor::stop() {
  // Joining itself would deadlock: from the listener, only ask; the thread
  // ends after the listener returns and a later stop() or start() joins it.
  if (on_monitor_thread()) return request_stop();
  // Under the lifecycle lock, so a concurrent start() cannot clear the request
  // and leave this join waiting on a thread that never stops.
  std::lock_guard lifecycle(lifecycle_mutex_);
  request_stop();
  if (thread_.joinable()) thread_.join();
}

void PgMonitor::request_stop() {
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

std::shared_ptr<const HealthSnapshot> PgMonitor::snapshot() const {
  return snapshot_.load();
}

std::shared_ptr<const HealthSnapshot> PgMonitor::wait_for_round_after(
    Clock::time_point t, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  cv_.wait_for(lock, timeout, [&] {
    auto latest = snapshot_.load();
    return stopping_ || (latest->generation > 0 && latest->round_started >= t);
  });
  return snapshot_.load();
}

void PgMonitor::set_listener(Listener listener) {
  std::lock_guard lock(mutex_);
  listener_ = std::move(listener);
}

void PgMonitor::publish(std::shared_ptr<const HealthSnapshot> snapshot) {
  snapshot_.store(std::move(snapshot));
  // Taking the mutex orders the store before any waiter's next predicate check.
  { std::lock_guard lock(mutex_); }
  cv_.notify_all();
}

bool PgMonitor::on_monitor_thread() const {
  return monitor_thread_id_.load() == std::this_thread::get_id();
}

void PgMonitor::run() {
  monitor_thread_id_.store(std::this_thread::get_id());
  const auto budget = std::min(options_.interval, options_.connect_timeout);
  while (true) {
    const auto round_started = Clock::now();
    auto outcomes = probe_round(round_started + budget);
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

std::optional<std::vector<ProbeOutcome>> PgMonitor::probe_round(Clock::time_point deadline) {
  const auto budget = std::min(options_.interval, options_.connect_timeout);
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
    if (wake_fd_ >= 0 && (fds.back().revents & POLLIN)) {
      for (auto& probe : probes_) probe->abandon();
      return std::nullopt;
    }
    for (size_t k = 0; k < owners.size(); ++k) {
      if (fds[k].revents != 0) probes_[owners[k]]->advance(fds[k].revents);
    }
  }
  std::vector<ProbeOutcome> outcomes;
  outcomes.reserve(probes_.size());
  for (auto& probe : probes_) {
    if (!probe->finished()) probe->time_out(budget);
    outcomes.push_back(probe->take_outcome());
  }
  return outcomes;
}

void PgMonitor::close_connections() {
  for (auto& probe : probes_) probe->drop();
}

}  // namespace shardgate::replication
