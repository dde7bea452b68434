#include "tools/shardctl/sandbox_mysql.h"

#include <mysql.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

namespace shardgate::shardctl {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr const char* kServerProgram = "mariadbd";
constexpr const char* kInstallProgram = "mariadb-install-db";
// SLAVE MONITOR appeared in 10.5.9; 10.11 also stopped SUPER from implying
// READ_ONLY ADMIN, which keeps `app` from writing to replicas (see kBootstrapSql).
constexpr int kMinMajor = 10;
constexpr int kMinMinor = 11;
constexpr seconds kStartWait{60};
constexpr seconds kReplicationWait{60};
constexpr seconds kStopWait{30};
constexpr seconds kKillWait{10};

// Users and databases every member starts with. mariadb-install-db runs this in
// bootstrap mode, where the grant tables are loaded only by FLUSH PRIVILEGES.
// It runs once, into the data directory the replicas are copied from, so every
// member has the same users without them being in any binlog.
constexpr const char* kBootstrapSql = R"sql(
FLUSH PRIVILEGES;
-- The socket user's hostname entry is ignored under skip-name-resolve and only
-- adds a warning to every start-up log.
DELETE FROM mysql.proxies_priv WHERE Host <> 'localhost';
CREATE USER 'app'@'%' IDENTIFIED BY 'app';
GRANT ALL PRIVILEGES ON *.* TO 'app'@'%';
-- Without it, read_only=ON refuses app's writes on replicas, as a PostgreSQL
-- standby does: a write the proxy sends to a replica fails instead of forking
-- the replica's GTID history.
REVOKE READ_ONLY ADMIN ON *.* FROM 'app'@'%';
CREATE USER 'repl'@'%' IDENTIFIED BY 'repl';
GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%';
-- Watches roles and positions, and, like postgres in the PostgreSQL sandbox, may
-- promote and fence: stop and repoint replication, flip read_only, kill sessions.
-- It also applies on a new primary what only a returning old primary had, from
-- that one's binlog: BINLOG REPLAY, and the rights those transactions need.
CREATE USER 'monitor'@'%' IDENTIFIED BY 'monitor';
GRANT REPLICATION CLIENT, SLAVE MONITOR, REPLICATION MASTER ADMIN, REPLICATION SLAVE ADMIN,
  READ_ONLY ADMIN, CONNECTION ADMIN, PROCESS, RELOAD, BINLOG REPLAY ON *.* TO 'monitor'@'%';
GRANT ALL PRIVILEGES ON app.* TO 'monitor'@'%';
GRANT ALL PRIVILEGES ON sbtest.* TO 'monitor'@'%';
CREATE DATABASE app CHARACTER SET utf8mb4;
CREATE DATABASE sbtest CHARACTER SET utf8mb4;
)sql";

// ---------------------------------------------------------------- layout of a member

fs::path config_file(const fs::path& member_dir) {
  return member_dir / "my.cnf";
}
fs::path data_dir(const fs::path& member_dir) {
  return member_dir / "data";
}
fs::path pid_file(const fs::path& member_dir) {
  return member_dir.parent_path() / kLogDirName / (member_dir.filename().string() + ".pid");
}
fs::path socket_file(const SandboxContext& ctx, const Member& m) {
  return ctx.socket_dir() / (m.name + ".sock");
}

// Option-file value: double quotes keep '#' and spaces in; the reader turns
// "\\" back into one backslash.
std::string cnf_quote(const std::string& text) {
  std::string out = "\"";
  for (char c : text) out += c == '\\' ? std::string("\\\\") : std::string(1, c);
  return out + "\"";
}

