#include "tools/shardctl/sandbox_postgres.h"

#include <libpq-fe.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <vector>

namespace shardgate::shardctl {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr const char* kPreferredBinDir = "/usr/lib/postgresql/15/bin";
// wal_keep_size, which the sandbox relies on instead of slots, appeared in 13.
constexpr int kMinPostgresMajor = 13;
constexpr seconds kReplicationWait{60};

// postgresql.conf string literal: single quotes, an embedded quote doubled.
std::string conf_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

// ---------------------------------------------------------------- binaries

struct PgBinaries {
  fs::path dir;
  std::string tool(const char* name) const { return (dir / name).string(); }
};

bool has_server_tools(const fs::path& dir) {
  for (const char* tool : {"initdb", "pg_ctl", "pg_basebackup", "postgres"}) {
    if (::access((dir / tool).c_str(), X_OK) != 0) return false;
  }
  return true;
}

Result<void> check_version(const PgBinaries& bin) {
  auto run = run_process({bin.tool("pg_ctl"), "--version"}, RunOptions{{}, seconds(10)});
  if (!run) return run.error();
  // "pg_ctl (PostgreSQL) 15.8 (Debian 15.8-0+deb12u1)"
  const std::string& text = run->output;
  const auto paren = text.find(") ");
  const int major = paren == std::string::npos ? 0 : std::atoi(text.c_str() + paren + 2);
  if (major < kMinPostgresMajor)
    return make_error(bin.dir.string() + " holds PostgreSQL " + std::to_string(major) +
                      "; the sandbox needs " + std::to_string(kMinPostgresMajor) +
                      " or newer: install postgresql-15");
  return {};
}

// Debian's pg_config names the client package's directory, not the server's, so
// the versioned server directory is tried first and PATH second.
Result<PgBinaries> find_pg_binaries() {
  for (const auto& dir : program_dirs({kPreferredBinDir})) {
    if (!has_server_tools(dir)) continue;
    PgBinaries bin{dir};
    if (auto v = check_version(bin); !v) return v.error();
    return bin;
  }
  return make_error(std::string("PostgreSQL server programs (initdb, pg_ctl, pg_basebackup, ") +
                    "postgres) are in neither " + kPreferredBinDir +
                    " nor PATH: install them with `apt-get install postgresql-15`");
}

// ---------------------------------------------------------------- running servers

struct PidFile {
  pid_t pid = 0;
  int port = 0;
};

// postmaster.pid: line 1 the postmaster's pid, line 4 its port.
std::optional<PidFile> running_server(const fs::path& data_dir) {
  std::ifstream in(data_dir / "postmaster.pid");
  if (!in) return std::nullopt;
  std::string lines[4];
  for (auto& line : lines) std::getline(in, line);
  PidFile pid_file{static_cast<pid_t>(std::atol(lines[0].c_str())), std::atoi(lines[3].c_str())};
  if (!process_running(pid_file.pid)) return std::nullopt;
  return pid_file;
}

// A killed postmaster keeps its pid until it is reaped, and PostgreSQL will
// not start (nor pg_rewind recover) over a postmaster.pid naming a live pid.
Result<void> wait_postmaster_gone(const fs::path& data_dir) {
  std::ifstream in(data_dir / "postmaster.pid");
  long pid = 0;
  if (!(in >> pid) || pid <= 0) return {};
  if (wait_until([&] { return ::kill(static_cast<pid_t>(pid), 0) != 0; }, seconds(15),
                 milliseconds(20)))
    return {};
  return make_error("the old postmaster of " + data_dir.filename().string() + " (pid " +
                    std::to_string(pid) + ") has not gone away");
}

// pg_ctl must run as the data directory's owner; root asks that owner to do it.
std::optional<OsUser> stop_identity(const fs::path& data_dir) {
  struct stat st {};
  if (::geteuid() != 0 || ::stat(data_dir.c_str(), &st) != 0 || st.st_uid == 0) return std::nullopt;
  return find_os_user(st.st_uid);
}

bool pg_ctl_stop(const PgBinaries& bin, const fs::path& data_dir, const char* mode, int wait_s) {
  auto run = run_process({bin.tool("pg_ctl"), "stop", "-D", data_dir.string(), "-m", mode, "-w",
                          "-t", std::to_string(wait_s)},
                         RunOptions{stop_identity(data_dir), seconds(wait_s + 10)});
  return run && run->exit_code == 0 && !running_server(data_dir);
}

// Fast shutdown first (clean, seconds), then immediate, then SIGKILL to the
// postmaster's process group (pg_ctl made it a session leader), all bounded.
Result<void> stop_server(const PgBinaries& bin, const fs::path& data_dir) {
  const auto running = running_server(data_dir);
  if (!running) return {};
  const std::string name = data_dir.filename().string();
  if (pg_ctl_stop(bin, data_dir, "fast", 30) || pg_ctl_stop(bin, data_dir, "immediate", 10)) {
    note("stopped " + name);
    return {};
  }
  if (signal_and_wait(running->pid, SIGKILL, seconds(10))) {
    note("killed " + name + " (pg_ctl stop did not finish in time)");
    return {};
  }
  return make_error("cannot stop " + name + " (postmaster pid " + std::to_string(running->pid) +
                    "): stop it by hand");
}

// ---------------------------------------------------------------- SQL over libpq

using PgConn = std::unique_ptr<PGconn, decltype(&PQfinish)>;

// Over the Unix socket as postgres: local connections are trusted, so the
// sandbox needs no password of its own to set the passwords up.
Result<PgConn> pg_connect(const fs::path& socket_dir, int port, const std::string& database) {
  const std::string port_text = std::to_string(port);
  const char* keys[] = {"host", "port", "user", "dbname", "connect_timeout", nullptr};
  const char* values[] = {
      socket_dir.c_str(), port_text.c_str(), "postgres", database.c_str(), "5", nullptr};
  PgConn conn(PQconnectdbParams(keys, values, 0), &PQfinish);
  if (!conn || PQstatus(conn.get()) != CONNECTION_OK)
    return make_error("cannot connect to port " + port_text + ": " +
                      (conn ? PQerrorMessage(conn.get()) : "out of memory"));
  return conn;
}

// Runs one statement; returns the first column of every row (empty for commands).
Result<std::vector<std::string>> pg_query(PGconn* conn, const std::string& sql) {
  std::unique_ptr<PGresult, decltype(&PQclear)> res(PQexec(conn, sql.c_str()), &PQclear);
  const auto status = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
    return make_error("`" + sql + "` failed: " + PQerrorMessage(conn));
  std::vector<std::string> column;
  for (int row = 0; row < PQntuples(res.get()); ++row)
    column.emplace_back(PQgetvalue(res.get(), row, 0));
  return column;
}

// ---------------------------------------------------------------- the sandbox

// A member's directory is its data directory (the integration tests rely on it).
std::string primary_settings(const SandboxContext& ctx, const Member& m) {
  std::ostringstream conf;
  conf << "\n# ---- shardgate sandbox (written by shardctl sandbox up) ----\n"
       << "listen_addresses = '127.0.0.1'\n"
       << "port = " << m.port << "\n"
       << "unix_socket_directories = " << conf_quote(ctx.socket_dir().string()) << "\n"
       << "cluster_name = " << conf_quote(m.name) << "\n"
       << "# logical: the proxy keeps a slot per database so that, after a failover, it can\n"
       << "# read back from an old primary what no replica received\n"
       << "wal_level = logical\n"
       << "# and a slot nobody advances any more cannot fill the disk\n"
       << "max_slot_wal_keep_size = '256MB'\n"
       << "# pg_rewind needs it to turn a failed-over old primary into a replica\n"
       << "wal_log_hints = on\n"
       << "max_wal_senders = 10\n"
       << "max_replication_slots = 20\n"
       << "hot_standby = on\n"
       << "hot_standby_feedback = on\n"
       << "# A replica drops a stream silent for 2 s (it pings after 1 s), so a primary\n"
       << "# cut off by a network partition is seen lost within seconds: failover waits\n"
       << "# for the replicas to confirm it (the default of 60 s would hold it that long).\n"
       << "wal_receiver_timeout = '2s'\n"
       << "wal_sender_timeout = '2s'\n"
       << "max_connections = 300\n"
       << "# shardgate commits a transaction that wrote on several shards in two phases\n"
       << "# (PREPARE TRANSACTION), which needs prepared-transaction slots.\n"
       << "max_prepared_transactions = 100\n"
       << "shared_buffers = 64MB\n"
       << "# fsync=off only because a sandbox's data is disposable: it makes start-up and\n"
       << "# tests fast on shared disks, and a crash can corrupt the cluster. Never copy it.\n"
       << "fsync = off\n"
       << "synchronous_commit = on\n"
       << "wal_keep_size = 256MB\n"
       << "log_min_messages = warning\n"
       << "password_encryption = scram-sha-256\n";
  return conf.str();
}

constexpr const char* kPgHba =
    "# shardgate sandbox: the Unix socket is trusted (shardctl sets up roles over it),\n"
    "# TCP clients need a password, and replicas may stream from loopback.\n"
    "local   all           all                     trust\n"
    "host    all           all       127.0.0.1/32  scram-sha-256\n"
    "host    replication   all       127.0.0.1/32  trust\n";

Result<void> start_server(const PgBinaries& bin, SandboxContext& ctx, const Member& m) {
  auto r = run_as_owner(ctx,
                        {bin.tool("pg_ctl"), "start", "-D", ctx.member_dir(m).string(), "-l",
                         ctx.log_file(m).string(), "-w", "-t", "60"},
                        seconds(90), "starting " + m.name);
  if (!r) return make_error(ctx.with_log(m, r.error().message()));
  ctx.started.push_back(ctx.member_dir(m));
  note("started " + m.name + " on port " + std::to_string(m.port));
  return {};
}

Result<void> create_roles(const SandboxContext& ctx, const Member& m) {
  auto conn = pg_connect(ctx.socket_dir(), m.port, "postgres");
  if (!conn) return conn.error();
  for (const char* sql :
       {"ALTER ROLE postgres PASSWORD 'postgres'", "CREATE ROLE app LOGIN PASSWORD 'app'",
        "CREATE DATABASE app OWNER app"}) {
    if (auto r = pg_query(conn->get(), sql); !r) return r.error();
  }
  // Since PostgreSQL 15 only the database owner may create in schema public; the
  // grant keeps the sandbox working if the owner is ever changed.
  auto app = pg_connect(ctx.socket_dir(), m.port, "app");
  if (!app) return app.error();
  if (auto r = pg_query(app->get(), "GRANT ALL ON SCHEMA public TO app"); !r) return r.error();
  return {};
}

Result<void> set_up_primary(const PgBinaries& bin, SandboxContext& ctx, const Member& m) {
  const fs::path data = ctx.member_dir(m);
  note("initdb " + m.name);
  if (auto r = make_owned_dir(data, ctx.owner, 0700); !r) return r;
  if (auto r = run_as_owner(
          ctx,
          {bin.tool("initdb"), "-D", data.string(), "-U", "postgres", "--auth-local=trust",
           "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C"},
          seconds(180), "initdb for " + m.name);
      !r)
    return r;
  if (auto r = write_file(data / "postgresql.conf", primary_settings(ctx, m), true); !r) return r;
  if (auto r = write_file(data / "pg_hba.conf", kPgHba, false); !r) return r;
  if (auto r = start_server(bin, ctx, m); !r) return r;
  if (auto r = create_roles(ctx, m); !r)
    return make_error("setting up roles on " + m.name + ": " + r.error().message());
  return {};
}

// A new replica of the server on primary_port: pg_basebackup into the
// member's (empty or missing) directory, its own settings, started.
Result<void> clone_replica(const PgBinaries& bin, SandboxContext& ctx, const Member& m,
                           int primary_port) {
  const fs::path data = ctx.member_dir(m);
  if (auto r = make_owned_dir(data, ctx.owner, 0700); !r) return r;
  if (auto r = run_as_owner(
          ctx,
          {bin.tool("pg_basebackup"), "-h", "127.0.0.1", "-p", std::to_string(primary_port), "-U",
           "postgres", "-D", data.string(), "-R", "-X", "stream", "--checkpoint=fast"},
          seconds(300), "pg_basebackup for " + m.name);
      !r)
    return r;
  // The copied postgresql.conf carries the primary's port and name; the auto
  // file is read last, so these lines win. cluster_name also becomes the
  // walreceiver's application_name, which names the replica in pg_stat_replication.
  const std::string own =
      "\n# shardgate sandbox: this replica's own settings\nport = " + std::to_string(m.port) +
      "\ncluster_name = " + conf_quote(m.name) + "\n";
  if (auto r = write_file(data / "postgresql.auto.conf", own, true); !r) return r;
  return start_server(bin, ctx, m);
}

Result<void> set_up_replica(const PgBinaries& bin, SandboxContext& ctx, const Member& m) {
  const Member& primary = ctx.primary_of(m.shard);
  note("pg_basebackup " + m.name + " from " + primary.name);
  return clone_replica(bin, ctx, m, primary.port);
}

// Whether the member's WAL receiver streams, without a break for a second,
// within `timeout`. A standby that cannot follow the new timeline connects,
// streams for a moment, is told the timeline forked before its position, and
// retries every 5 s: one look could catch it in that moment.
bool streams_within(const SandboxContext& ctx, const Member& m, seconds timeout) {
  int in_a_row = 0;
  return wait_until(
      [&] {
        auto conn = pg_connect(ctx.socket_dir(), m.port, "postgres");
        auto rows = conn ? pg_query(conn->get(), "SELECT status FROM pg_stat_wal_receiver")
                         : Result<std::vector<std::string>>(make_error("down"));
        const bool streaming = rows && rows->size() == 1 && rows->front() == "streaming";
        in_a_row = streaming ? in_a_row + 1 : 0;
        return in_a_row >= 10;
      },
      timeout, milliseconds(100));
}

// ---------------------------------------------------------------- replication check

struct ReplicationState {
  std::set<std::string> streaming;   // replica names streaming from their primary
  std::set<std::string> recovering;  // replicas that report pg_is_in_recovery()
};

ReplicationState replication_state(const SandboxContext& ctx) {
  ReplicationState state;
  for (const Member& m : ctx.members) {
    auto conn = pg_connect(ctx.socket_dir(), m.port, "postgres");
    if (!conn) continue;
    const char* sql = m.primary() ? "SELECT application_name FROM pg_stat_replication "
                                    "WHERE state = 'streaming'"
                                  : "SELECT pg_is_in_recovery()::text";
    auto rows = pg_query(conn->get(), sql);
    if (!rows) continue;
    if (!m.primary() && rows->size() == 1 && rows->front() == "true")
      state.recovering.insert(m.name);
    if (m.primary()) state.streaming.insert(rows->begin(), rows->end());
  }
  return state;
}

bool replication_complete(const SandboxContext& ctx, const ReplicationState& state) {
  return std::all_of(ctx.members.begin(), ctx.members.end(), [&](const Member& m) {
    return m.primary() || (state.streaming.count(m.name) && state.recovering.count(m.name));
  });
}

Result<void> wait_for_replication(const SandboxContext& ctx) {
  if (ctx.options.replicas == 0) return {};
  note("waiting for every replica to stream (up to " + std::to_string(kReplicationWait.count()) +
       " s)");
  ReplicationState state;
  const bool done = wait_until(
      [&] {
        state = replication_state(ctx);
        return replication_complete(ctx, state);
      },
      kReplicationWait, milliseconds(250));
  if (done) return {};
  std::string message =
      "replication did not come up within " + std::to_string(kReplicationWait.count()) + " s:";
  for (const Member& m : ctx.members) {
    if (m.primary()) continue;
    if (!state.streaming.count(m.name))
      message +=
          "\n" + ctx.with_log(m, m.name + " is not streaming from " + ctx.primary_of(m.shard).name);
    else if (!state.recovering.count(m.name))
      message += "\n" + ctx.with_log(m, m.name + " is not in recovery");
  }
  return make_error(message);
}

// ---------------------------------------------------------------- the engine

class PostgresEngine : public SandboxEngine {
 public:
  Result<void> find_programs() override {
    if (bin_) return {};
    auto found = find_pg_binaries();
    if (!found) return found.error();
    bin_ = *found;
    return {};
  }

