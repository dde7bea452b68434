#include "replication/mysql_monitor.h"

#include <mysql.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace shardgate::replication {
namespace {

// Two statements, one round trip: the server answers both before we read
// either, so role and position come from (nearly) the same instant. The first
// cannot carry the replication state: MariaDB 10.11 has no table for it
// (information_schema.SLAVE_STATUS came later), only SHOW ... STATUS. ALL, so
// that a named (multi-source) connection also counts as replicating.
constexpr std::string_view kProbeQuery =
    "SELECT @@global.read_only, @@global.log_bin, @@global.gtid_current_pos;"
    "SHOW ALL SLAVES STATUS";

bool is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

std::string_view trimmed(std::string_view s) {
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
  return s;
}

// Decimal digits only: from_chars alone would also take a leading '-' for
// signed types, and we want "+1" and " 1" refused too.
template <class T>
std::optional<T> decimal(std::string_view digits) {
  if (digits.empty()) return std::nullopt;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  T value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  return value;
}

struct Gtid {
  uint32_t domain;
  uint32_t server_id;
  uint64_t seq_no;
};

std::optional<Gtid> parse_gtid(std::string_view text) {
  size_t first = text.find('-');
  if (first == std::string_view::npos) return std::nullopt;
  size_t second = text.find('-', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  auto domain = decimal<uint32_t>(text.substr(0, first));
  auto server = decimal<uint32_t>(text.substr(first + 1, second - first - 1));
  auto seq = decimal<uint64_t>(text.substr(second + 1));
  if (!domain || !server || !seq) return std::nullopt;
  return Gtid{*domain, *server, *seq};
}

// MariaDB prints booleans of SELECT @@var as 0/1; SHOW VARIABLES as OFF/ON.
std::optional<bool> boolean(const std::optional<std::string>& text) {
  if (!text) return std::nullopt;
  if (*text == "0" || *text == "OFF") return false;
  if (*text == "1" || *text == "ON") return true;
  return std::nullopt;
}

std::string shown(const std::optional<std::string>& text) {
  return text ? "'" + text->substr(0, 64) + "'" : "NULL";
}

// The row's text values; SQL NULL as nullopt.
std::optional<std::string> column(MYSQL_ROW row, const unsigned long* lengths, unsigned index) {
  if (!row[index]) return std::nullopt;
  return std::string(row[index], lengths[index]);
}

Result<void> read_variables(MYSQL_RES* result, MySqlProbeRow& out) {
  if (mysql_num_fields(result) != 3 || mysql_num_rows(result) != 1) {
    return make_error("probe query returned an unexpected shape");
  }
  MYSQL_ROW row = mysql_fetch_row(result);
  const unsigned long* lengths = mysql_fetch_lengths(result);
  if (!row || !lengths) return make_error("probe query returned no row");
  out.read_only = column(row, lengths, 0);
  out.log_bin = column(row, lengths, 1);
  out.gtid_current_pos = column(row, lengths, 2);
  return {};
}

// By column name: SHOW ALL SLAVES STATUS has some sixty columns whose order
// has changed between versions.
Result<void> read_replication(MYSQL_RES* result, MySqlProbeRow& out) {
  const unsigned count = mysql_num_fields(result);
  const MYSQL_FIELD* fields = mysql_fetch_fields(result);
  std::optional<unsigned> io, sql, gtid_io;
  for (unsigned i = 0; i < count; ++i) {
    std::string_view name(fields[i].name, fields[i].name_length);
    if (name == "Slave_IO_Running") io = i;
    if (name == "Slave_SQL_Running") sql = i;
    if (name == "Gtid_IO_Pos") gtid_io = i;
  }
  if (!io || !sql || !gtid_io) {
    return make_error(
        "SHOW ALL SLAVES STATUS lacks Slave_IO_Running, Slave_SQL_Running or Gtid_IO_Pos");
  }
  while (MYSQL_ROW row = mysql_fetch_row(result)) {
    const unsigned long* lengths = mysql_fetch_lengths(result);
    out.replication.push_back({column(row, lengths, *io).value_or(""),
                               column(row, lengths, *sql).value_or(""),
                               column(row, lengths, *gtid_io).value_or("")});
  }
  return {};
}

short poll_events(int wait_status) {
  short events = 0;
  if (wait_status & MYSQL_WAIT_READ) events |= POLLIN;
  if (wait_status & MYSQL_WAIT_WRITE) events |= POLLOUT;
  if (wait_status & MYSQL_WAIT_EXCEPT) events |= POLLPRI;
  return events;
}

// What to tell the library happened. On an error or hang-up poll() reports
// neither POLLIN nor POLLOUT; resuming with what it waited for makes it retry
// its read or write and see the error itself.
int ready_status(short revents, short waited) {
  int status = 0;
  if (revents & POLLIN) status |= MYSQL_WAIT_READ;
  if (revents & POLLOUT) status |= MYSQL_WAIT_WRITE;
  if (revents & POLLPRI) status |= MYSQL_WAIT_EXCEPT;
  if (revents & (POLLERR | POLLHUP | POLLNVAL)) {
    if (waited & POLLIN) status |= MYSQL_WAIT_READ;
    if (waited & POLLOUT) status |= MYSQL_WAIT_WRITE;
  }
  return status;
}

// Connector/C's one-time set-up is not safe to race with another thread's
// first mysql_init(); a function-local static runs it exactly once.
bool client_library_ready() {
  static const bool ready = mysql_library_init(0, nullptr, nullptr) == 0;
  return ready;
}

// One backend's Connector/C connection and this round's probe on it: a state
// machine over the non-blocking API (each *_start/_cont call returns either 0,
// done, or the MYSQL_WAIT_* events it needs before the next _cont).
class MySqlProbe final : public ProbeConnection {
 public:
  MySqlProbe(const ProbeTarget& target, const MonitorOptions& options)
      : target_(target), options_(options) {}
  ~MySqlProbe() override { close(); }

  pollfd wait_spec() const override { return pollfd{fd_, events_, 0}; }

  void advance(short revents) override {
    const int ready = ready_status(revents, events_);
    switch (phase_) {
      case Phase::Connecting: {
        MYSQL* connected = nullptr;
        int status = mysql_real_connect_cont(&connected, mysql_, ready);
        return on_connect(status, connected);
      }
      case Phase::Querying: {
        int error = 0;
        int status = mysql_real_query_cont(&error, mysql_, ready);
        return on_query(status, error);
      }
      case Phase::StoringVariables: {
        MYSQL_RES* result = nullptr;
        int status = mysql_store_result_cont(&result, mysql_, ready);
        return on_variables(status, result);
      }
      case Phase::NextResult: {
        int more = 0;
        int status = mysql_next_result_cont(&more, mysql_, ready);
        return on_next_result(status, more);
      }
      case Phase::StoringReplication: {
        MYSQL_RES* result = nullptr;
        int status = mysql_store_result_cont(&result, mysql_, ready);
        return on_replication(status, result);
      }
      case Phase::Closed:
      case Phase::Idle:
        return;
    }
  }

  void close() override {
    if (mysql_) {
      // mysql_close() sends COM_QUIT with a blocking write. Mid-operation the
      // server may be hung, or the socket still connecting: mariadb_cancel()
      // shuts the socket down first so that write fails at once instead.
      if (phase_ != Phase::Idle) mariadb_cancel(mysql_);
      mysql_close(mysql_);
    }
    mysql_ = nullptr;
    phase_ = Phase::Closed;
    fd_ = -1;
    events_ = 0;
    row_ = {};
  }

 protected:
  bool idle() const override { return phase_ == Phase::Idle; }
  bool connecting() const override { return phase_ == Phase::Connecting; }

  void start_connect() override {
    close();
    if (!client_library_ready())
      return fail("connect: MariaDB client library failed to initialise");
    mysql_ = mysql_init(nullptr);
    if (!mysql_) return fail("connect: out of memory");
    if (mysql_options(mysql_, MYSQL_OPT_NONBLOCK, 0) != 0) {
      return fail("connect: cannot enable non-blocking mode");
    }
    const bool use_socket = !target_.unix_socket_dir.empty();
    // Explicit, because Connector/C takes host "localhost" to mean its
    // default Unix socket, which is not the server the topology names.
    unsigned protocol = use_socket ? MYSQL_PROTOCOL_SOCKET : MYSQL_PROTOCOL_TCP;
    mysql_options(mysql_, MYSQL_OPT_PROTOCOL, &protocol);
    // Shows in the server's connection attributes, like libpq's application_name.
    mysql_optionsv(mysql_, MYSQL_OPT_CONNECT_ATTR_ADD, "program_name", "shardgate-monitor");
    // No MYSQL_OPT_CONNECT_TIMEOUT or read/write timeouts: the round deadline
    // bounds every phase (Monitor closes a probe still pending then), and
    // without them the library never asks to wait for a timeout alone.
    const char* host = use_socket || target_.host.empty() ? nullptr : target_.host.c_str();
    const char* socket = use_socket ? target_.unix_socket_dir.c_str() : nullptr;
    MYSQL* connected = nullptr;
    phase_ = Phase::Connecting;
    int status = mysql_real_connect_start(&connected, mysql_, host, options_.user.c_str(),
                                          options_.password.c_str(), /*db=*/nullptr, target_.port,
                                          socket, CLIENT_MULTI_STATEMENTS);
    on_connect(status, connected);
  }

  void start_probe() override {
    row_ = {};
    phase_ = Phase::Querying;
    int error = 0;
    int status = mysql_real_query_start(&error, mysql_, kProbeQuery.data(), kProbeQuery.size());
    on_query(status, error);
  }

 private:
  enum class Phase {
    Closed,
    Connecting,
    Idle,
    Querying,            // sending the statements, waiting for the first result
    StoringVariables,    // reading the SELECT's result set
    NextResult,          // waiting for SHOW ALL SLAVES STATUS's result
    StoringReplication,  // reading it
  };

  void on_connect(int status, MYSQL* connected) {
    if (status) return wait_for(status, "connect");
    if (!connected) return fail(client_error("connect"));
    phase_ = Phase::Idle;
    start_probe();
  }

  void on_query(int status, int error) {
    if (status) return wait_for(status, "query");
    if (error) return fail(client_error("query"));
    phase_ = Phase::StoringVariables;
    MYSQL_RES* result = nullptr;
    status = mysql_store_result_start(&result, mysql_);
    on_variables(status, result);
  }

  void on_variables(int status, MYSQL_RES* result) {
    if (status) return wait_for(status, "query");
    if (!result) return fail(client_error("query"));
    auto read = read_variables(result, row_);
    mysql_free_result(result);
    if (!read) return fail(read.error().message());
    phase_ = Phase::NextResult;
    int more = 0;
    status = mysql_next_result_start(&more, mysql_);
    on_next_result(status, more);
  }

  void on_next_result(int status, int more) {
    if (status) return wait_for(status, "query");
    // 0: another result follows; -1: none; >0: the next statement failed
    // (e.g. the monitor user lacks SLAVE MONITOR).
    if (more > 0) return fail(client_error("query"));
    if (more < 0) return fail("probe query returned one result set, expected two");
    phase_ = Phase::StoringReplication;
    MYSQL_RES* result = nullptr;
    status = mysql_store_result_start(&result, mysql_);
    on_replication(status, result);
  }

  void on_replication(int status, MYSQL_RES* result) {
    if (status) return wait_for(status, "query");
    if (!result) return fail(client_error("query"));
    auto read = read_replication(result, row_);
    mysql_free_result(result);
    if (!read) return fail(read.error().message());
    // Anything left unread would put the next round's query out of sync.
    if (mysql_more_results(mysql_)) return fail("probe query returned more than two result sets");
    phase_ = Phase::Idle;
    auto outcome = interpret_mysql_probe(row_);
    row_ = {};
    if (!outcome) return fail(outcome.error().message());
    succeed(std::move(*outcome));
  }

  void wait_for(int status, const char* stage) {
    fd_ = mysql_get_socket(mysql_);
    if (fd_ < 0) return fail(std::string(stage) + ": connection has no socket");
    events_ = poll_events(status);
  }

  // "connect: ERROR 2002 (HY000): Can't connect to server on '127.0.0.1' (111)",
  // the way MariaDB's own client prints it.
  std::string client_error(const char* stage) const {
    if (!mysql_) return std::string(stage) + ": unknown error";
    return std::string(stage) + ": ERROR " + std::to_string(mysql_errno(mysql_)) + " (" +
           mysql_sqlstate(mysql_) + "): " + detail::one_line(mysql_error(mysql_), "unknown error");
  }

  const ProbeTarget& target_;
  const MonitorOptions& options_;
  MYSQL* mysql_ = nullptr;
  Phase phase_ = Phase::Closed;
  int fd_ = -1;
  short events_ = 0;
  MySqlProbeRow row_;  // filled across the two result sets
};

}  // namespace

Result<std::optional<uint64_t>> parse_gtid_seq(std::string_view gtid_list, uint32_t domain) {
  auto bad = [&](const std::string& why) {
    return make_error("invalid GTID list '" + std::string(gtid_list.substr(0, 64)) + "': " + why);
  };
  std::optional<uint64_t> seq;
  std::string_view rest = trimmed(gtid_list);
  if (rest.empty()) return seq;
  while (true) {
    const size_t comma = rest.find(',');
    const std::string_view item = trimmed(rest.substr(0, comma));
    auto gtid = parse_gtid(item);
    if (!gtid)
      return bad("expected domain-server_id-seq_no in decimal, got '" +
                 std::string(item.substr(0, 32)) + "'");
    if (gtid->domain == domain) seq = std::max(seq.value_or(0), gtid->seq_no);
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  return seq;
}

Result<ProbeOutcome> interpret_mysql_probe(const MySqlProbeRow& row, uint32_t domain) {
  // read_only: anything but an explicit off counts as read-only (later
  // versions add values such as NO_LOCK): a server we cannot read as writable
  // is never taken for a primary.
  if (!row.read_only) return make_error("@@read_only is NULL");
  const bool read_only = !(*row.read_only == "0" || *row.read_only == "OFF");
  const auto log_bin = boolean(row.log_bin);
  if (!log_bin) return make_error("unexpected @@log_bin value " + shown(row.log_bin));
  if (!row.gtid_current_pos) return make_error("@@gtid_current_pos is NULL");

  bool replicating = false;
  bool connected = false;
  std::optional<uint64_t> received;
  for (const auto& r : row.replication) {
    // Slave_IO_Running is Yes, No, Connecting or Preparing: anything but No
    // means it runs or keeps retrying its primary.
    if (r.sql_running == "Yes" || (!r.io_running.empty() && r.io_running != "No")) {
      replicating = true;
    }
    if (r.io_running == "Yes") connected = true;
    auto io = parse_gtid_seq(r.gtid_io_pos, domain);
    if (!io) return make_error("Gtid_IO_Pos: " + io.error().message());
    if (*io) received = std::max(received.value_or(0), **io);
  }

  auto current = parse_gtid_seq(*row.gtid_current_pos, domain);
  if (!current) return make_error("@@gtid_current_pos: " + current.error().message());

  ProbeOutcome outcome;
  outcome.ok = true;
  outcome.role = read_only || replicating ? ObservedRole::Replica : ObservedRole::Primary;
  outcome.replication_configured = !row.replication.empty();
  if (outcome.role == ObservedRole::Primary) {
    // Without a binlog, gtid_current_pos is only the (stale) slave position:
    // the server's own writes carry no GTID, so its position is unknown.
    if (*log_bin) outcome.lsn = current->value_or(0);
  } else {
    outcome.lsn = current->value_or(0);
    outcome.receive_lsn = std::max(received.value_or(0), *outcome.lsn);
    outcome.upstream_connected = connected;
  }
  return outcome;
}

std::unique_ptr<ProbeConnection> make_mysql_probe(const ProbeTarget& target,
                                                  const MonitorOptions& options) {
  return std::make_unique<MySqlProbe>(target, options);
}

MySqlMonitor::MySqlMonitor(std::vector<ProbeTarget> targets, MonitorOptions options)
    : Monitor(std::move(targets), std::move(options), make_mysql_probe) {
  // On the constructing thread, before the monitor thread's first mysql_init().
  client_library_ready();
}

}  // namespace shardgate::replication