std::string server_config(const SandboxContext& ctx, const Member& m) {
  const fs::path dir = ctx.member_dir(m);
  std::ostringstream cnf;
  cnf << "# " << m.name << " of the shardgate sandbox (written by shardctl sandbox up).\n"
      << "# mariadbd reads only this file (--defaults-file), never /etc/mysql.\n"
      << "[mariadbd]\n"
      << "datadir = " << cnf_quote(data_dir(dir).string()) << "\n"
      << "port = " << m.port << "\n"
      << "bind-address = 127.0.0.1\n"
      << "socket = " << cnf_quote(socket_file(ctx, m).string()) << "\n"
      << "pid-file = " << cnf_quote(pid_file(dir).string()) << "\n"
      << "log-error = " << cnf_quote(ctx.log_file(m).string()) << "\n"
      << "skip-name-resolve\n"
      << "character-set-server = utf8mb4\n"
      << "collation-server = utf8mb4_general_ci\n"
      << "\n# replication: GTID, row-based, every member writes a binlog so any can be promoted;\n"
      << "# server_id is 100 * (shard + 1) + member: unique, and it names the member\n"
      << "server_id = " << 100 * (m.shard + 1) + m.index << "\n"
      << "report_host = 127.0.0.1\n"
      << "report_port = " << m.port << "\n"
      << "log_bin = binlog\n"
      << "relay_log = relay-bin\n"
      << "binlog_format = ROW\n"
      << "gtid_domain_id = 0\n"
      << "gtid_strict_mode = ON\n"
      << "log_slave_updates = ON\n"
      << "# A replica drops a master silent for 2 s (heartbeats every 1 s by default),\n"
      << "# so a primary cut off by a network partition is seen lost within seconds:\n"
      << "# failover waits for the replicas to confirm it (the default is 60 s).\n"
      << "slave_net_timeout = 2\n"
      << "read_only = " << (m.primary() ? "OFF" : "ON") << "\n"
      << "# MariaDB has no session_track_gtids: a session reads its last GTID from\n"
      << "# @@last_gtid, or has it tracked with session_track_system_variables. Tracked,\n"
      << "# every commit's OK packet carries its GTID: shardgate's write journal needs it.\n"
      << "session_track_system_variables = "
         "autocommit,character_set_client,character_set_connection,character_set_results,"
         "time_zone,last_gtid\n"
      << "\n# small, so that a sandbox of several servers fits a CI machine\n"
      << "max_connections = 500\n"
      << "# mariadbd asks for ~16 files per cached table; 1000 keeps that under the\n"
      << "# usual 20000 hard limit (the default of 2000 asks for more and warns)\n"
      << "table_open_cache = 1000\n"
      << "performance_schema = OFF\n"
      << "# room for messages over 16 MB, which travel as several packets\n"
      << "max_allowed_packet = 64M\n"
      << "innodb_buffer_pool_size = 32M\n"
      << "innodb_log_file_size = 16M\n"
      << "# relaxed durability only because a sandbox's data is disposable; never copy it\n"
      << "innodb_flush_log_at_trx_commit = 2\n"
      << "sync_binlog = 0\n";
  return cnf.str();
}

// The port line written by server_config.
std::optional<int> configured_port(const fs::path& member_dir) {
  std::ifstream in(config_file(member_dir));
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("port = ")) return std::atoi(line.c_str() + 7);
  }
  return std::nullopt;
}

std::optional<pid_t> running_pid(const fs::path& member_dir) {
  std::ifstream in(pid_file(member_dir));
  long pid = 0;
  if (!(in >> pid) || !process_running(static_cast<pid_t>(pid), kServerProgram))
    return std::nullopt;
  return static_cast<pid_t>(pid);
}

// ---------------------------------------------------------------- programs

struct MyPrograms {
  std::string server;
  std::string install;
};

std::optional<std::string> find_program(const char* name, const std::vector<fs::path>& dirs) {
  for (const auto& dir : dirs) {
    if (::access((dir / name).c_str(), X_OK) == 0) return (dir / name).string();
  }
  return std::nullopt;
}