  fs::path socket_path(const SandboxContext& ctx, const Member& m) const override {
    return ctx.socket_dir() / (".s.PGSQL." + std::to_string(m.port));
  }

  std::optional<int> running_port(const fs::path& member_dir) const override {
    if (auto pid_file = running_server(member_dir)) return pid_file->port;
    return std::nullopt;
  }

  Result<void> start_all(SandboxContext& ctx) override {
    for (const Member& m : ctx.members) {
      auto r = m.primary() ? set_up_primary(*bin_, ctx, m) : set_up_replica(*bin_, ctx, m);
      if (!r) return r;
    }
    return wait_for_replication(ctx);
  }

  Result<void> stop(const fs::path& member_dir) override {
    if (!running_server(member_dir)) return {};
    if (auto r = find_programs(); !r) return r;
    return stop_server(*bin_, member_dir);
  }

  std::optional<pid_t> server_pid(const fs::path& member_dir) const override {
    if (auto pid_file = running_server(member_dir)) return pid_file->pid;
    return std::nullopt;
  }

  // The last `port = N` of postgresql.conf and then postgresql.auto.conf,
  // as the server reads them.
  std::optional<int> member_port(const fs::path& member_dir) const override {
    std::optional<int> port;
    for (const char* file : {"postgresql.conf", "postgresql.auto.conf"}) {
      std::ifstream in(member_dir / file);
      // ALTER SYSTEM rewrites the auto file with quoted values: port = '15433'.
      for (std::string line; std::getline(in, line);) {
        const auto digits = line.find_first_of("0123456789");
        if (line.starts_with("port = ") && digits != std::string::npos)
          port = std::atoi(line.c_str() + digits);
      }
    }
    return port;
  }

