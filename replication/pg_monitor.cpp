#include "replication/pg_monitor.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <cstring>

namespace shardgate::replication {
namespace {

// One statement answers role and position, so both come from the same instant
// of the server. Every column may be NULL (e.g. receive LSN on a primary).
constexpr const char* kProbeQuery =
    "SELECT pg_is_in_recovery(), "
    "CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END, "
    "pg_last_wal_receive_lsn(), "
    "(SELECT status = 'streaming' FROM pg_stat_wal_receiver LIMIT 1)";

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

std::string one_line(const char* message) {
  return detail::one_line(message, "unknown libpq error");
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
  if (PQntuples(result) != 1 || PQnfields(result) != 4) {
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
  // NULL: no WAL receiver runs (a primary, or a replica between attempts).
  outcome.upstream_connected = !PQgetisnull(result, 0, 3) && PQgetvalue(result, 0, 3)[0] == 't';
  outcome.replication_configured = outcome.role == ObservedRole::Replica;
  return outcome;
}

// One backend's libpq connection and the state of this round's probe on it:
// a state machine over libpq's non-blocking calls. The monitor polls the
// socket for wait_spec() and calls advance() when it is ready.
class PgProbe final : public ProbeConnection {
 public:
  PgProbe(const ProbeTarget& target, const MonitorOptions& options)
      : target_(target), options_(options) {}
  ~PgProbe() override { close(); }

  pollfd wait_spec() const override { return pollfd{PQsocket(conn_), events_, 0}; }

  void advance(short revents) override {
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

  void close() override {
    // PQfinish sends Terminate without waiting for the server: safe on a hung one.
    if (conn_) PQfinish(conn_);
    conn_ = nullptr;
    phase_ = Phase::Closed;
    sample_.reset();
    query_error_.clear();
  }

 protected:
  bool idle() const override { return phase_ == Phase::Idle; }
  bool connecting() const override { return phase_ == Phase::Connecting; }

  void start_connect() override {
    close();
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

  void start_probe() override {
    sample_.reset();
    query_error_.clear();
    if (!PQsendQuery(conn_, kProbeQuery)) return fail(connection_error("query"));
    flush();
  }

 private:
  enum class Phase { Closed, Connecting, Idle, Sending, Receiving };

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
        return start_probe();
      default:
        return fail(connection_error("connect"));
    }
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
    ProbeOutcome outcome = std::move(*sample_);
    sample_.reset();
    succeed(std::move(outcome));
  }

  void wait_for(short events, const char* stage) {
    if (PQsocket(conn_) < 0) return fail(std::string(stage) + ": connection has no socket");
    events_ = events;
  }

  std::string connection_error(const char* stage) const {
    return std::string(stage) + ": " + one_line(conn_ ? PQerrorMessage(conn_) : nullptr);
  }

  const ProbeTarget& target_;
  const MonitorOptions& options_;
  PGconn* conn_ = nullptr;
  Phase phase_ = Phase::Closed;
  short events_ = 0;
  std::optional<ProbeOutcome> sample_;
  std::string query_error_;
};

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

std::unique_ptr<ProbeConnection> make_pg_probe(const ProbeTarget& target,
                                               const MonitorOptions& options) {
  return std::make_unique<PgProbe>(target, options);
}

PgMonitor::PgMonitor(std::vector<ProbeTarget> targets, MonitorOptions options)
    : Monitor(std::move(targets), std::move(options), make_pg_probe) {}

}  // namespace shardgate::replication