Result<void> check_version(const std::string& server) {
  auto run = run_process({server, "--version"}, RunOptions{{}, seconds(10)});
  if (!run) return run.error();
  // "/usr/sbin/mariadbd  Ver 10.11.19-MariaDB-0+deb12u1 for debian-linux-gnu on x86_64"
  const std::string& text = run->output;
  const auto ver = text.find("Ver ");
  int major = 0, minor = 0;
  if (ver != std::string::npos) {
    major = std::atoi(text.c_str() + ver + 4);
    const auto dot = text.find('.', ver);
    if (dot != std::string::npos) minor = std::atoi(text.c_str() + dot + 1);
  }
  const bool mariadb = text.find("MariaDB") != std::string::npos;
  if (!mariadb || major < kMinMajor || (major == kMinMajor && minor < kMinMinor))
    return make_error(
        server + " is not MariaDB " + std::to_string(kMinMajor) + "." + std::to_string(kMinMinor) +
        " or newer (it says: " + text.substr(0, text.find('\n')) + "): install mariadb-server");
  return {};
}

Result<MyPrograms> find_my_programs() {
  const auto dirs = program_dirs({"/usr/sbin", "/usr/bin"});
  auto server = find_program(kServerProgram, dirs);
  auto install = find_program(kInstallProgram, dirs);
  if (!server || !install)
    return make_error(std::string("the MariaDB server programs (") + kServerProgram + ", " +
                      kInstallProgram +
                      ") are in neither /usr/sbin nor PATH: install them with `apt-get install "
                      "mariadb-server mariadb-client`");
  if (auto r = check_version(*server); !r) return r.error();
  return MyPrograms{*server, *install};
}

// ---------------------------------------------------------------- SQL over libmariadb

using MyConn = std::unique_ptr<MYSQL, decltype(&mysql_close)>;
using Row = std::map<std::string, std::string>;

struct ConnectError {
  std::string message;
  bool server_refused = false;  // the server answered: waiting will not help
};