  Result<void> start_member(SandboxContext& ctx, const Member& m) override {
    if (auto r = find_programs(); !r) return r;
    if (running_server(ctx.member_dir(m))) return {};
    if (auto r = wait_postmaster_gone(ctx.member_dir(m)); !r) return r;
    return start_server(*bin_, ctx, m);
  }

  // A lost machine takes the data directory with it. The member's own
  // settings (its port) live in that directory, so a one-line
  // postgresql.conf stays behind to name the port: `sandbox rejoin` clones
  // the member afresh on it, as a rebuilt machine would be.
  Result<void> destroy_data(const fs::path& member_dir) override {
    const auto port = member_port(member_dir);
    if (!port) return make_error("cannot read the port of " + member_dir.filename().string());
    std::error_code ec;
    std::vector<fs::path> entries;
    for (const auto& entry : fs::directory_iterator(member_dir, ec))
      entries.push_back(entry.path());
    for (const auto& entry : entries)
      if (!ec) fs::remove_all(entry, ec);
    if (ec)
      return make_error("cannot delete the data of " + member_dir.string() + ": " + ec.message());
    if (auto r =
            write_file(member_dir / "postgresql.conf",
                       "# shardgate sandbox: this member's data was deleted; `shardctl sandbox "
                       "rejoin` clones it again\nport = " +
                           std::to_string(*port) + "\n",
                       false);
        !r)
      return r;
    note("deleted the data directory of " + member_dir.filename().string());
    return {};
  }