// Over the Unix socket as the OS user we are: mariadb-install-db gave root and
// the servers' owner unix_socket authentication, so no password is involved.
std::variant<MyConn, ConnectError> my_connect(const fs::path& socket) {
  MyConn conn(mysql_init(nullptr), &mysql_close);
  if (!conn) return ConnectError{"out of memory", false};
  const unsigned int timeout = 5;
  mysql_options(conn.get(), MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
  const std::string user = current_os_user().name;
  if (mysql_real_connect(conn.get(), "localhost", user.c_str(), nullptr, nullptr, 0, socket.c_str(),
                         0) == nullptr) {
    // Client-side errors (no socket yet, refused) are numbered from 2000.
    return ConnectError{
        "cannot connect to " + socket.string() + " as " + user + ": " + mysql_error(conn.get()),
        mysql_errno(conn.get()) < 2000};
  }
  return conn;
}

Result<MyConn> connect_member(const SandboxContext& ctx, const Member& m) {
  auto conn = my_connect(socket_file(ctx, m));
  if (auto* error = std::get_if<ConnectError>(&conn)) return make_error(error->message);
  return std::move(std::get<MyConn>(conn));
}

// Runs one statement; returns its rows by column name (NULL reads as "").
Result<std::vector<Row>> my_query(MYSQL* conn, const std::string& sql) {
  if (mysql_real_query(conn, sql.data(), sql.size()) != 0)
    return make_error("`" + sql + "` failed: " + mysql_error(conn));
  std::unique_ptr<MYSQL_RES, decltype(&mysql_free_result)> res(mysql_store_result(conn),
                                                               &mysql_free_result);
  std::vector<Row> rows;
  if (!res) {
    if (mysql_field_count(conn) != 0)
      return make_error("`" + sql + "` returned no result: " + mysql_error(conn));
    return rows;
  }
  const unsigned int count = mysql_num_fields(res.get());
  const MYSQL_FIELD* fields = mysql_fetch_fields(res.get());
  while (MYSQL_ROW values = mysql_fetch_row(res.get())) {
    const unsigned long* lengths = mysql_fetch_lengths(res.get());
    Row row;
    for (unsigned int i = 0; i < count; ++i)
      row[fields[i].name] = values[i] ? std::string(values[i], lengths[i]) : std::string();
    rows.push_back(std::move(row));
  }
  return rows;
}

// The one value of a one-row, one-column query.
Result<std::string> my_value(MYSQL* conn, const std::string& sql) {
  auto rows = my_query(conn, sql);
  if (!rows) return rows.error();
  if (rows->size() != 1 || rows->front().size() != 1)
    return make_error("`" + sql + "` did not return one value");
  return rows->front().begin()->second;
}

// ---------------------------------------------------------------- creating members

Result<void> install_primary(const MyPrograms& programs, const SandboxContext& ctx,
                             const Member& m) {
  const fs::path dir = ctx.member_dir(m);
  note("mariadb-install-db " + m.name);
  if (auto r = make_owned_dir(dir, ctx.owner, 0700); !r) return r;
  if (auto r = make_owned_dir(data_dir(dir), ctx.owner, 0700); !r) return r;
  const fs::path sql = dir / "bootstrap.sql";
  if (auto r = write_file(sql, kBootstrapSql, false); !r) return r;
  // --no-defaults: nothing from /etc/mysql; the options after it go to the
  // bootstrap server, sized as the real one will be.
  return run_as_owner(
      ctx,
      {programs.install, "--no-defaults", "--datadir=" + data_dir(dir).string(),
       "--auth-root-authentication-method=socket", "--auth-root-socket-user=" + ctx.owner.name,
       "--skip-test-db", "--skip-name-resolve", "--extra-file=" + sql.string(),
       "--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci",
       "--innodb-buffer-pool-size=32M", "--innodb-log-file-size=16M"},
      seconds(180), "mariadb-install-db for " + m.name);
}

// A replica starts as a copy of its primary's freshly installed, not yet
// started data directory: the same users and databases, an empty binlog, and
// far quicker than a second mariadb-install-db.
Result<void> copy_data(const SandboxContext& ctx, const Member& from, const Member& to) {
  const fs::path source = data_dir(ctx.member_dir(from));
  const fs::path target = data_dir(ctx.member_dir(to));
  note("copying " + from.name + "'s data directory to " + to.name);
  if (auto r = make_owned_dir(ctx.member_dir(to), ctx.owner, 0700); !r) return r;
  std::error_code ec;
  fs::copy(source, target, fs::copy_options::recursive, ec);
  if (ec)
    return make_error("cannot copy " + source.string() + " to " + target.string() + ": " +
                      ec.message());
  if (::geteuid() != 0) return {};
  // Copies made by root belong to root; the server needs them as its own.
  auto give = [&](const fs::path& p) {
    return ::lchown(p.c_str(), ctx.owner.uid, ctx.owner.gid) == 0;
  };
  bool ok = give(target);
  for (auto it = fs::recursive_directory_iterator(target, ec);
       ok && !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
    ok = give(it->path());
  if (!ok || ec) return make_error("cannot give " + target.string() + " to " + ctx.owner.name);
  return {};
}

Result<void> create_member(const MyPrograms& programs, const SandboxContext& ctx, const Member& m) {
  auto r =
      m.primary() ? install_primary(programs, ctx, m) : copy_data(ctx, ctx.primary_of(m.shard), m);
  if (!r) return r;
  return write_file(config_file(ctx.member_dir(m)), server_config(ctx, m), false);
}

// ---------------------------------------------------------------- starting

Result<pid_t> start_server(const MyPrograms& programs, SandboxContext& ctx, const Member& m) {
  auto pid =
      start_daemon({programs.server, "--defaults-file=" + config_file(ctx.member_dir(m)).string()},
                   DaemonOptions{ctx.switch_to, ctx.log_file(m)});
  if (!pid) return pid.error();
  ctx.started.push_back(ctx.member_dir(m));
  return *pid;
}

// Bounded; gives up at once when the server exits or refuses us.
Result<void> wait_accepting(const SandboxContext& ctx, const Member& m, pid_t pid) {
  std::optional<std::string> failure;
  const bool up = wait_until(
      [&] {
        if (!process_running(pid, kServerProgram)) {
          failure = m.name + " (mariadbd) exited during start-up";
          return true;
        }
        auto conn = my_connect(socket_file(ctx, m));
        if (auto* error = std::get_if<ConnectError>(&conn)) {
          if (error->server_refused) failure = error->message;
          return error->server_refused;
        }
        return true;
      },
      kStartWait, milliseconds(100));
  if (failure) return make_error(ctx.with_log(m, *failure));
  if (!up)
    return make_error(ctx.with_log(m, m.name + " did not accept connections within " +
                                          std::to_string(kStartWait.count()) + " s"));
  note("started " + m.name + " on port " + std::to_string(m.port));
  return {};
}

// ---------------------------------------------------------------- replication

Result<void> attach_replica(const SandboxContext& ctx, const Member& m, int primary_port) {
  auto conn = connect_member(ctx, m);
  if (!conn) return conn.error();
  // A one-second retry (the default is a minute) lets replicas follow a
  // restarted or newly promoted primary quickly in failover tests.
  const std::string change =
      "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=" + std::to_string(primary_port) +
      ", MASTER_USER='repl', MASTER_PASSWORD='repl', "
      "MASTER_CONNECT_RETRY=1, MASTER_USE_GTID=slave_pos";
  for (const std::string& sql : {change, std::string("START SLAVE")}) {
    if (auto r = my_query(conn->get(), sql); !r)
      return make_error("attaching " + m.name + ": " + r.error().message());
  }
  return {};
}

// "0-100-7,1-200-3" -> {"0": 7, "1": 3}: the last sequence number per domain.
std::map<std::string, unsigned long long> gtid_sequences(const std::string& position) {
  std::map<std::string, unsigned long long> sequences;
  std::stringstream gtids(position);
  for (std::string gtid; std::getline(gtids, gtid, ',');) {
    gtid.erase(0, gtid.find_first_not_of(" \n"));  // the server may break long lists
    const auto first = gtid.find('-');
    const auto last = gtid.rfind('-');
    if (first == std::string::npos || first == last) continue;
    sequences[gtid.substr(0, first)] = std::strtoull(gtid.c_str() + last + 1, nullptr, 10);
  }
  return sequences;
}

// Whether `applied` has reached `target` in every domain of the target.
bool gtid_reached(const std::string& applied, const std::string& target) {
  const auto have = gtid_sequences(applied);
  for (const auto& [domain, seq] : gtid_sequences(target)) {
    auto it = have.find(domain);
    if (it == have.end() || it->second < seq) return false;
  }
  return true;
}

// Empty when the replica runs both threads and has applied `target`; else why not.
std::string replica_lag(const SandboxContext& ctx, const Member& m, const std::string& target) {
  auto conn = connect_member(ctx, m);
  if (!conn) return conn.error().message();
  auto status = my_query(conn->get(), "SHOW SLAVE STATUS");
  if (!status) return status.error().message();
  if (status->empty()) return "no replication configured";
  Row& row = status->front();
  if (row["Slave_IO_Running"] != "Yes" || row["Slave_SQL_Running"] != "Yes")
    return "Slave_IO_Running=" + row["Slave_IO_Running"] + " (" + row["Last_IO_Error"] +
           "), Slave_SQL_Running=" + row["Slave_SQL_Running"] + " (" + row["Last_SQL_Error"] + ")";
  auto applied = my_value(conn->get(), "SELECT @@gtid_slave_pos");
  if (!applied) return applied.error().message();
  if (!gtid_reached(*applied, target))
    return "gtid_slave_pos " + *applied + " has not reached the primary's " + target;
  return {};
}

Result<void> wait_for_replication(const SandboxContext& ctx) {
  if (ctx.options.replicas == 0) return {};
  std::map<int, std::string> target;  // shard -> the primary's gtid_binlog_pos
  for (const Member& m : ctx.members) {
    if (!m.primary()) continue;
    auto conn = connect_member(ctx, m);
    if (!conn) return conn.error();
    auto pos = my_value(conn->get(), "SELECT @@gtid_binlog_pos");
    if (!pos) return pos.error();
    target[m.shard] = *pos;
  }
  note("waiting for every replica to replicate (up to " + std::to_string(kReplicationWait.count()) +
       " s)");
  std::map<std::string, std::string> lagging;  // replica -> why
  const bool done = wait_until(
      [&] {
        lagging.clear();
        for (const Member& m : ctx.members) {
          if (m.primary()) continue;
          if (auto why = replica_lag(ctx, m, target[m.shard]); !why.empty()) lagging[m.name] = why;
        }
        return lagging.empty();
      },
      kReplicationWait, milliseconds(200));
  if (done) return {};
  std::string message =
      "replication did not come up within " + std::to_string(kReplicationWait.count()) + " s:";
  for (const Member& m : ctx.members) {
    if (lagging.count(m.name)) message += "\n" + ctx.with_log(m, m.name + ": " + lagging[m.name]);
  }
  return make_error(message);
}

// ---------------------------------------------------------------- stopping

// SIGTERM is mariadbd's clean shutdown (what mariadb-admin shutdown asks for,
// without needing an account); SIGKILL if that does not finish in time.
Result<void> stop_server(const fs::path& member_dir) {
  const auto pid = running_pid(member_dir);
  if (!pid) return {};
  const std::string name = member_dir.filename().string();
  if (signal_and_wait(*pid, SIGTERM, kStopWait, kServerProgram)) {
    note("stopped " + name);
    return {};
  }
  if (signal_and_wait(*pid, SIGKILL, kKillWait, kServerProgram)) {
    note("killed " + name + " (it did not shut down within " + std::to_string(kStopWait.count()) +
         " s)");
    return {};
  }
  return make_error("cannot stop " + name + " (mariadbd pid " + std::to_string(*pid) +
                    "): stop it by hand");
}

// ---------------------------------------------------------------- rejoining

// The sandbox member (a directory next to `m`'s) whose server listens on `port`.
std::optional<Member> member_on_port(const SandboxContext& ctx, const Member& m, int port) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(ctx.options.dir, ec)) {
    if (!fs::exists(config_file(entry.path()))) continue;
    if (configured_port(entry.path()) != port) continue;
    Member found = m;
    found.name = entry.path().filename().string();
    found.port = port;
    return found;
  }
  return std::nullopt;
}

// The last domain-0 seq_no per server_id of a gtid_binlog_state.
Result<std::map<unsigned long, unsigned long long>> last_seq_by_server(const std::string& state) {
  std::map<unsigned long, unsigned long long> last;
  std::stringstream gtids(state);
  for (std::string gtid; std::getline(gtids, gtid, ',');) {
    unsigned long domain = 0, server = 0;
    unsigned long long seq = 0;
    if (std::sscanf(gtid.c_str(), " %lu-%lu-%llu", &domain, &server, &seq) != 3)
      return make_error("cannot read gtid_binlog_state entry '" + gtid + "'");
    if (domain == 0) last[server] = std::max(last[server], seq);
  }
  return last;
}

// "" when `old_primary` wrote nothing `primary` lacks; else which seq_nos.
Result<std::string> errant_range(const SandboxContext& ctx, const Member& old_primary,
                                 const Member& primary) {
  auto old_conn = connect_member(ctx, old_primary);
  if (!old_conn) return old_conn.error();
  auto own_id = my_value(old_conn->get(), "SELECT @@global.server_id");
  if (!own_id) return own_id.error();
  auto own_state = my_value(old_conn->get(), "SELECT @@global.gtid_binlog_state");
  if (!own_state) return own_state.error();
  auto new_conn = connect_member(ctx, primary);
  if (!new_conn) return new_conn.error();
  auto new_state = my_value(new_conn->get(), "SELECT @@global.gtid_binlog_state");
  if (!new_state) return new_state.error();
  auto own = last_seq_by_server(*own_state);
  if (!own) return own.error();
  auto received = last_seq_by_server(*new_state);
  if (!received) return received.error();
  const unsigned long id = std::strtoul(own_id->c_str(), nullptr, 10);
  const unsigned long long wrote = (*own)[id];
  const unsigned long long has = (*received)[id];
  if (wrote <= has) return std::string();
  return "transactions 0-" + *own_id + "-" + std::to_string(has + 1) + ".." + std::to_string(wrote);
}