  // pg_rewind takes the old primary back to where its timeline left the new
  // primary's, copying the new primary's files (its configuration too: the
  // member's own port and name are written again after). When it still
  // cannot follow (pg_rewind 15 finds "no rewind required" when the crashed
  // primary's end-of-recovery checkpoint sits exactly at the switch point,
  // yet that record keeps it off the new timeline), it is cloned afresh.
  // A member whose data was deleted is cloned at once.
  Result<void> rejoin_member(SandboxContext& ctx, const Member& m, int primary_port) override {
    if (auto r = find_programs(); !r) return r;
    const fs::path data = ctx.member_dir(m);
    // Running, it lets the proxy read back, from its catch-up slots, what
    // only it had, before pg_rewind discards that.
    if (fs::exists(data / "PG_VERSION") && start_member(ctx, m))
      note(m.name + ": " + wait_for_proxy_catch_up(ctx, m.name));
    if (auto r = stop_server(*bin_, data); !r) return r;
    if (auto r = wait_postmaster_gone(data); !r) return r;
    const std::string source = "host=127.0.0.1 port=" + std::to_string(primary_port) +
                               " user=postgres password=postgres dbname=postgres";
    if (!fs::exists(data / "PG_VERSION")) {
      note(m.name + " has no data directory any more; cloning it from the new primary");
      return reclone(ctx, m, primary_port);
    }
    auto rewound = run_as_owner(
        ctx,
        {bin_->tool("pg_rewind"), "--target-pgdata=" + data.string(), "--source-server=" + source},
        seconds(300), "pg_rewind of " + m.name);
    if (rewound) {
      const std::string own =
          "\n# shardgate sandbox: " + m.name + " rejoined as a replica\n" +
          "port = " + std::to_string(m.port) + "\ncluster_name = " + conf_quote(m.name) +
          "\nprimary_conninfo = " + conf_quote(source + " application_name=" + m.name) + "\n";
      if (auto r = write_file(data / "postgresql.auto.conf", own, true); !r) return r;
      if (auto r = write_file(data / "standby.signal", "", false); !r) return r;
      // It may also refuse to start: a member promoted and fenced before
      // can be rewound to a minimum recovery point on a timeline the new
      // primary's history does not hold.
      auto started = start_server(*bin_, ctx, m);
      if (started && streams_within(ctx, m, seconds(8))) return {};
      note(m.name + (started ? " does not stream" : " does not start") +
           " after pg_rewind; cloning it from the new primary. Its log ends:\n" +
           tail_of_file(ctx.log_file(m), 6));
      if (auto r = stop_server(*bin_, data); !r) return r;
    } else {
      note(rewound.error().message() + "; cloning " + m.name + " from the new primary");
    }
    return reclone(ctx, m, primary_port);
  }

 private:
  Result<void> reclone(SandboxContext& ctx, const Member& m, int primary_port) {
    const fs::path data = ctx.member_dir(m);
    std::error_code ec;
    fs::remove_all(data, ec);
    if (ec) return make_error("cannot remove " + data.string() + ": " + ec.message());
    return clone_replica(*bin_, ctx, m, primary_port);
  }

  std::optional<PgBinaries> bin_;  // found on first need: `down` of a stopped sandbox needs none
};

}  // namespace

std::unique_ptr<SandboxEngine> make_postgres_engine() {
  return std::make_unique<PostgresEngine>();
}

}  // namespace shardgate::shardctl