std::string sh_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// The application databases of `from` into the fresh server `to`, with the
// GTID position they are at set as to's gtid_slave_pos. A logical copy, not
// a replay of from's binlog: the transactions the old primary wrote carry its
// own server_id, and a MariaDB replica skips events with its own server_id.
// Loaded with sql_log_bin=0, so to's binlog starts with what it replicates.
Result<void> copy_databases(const SandboxContext& ctx, const Member& from, const Member& to) {
  auto conn = connect_member(ctx, from);
  if (!conn) return conn.error();
  auto rows = my_query(conn->get(), "SHOW DATABASES");
  if (!rows) return rows.error();
  std::string databases;
  for (const Row& row : *rows) {
    const std::string& name = row.begin()->second;
    if (name == "information_schema" || name == "mysql" || name == "performance_schema" ||
        name == "sys")
      continue;
    databases += " " + sh_quote(name);
  }
  const auto dirs = program_dirs({"/usr/bin"});
  const auto dump = find_program("mariadb-dump", dirs);
  const auto client = find_program("mariadb", dirs);
  if (!dump || !client)
    return make_error("mariadb-dump or mariadb is missing: install mariadb-client");
  const std::string user = sh_quote(ctx.owner.name);
  const std::string script =
      "set -o pipefail; " + *dump + " --socket=" + sh_quote(socket_file(ctx, from).string()) +
      " -u " + user +
      " --single-transaction --gtid --master-data=1 --routines --events --triggers --databases" +
      databases + " | " + *client + " --socket=" + sh_quote(socket_file(ctx, to).string()) +
      " -u " + user + " --init-command='SET sql_log_bin = 0'";
  return run_as_owner(ctx, {"/bin/bash", "-c", script}, seconds(300),
                      "copying " + from.name + "'s databases to " + to.name);
}

Result<void> make_read_only(const fs::path& cnf) {
  std::ifstream in(cnf);
  if (!in) return make_error("cannot read " + cnf.string());
  std::string text, line;
  while (std::getline(in, line)) {
    if (line.rfind("read_only", 0) == 0) line = "read_only = ON";
    text += line + "\n";
  }
  return write_file(cnf, text, false);
}

// A fresh data directory with a copy of the new primary's databases,
// replicating from it by GTID. It is filled by a server that listens on a
// socket of its own only: the proxy, which watches the member's address,
// would otherwise find an empty read-only server and make it follow the new
// primary from the start of its binlog before the copy is in.
Result<void> rebuild_replica(SandboxContext& ctx, const Member& m, const Member& primary) {
  const fs::path dir = ctx.member_dir(m);
  if (auto r = stop_server(dir); !r) return r;
  const fs::path kept = dir / "data.discarded";
  std::error_code ec;
  fs::remove_all(kept, ec);
  if (fs::exists(data_dir(dir))) fs::rename(data_dir(dir), kept, ec);
  if (ec) return make_error("cannot move " + data_dir(dir).string() + " aside: " + ec.message());
  auto programs = find_my_programs();
  if (!programs) return programs.error();
  if (auto r = install_primary(*programs, ctx, m); !r) return r;
  // The member's own option file, read-only from now on. Not written anew:
  // a member found by name knows neither its shard nor its index, and its
  // server_id must stay its own (a replica ignores events of its own id).
  if (auto r = make_read_only(config_file(dir)); !r) return r;
  Member hidden = m;
  hidden.name = m.name + "-rebuilding";
  auto loader = start_daemon(
      {programs->server, "--defaults-file=" + config_file(dir).string(), "--skip-networking",
       "--skip-slave-start", "--socket=" + socket_file(ctx, hidden).string()},
      DaemonOptions{ctx.switch_to, ctx.log_file(m)});
  if (!loader) return loader.error();
  ctx.started.push_back(dir);
  if (auto r = wait_accepting(ctx, hidden, *loader); !r) return r;
  if (auto r = copy_databases(ctx, primary, hidden); !r) return r;
  if (auto r = attach_replica(ctx, hidden, primary.port); !r) return r;
  if (auto r = stop_server(dir); !r) return r;
  // Replication resumes by itself at this start (no skip-slave-start).
  auto pid = start_server(*programs, ctx, m);
  if (!pid) return pid.error();
  return wait_accepting(ctx, m, *pid);
}

// ---------------------------------------------------------------- the engine

class MysqlEngine : public SandboxEngine {
 public:
  Result<void> find_programs() override {
    if (programs_) return {};
    auto found = find_my_programs();
    if (!found) return found.error();
    programs_ = *found;
    return {};
  }

  fs::path socket_path(const SandboxContext& ctx, const Member& m) const override {
    return socket_file(ctx, m);
  }

  std::optional<int> running_port(const fs::path& member_dir) const override {
    if (!running_pid(member_dir)) return std::nullopt;
    return configured_port(member_dir);
  }

  // Every server starts at once and they come up side by side; replication is
  // attached once all of them answer.
  Result<void> start_all(SandboxContext& ctx) override {
    for (const Member& m : ctx.members) {
      if (auto r = create_member(*programs_, ctx, m); !r) return r;
    }
    std::vector<std::pair<Member, pid_t>> servers;
    for (const Member& m : ctx.members) {
      auto pid = start_server(*programs_, ctx, m);
      if (!pid) return pid.error();
      servers.emplace_back(m, *pid);
    }
    for (const auto& [m, pid] : servers) {
      if (auto r = wait_accepting(ctx, m, pid); !r) return r;
    }
    for (const Member& m : ctx.members) {
      if (m.primary()) continue;
      if (auto r = attach_replica(ctx, m, ctx.primary_of(m.shard).port); !r) return r;
    }
    return wait_for_replication(ctx);
  }

  Result<void> stop(const fs::path& member_dir) override { return stop_server(member_dir); }

  std::optional<pid_t> server_pid(const fs::path& member_dir) const override {
    return running_pid(member_dir);
  }

  Result<void> destroy_data(const fs::path& member_dir) override {
    std::error_code ec;
    fs::remove_all(data_dir(member_dir), ec);
    if (ec)
      return make_error("cannot delete " + data_dir(member_dir).string() + ": " + ec.message());
    note("deleted the data directory of " + member_dir.filename().string());
    return {};
  }

  std::optional<int> member_port(const fs::path& member_dir) const override {
    return configured_port(member_dir);
  }

  Result<void> start_member(SandboxContext& ctx, const Member& m) override {
    if (auto r = find_programs(); !r) return r;
    if (running_pid(ctx.member_dir(m))) return {};
    auto pid = start_server(*programs_, ctx, m);
    if (!pid) return pid.error();
    return wait_accepting(ctx, m, *pid);
  }

  // A MariaDB old primary that holds no transaction the new primary lacks
  // needs nothing but a start: the proxy fences it and points it at the new
  // primary by GTID. One that does (it committed writes no replica received
  // before it died; their clients got an error, not an acknowledgement)
  // cannot follow: MariaDB cannot take transactions back. It is rebuilt from
  // the new primary, its old data directory kept aside for inspection.
  Result<void> rejoin_member(SandboxContext& ctx, const Member& m, int primary_port) override {
    const auto primary = member_on_port(ctx, m, primary_port);
    if (!primary)
      return make_error("no member of the sandbox in " + ctx.options.dir.string() +
                        " listens on port " + std::to_string(primary_port));
    if (!fs::exists(data_dir(ctx.member_dir(m)) / "mysql")) {
      note(m.name + " has no data directory any more; rebuilding it as a replica of " +
           primary->name);
      return rebuild_replica(ctx, m, *primary);
    }
    if (auto r = start_member(ctx, m); !r) return r;
    auto errant = errant_range(ctx, m, *primary);
    if (!errant) return errant.error();
    if (errant->empty()) return {};
    note(m.name + "'s binlog holds " + *errant + ", which " + primary->name + " never received; " +
         wait_for_proxy_catch_up(ctx, m.name));
    note("rebuilding " + m.name + " as a replica of " + primary->name);
    return rebuild_replica(ctx, m, *primary);
  }

 private:
  std::optional<MyPrograms> programs_;
};

}  // namespace

std::unique_ptr<SandboxEngine> make_mysql_engine() {
  return std::make_unique<MysqlEngine>();
}

}  // namespace shardgate::shardctl
