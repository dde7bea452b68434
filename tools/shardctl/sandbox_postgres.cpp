#include "tools/shardctl/sandbox_postgres.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include "tools/shardctl/process.h"

namespace shardgate::shardctl {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

// The unprivileged account PostgreSQL runs as when shardctl is run by root.
constexpr const char* kPostgresOsUser = "shardgate";
constexpr const char* kPostgresOsHome = "/var/lib/shardgate";
constexpr const char* kPreferredBinDir = "/usr/lib/postgresql/15/bin";
// wal_keep_size, which the sandbox relies on instead of slots, appeared in 13.
constexpr int kMinPostgresMajor = 13;
constexpr int kLogTailLines = 20;
constexpr seconds kReplicationWait{60};

void note(const std::string& message) {
  std::cerr << "shardctl: " << message << "\n";
}

// ---------------------------------------------------------------- files

Result<void> write_file(const fs::path& path, const std::string& text, bool append) {
  std::ofstream out(path, append ? std::ios::app : std::ios::trunc);
  out << text;
  out.close();
  if (!out) return make_error("cannot write " + path.string() + ": " + std::strerror(errno));
  return {};
}

// postgresql.conf string literal: single quotes, an embedded quote doubled.
std::string conf_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

Result<void> make_owned_dir(const fs::path& path, const OsUser& owner, mode_t mode) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) return make_error("cannot create " + path.string() + ": " + ec.message());
  if (::chmod(path.c_str(), mode) != 0 ||
      (::geteuid() == 0 && ::chown(path.c_str(), owner.uid, owner.gid) != 0))
    return make_error("cannot set owner and mode of " + path.string() + ": " +
                      std::strerror(errno));
  return {};
}

// ---------------------------------------------------------------- binaries and user

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
  std::vector<fs::path> candidates{kPreferredBinDir};
  if (const char* path = std::getenv("PATH")) {
    std::stringstream entries(path);
    for (std::string entry; std::getline(entries, entry, ':');) {
      if (!entry.empty()) candidates.emplace_back(entry);
    }
  }
  for (const auto& dir : candidates) {
    if (!has_server_tools(dir)) continue;
    PgBinaries bin{dir};
    if (auto v = check_version(bin); !v) return v.error();
    return bin;
  }
  return make_error(std::string("PostgreSQL server programs (initdb, pg_ctl, pg_basebackup, ") +
                    "postgres) are in neither " + kPreferredBinDir +
                    " nor PATH: install them with `apt-get install postgresql-15`");
}

// PostgreSQL refuses to run as root, so root runs it as a dedicated system user.
Result<OsUser> postgres_os_user() {
  if (::geteuid() != 0) return current_os_user();
  if (auto user = find_os_user(kPostgresOsUser)) return *user;
  note(std::string("creating OS user ") + kPostgresOsUser + " (PostgreSQL refuses to run as root)");
  auto run = run_process({"useradd", "--system", "--create-home", "--home-dir", kPostgresOsHome,
                          "--shell", "/usr/sbin/nologin", kPostgresOsUser},
                         RunOptions{{}, seconds(30)});
  if (!run) return run.error();
  if (run->exit_code != 0)
    return make_error(std::string("cannot create OS user ") + kPostgresOsUser + ": " + run->output +
                      "create it yourself, then run again");
  if (auto user = find_os_user(kPostgresOsUser)) return *user;
  return make_error(std::string("useradd succeeded but user ") + kPostgresOsUser +
                    " is still unknown");
}

// Path resolution needs search permission on every ancestor, so the first one
// the server's user cannot enter is named (typically /root).
Result<void> check_traversable(const OsUser& user, const fs::path& dir) {
  if (user.uid == ::geteuid() || user_can_access(user, dir, X_OK)) return {};
  fs::path prefix;
  for (const auto& part : dir) {
    prefix /= part;
    if (!user_can_access(user, prefix, X_OK))
      return make_error(prefix.string() + " cannot be entered by OS user " + user.name +
                        ", which runs PostgreSQL (it refuses to run as root): choose a --dir "
                        "outside it (e.g. /tmp/sandbox) or allow it with `chmod o+x " +
                        prefix.string() + "`");
  }
  return make_error(dir.string() + " cannot be entered by OS user " + user.name);
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
  if (pid_file.pid <= 0) return std::nullopt;
  // EPERM still means alive: the process exists but belongs to another user.
  if (::kill(pid_file.pid, 0) != 0 && errno != EPERM) return std::nullopt;
  // A killed postmaster stays a zombie until its adoptive parent reaps it, and
  // kill(pid, 0) succeeds on zombies; /proc tells them apart.
  std::ifstream stat("/proc/" + std::to_string(pid_file.pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto paren = text.rfind(") ");
  if (paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] == 'Z')
    return std::nullopt;
  return pid_file;
}

// Data directories of the sandbox in DIR (pg-*), sorted by name.
std::vector<fs::path> member_dirs(const fs::path& dir) {
  std::vector<fs::path> dirs;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with(kMemberPrefix) && entry.is_directory()) dirs.push_back(entry.path());
  }
  std::sort(dirs.begin(), dirs.end());
  return dirs;
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
  ::kill(-running->pid, SIGKILL);
  ::kill(running->pid, SIGKILL);
  if (wait_until([&] { return !running_server(data_dir); }, seconds(10))) {
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

struct Context {
  PgBinaries bin;
  OsUser owner;                     // owns and runs the servers
  std::optional<OsUser> switch_to;  // set when that is not us (we are root)
  SandboxOptions options;
  std::vector<Member> members;
  std::vector<fs::path> started;  // stopped again if `up` fails

  fs::path data_dir(const Member& m) const { return options.dir / m.name; }
  fs::path log_file(const Member& m) const { return options.dir / kLogDirName / (m.name + ".log"); }
  fs::path socket_dir() const { return options.dir / kSocketDirName; }
  const Member& primary_of(int shard) const {
    return *std::find_if(members.begin(), members.end(),
                         [&](const Member& m) { return m.shard == shard && m.primary(); });
  }
};

Result<void> run_pg(const Context& ctx, const std::vector<std::string>& argv, seconds timeout,
                    const std::string& what) {
  auto run = run_process(argv, RunOptions{ctx.switch_to, timeout});
  if (!run) return run.error();
  if (run->timed_out)
    return make_error(what + " did not finish within " + std::to_string(timeout.count()) + " s:\n" +
                      run->output);
  if (run->exit_code != 0)
    return make_error(what + " failed (exit " + std::to_string(run->exit_code) + "):\n" +
                      run->output);
  return {};
}

std::string with_log(const Context& ctx, const Member& m, const std::string& message) {
  return message + "\n--- last lines of " + ctx.log_file(m).string() + " ---\n" +
         tail_of_file(ctx.log_file(m), kLogTailLines);
}

std::string primary_settings(const Context& ctx, const Member& m) {
  std::ostringstream conf;
  conf << "\n# ---- shardgate sandbox (written by shardctl sandbox up) ----\n"
       << "listen_addresses = '127.0.0.1'\n"
       << "port = " << m.port << "\n"
       << "unix_socket_directories = " << conf_quote(ctx.socket_dir().string()) << "\n"
       << "cluster_name = " << conf_quote(m.name) << "\n"
       << "wal_level = replica\n"
       << "max_wal_senders = 10\n"
       << "max_replication_slots = 10\n"
       << "hot_standby = on\n"
       << "hot_standby_feedback = on\n"
       << "max_connections = 300\n"
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

Result<void> start_server(Context& ctx, const Member& m) {
  auto r = run_pg(ctx,
                  {ctx.bin.tool("pg_ctl"), "start", "-D", ctx.data_dir(m).string(), "-l",
                   ctx.log_file(m).string(), "-w", "-t", "60"},
                  seconds(90), "starting " + m.name);
  if (!r) return make_error(with_log(ctx, m, r.error().message()));
  ctx.started.push_back(ctx.data_dir(m));
  note("started " + m.name + " on port " + std::to_string(m.port));
  return {};
}

Result<void> create_roles(const Context& ctx, const Member& m) {
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

Result<void> set_up_primary(Context& ctx, const Member& m) {
  const fs::path data = ctx.data_dir(m);
  note("initdb " + m.name);
  if (auto r = make_owned_dir(data, ctx.owner, 0700); !r) return r;
  if (auto r =
          run_pg(ctx,
                 {ctx.bin.tool("initdb"), "-D", data.string(), "-U", "postgres",
                  "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C"},
                 seconds(180), "initdb for " + m.name);
      !r)
    return r;
  if (auto r = write_file(data / "postgresql.conf", primary_settings(ctx, m), true); !r) return r;
  if (auto r = write_file(data / "pg_hba.conf", kPgHba, false); !r) return r;
  if (auto r = start_server(ctx, m); !r) return r;
  if (auto r = create_roles(ctx, m); !r)
    return make_error("setting up roles on " + m.name + ": " + r.error().message());
  return {};
}

Result<void> set_up_replica(Context& ctx, const Member& m) {
  const Member& primary = ctx.primary_of(m.shard);
  const fs::path data = ctx.data_dir(m);
  note("pg_basebackup " + m.name + " from " + primary.name);
  if (auto r = make_owned_dir(data, ctx.owner, 0700); !r) return r;
  if (auto r = run_pg(
          ctx,
          {ctx.bin.tool("pg_basebackup"), "-h", "127.0.0.1", "-p", std::to_string(primary.port),
           "-U", "postgres", "-D", data.string(), "-R", "-X", "stream", "--checkpoint=fast"},
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
  return start_server(ctx, m);
}

// ---------------------------------------------------------------- replication check

struct ReplicationState {
  std::set<std::string> streaming;   // replica names streaming from their primary
  std::set<std::string> recovering;  // replicas that report pg_is_in_recovery()
};

ReplicationState replication_state(const Context& ctx) {
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

bool replication_complete(const Context& ctx, const ReplicationState& state) {
  return std::all_of(ctx.members.begin(), ctx.members.end(), [&](const Member& m) {
    return m.primary() || (state.streaming.count(m.name) && state.recovering.count(m.name));
  });
}

Result<void> wait_for_replication(const Context& ctx) {
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
      message += "\n" + with_log(ctx, m,
                                 m.name + " is not streaming from " + ctx.primary_of(m.shard).name);
    else if (!state.recovering.count(m.name))
      message += "\n" + with_log(ctx, m, m.name + " is not in recovery");
  }
  return make_error(message);
}

// ---------------------------------------------------------------- preparing `up`

fs::path absolute_dir(const fs::path& dir) {
  fs::path p = fs::weakly_canonical(fs::absolute(dir));
  return p.has_filename() ? p : p.parent_path();  // drop a trailing '/'
}

// A bind on 127.0.0.1 fails when anything listens there or on 0.0.0.0.
bool port_free(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

Result<void> check_ports(const Context& ctx) {
  std::vector<std::pair<int, std::string>> wanted;
  for (const Member& m : ctx.members) wanted.emplace_back(m.port, m.name);
  wanted.emplace_back(ctx.options.proxy_port, "--proxy-port");
  wanted.emplace_back(ctx.options.admin_port, "--admin-port");
  for (const auto& [port, user] : wanted) {
    if (!port_free(port))
      return make_error("port " + std::to_string(port) + " (" + user +
                        ") is already in use on 127.0.0.1: stop what listens there (`ss -ltnp "
                        "'sport = :" +
                        std::to_string(port) +
                        "'`) or choose other ports (--base-port, --proxy-port, --admin-port)");
  }
  return {};
}

enum class Existing { kNone, kAllRunning };

// Decides what an earlier sandbox in DIR means for this `up`: nothing there, the
// very same sandbox running (fine), or anything else (the user must choose).
Result<Existing> inspect_existing(const Context& ctx) {
  const auto dirs = member_dirs(ctx.options.dir);
  if (dirs.empty()) return Existing::kNone;
  std::map<std::string, int> running;  // name -> port
  for (const auto& d : dirs) {
    if (auto pid = running_server(d)) running[d.filename().string()] = pid->port;
  }
  const bool same_shape = dirs.size() == ctx.members.size() &&
                          std::all_of(ctx.members.begin(), ctx.members.end(), [&](const Member& m) {
                            auto it = running.find(m.name);
                            return it != running.end() && it->second == m.port;
                          });
  if (same_shape) return Existing::kAllRunning;
  const std::string dir = ctx.options.dir.string();
  if (running.empty())
    return make_error(dir +
                      " already holds a stopped sandbox: remove it with `shardctl sandbox "
                      "down --dir " +
                      dir + " --destroy`, or choose another --dir");
  std::string running_text, stopped_text;
  for (const auto& [name, port] : running)
    running_text += (running_text.empty() ? "" : ", ") + name + " on port " + std::to_string(port);
  for (const auto& d : dirs) {
    const std::string name = d.filename().string();
    if (!running.count(name)) stopped_text += (stopped_text.empty() ? "" : ", ") + name;
  }
  return make_error(dir + " already holds a sandbox that is not running as asked (running: " +
                    running_text + (stopped_text.empty() ? "" : "; stopped: " + stopped_text) +
                    "): start over with `shardctl sandbox down --dir " + dir +
                    " --destroy`, or keep it and choose another --dir");
}

Result<void> prepare_dirs(const Context& ctx) {
  const fs::path& dir = ctx.options.dir;
  std::error_code ec;
  // Checked on the deepest existing ancestor first, so that a refusal leaves no
  // directories behind; checked again below in case our umask closed new ones.
  fs::path existing = dir;
  while (!fs::exists(existing, ec) && existing.has_parent_path() && existing != "/")
    existing = existing.parent_path();
  if (auto r = check_traversable(ctx.owner, existing); !r) return r;
  fs::create_directories(dir / kProxyDataDirName, ec);
  if (ec)
    return make_error("cannot create " + (dir / kProxyDataDirName).string() + ": " + ec.message());
  if (auto r = check_traversable(ctx.owner, dir); !r) return r;
  if (auto r = make_owned_dir(ctx.socket_dir(), ctx.owner, 0755); !r) return r;
  return make_owned_dir(dir / kLogDirName, ctx.owner, 0755);
}

Result<void> start_all(Context& ctx) {
  for (const Member& m : ctx.members) {
    auto r = m.primary() ? set_up_primary(ctx, m) : set_up_replica(ctx, m);
    if (!r) return r;
  }
  return wait_for_replication(ctx);
}

Result<std::string> write_config(const Context& ctx) {
  const std::string yaml = render_config_yaml(ctx.options, ctx.members);
  if (auto r = write_file(ctx.options.dir / kConfigFileName, yaml, false); !r) return r.error();
  return yaml;
}

Result<Context> make_context(SandboxOptions options) {
  if (auto r = validate(options); !r) return r.error();
  Context ctx;
  options.dir = absolute_dir(options.dir);
  ctx.options = options;
  ctx.members = sandbox_members(options);
  // A Unix socket path must fit sockaddr_un.sun_path (107 bytes and a NUL).
  const auto socket = ctx.socket_dir() / (".s.PGSQL." + std::to_string(ctx.members.back().port));
  if (socket.string().size() > 107)
    return make_error("--dir " + options.dir.string() + " is too long: the server socket " +
                      socket.string() + " would exceed the 107-byte limit of Unix socket paths");
  auto bin = find_pg_binaries();
  if (!bin) return bin.error();
  ctx.bin = *bin;
  auto owner = postgres_os_user();
  if (!owner) return owner.error();
  ctx.owner = *owner;
  if (ctx.owner.uid != ::geteuid()) ctx.switch_to = ctx.owner;
  return ctx;
}

// Files shardctl creates in DIR; --destroy refuses to remove anything else, so a
// mistyped --dir cannot wipe unrelated data.
bool sandbox_entry(const std::string& name) {
  return name.starts_with(kMemberPrefix) || name == kSocketDirName || name == kLogDirName ||
         name == kProxyDataDirName || name == kConfigFileName;
}

Result<void> destroy_dir(const fs::path& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (!sandbox_entry(name))
      return make_error("not removing " + dir.string() + ": it holds " + name +
                        ", which shardctl did not create; remove it yourself");
  }
  fs::remove_all(dir, ec);
  if (ec) return make_error("cannot remove " + dir.string() + ": " + ec.message());
  note("removed " + dir.string());
  return {};
}

}  // namespace

Result<std::string> postgres_sandbox_up(SandboxOptions options) {
  auto made = make_context(std::move(options));
  if (!made) return made.error();
  Context& ctx = *made;
  auto existing = inspect_existing(ctx);
  if (!existing) return existing.error();
  if (*existing == Existing::kAllRunning) {
    note("the sandbox in " + ctx.options.dir.string() + " is already running");
    return write_config(ctx);
  }
  if (auto r = check_ports(ctx); !r) return r.error();
  if (auto r = prepare_dirs(ctx); !r) return r.error();
  if (auto r = start_all(ctx); !r) {
    // Leave nothing running behind a failure; the files stay for inspection.
    for (auto it = ctx.started.rbegin(); it != ctx.started.rend(); ++it)
      (void)stop_server(ctx.bin, *it);
    return make_error(r.error().message() + "\nthe servers were stopped; inspect " +
                      ctx.options.dir.string() +
                      ", then remove it with `shardctl sandbox down --dir " +
                      ctx.options.dir.string() + " --destroy`");
  }
  return write_config(ctx);
}

Result<void> postgres_sandbox_down(DownOptions options) {
  const fs::path dir = absolute_dir(options.dir);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return {};  // nothing there, nothing running
  auto dirs = member_dirs(dir);
  // Replicas first: a primary's fast shutdown then has no walsenders to wait for.
  std::stable_partition(dirs.begin(), dirs.end(), [](const fs::path& d) {
    return d.filename().string().find("replica") != std::string::npos;
  });
  std::optional<PgBinaries> bin;
  for (const auto& data : dirs) {
    if (!running_server(data)) continue;
    if (!bin) {
      auto found = find_pg_binaries();
      if (!found) return found.error();
      bin = *found;
    }
    if (auto r = stop_server(*bin, data); !r) return r;
  }
  return options.destroy ? destroy_dir(dir) : Result<void>{};
}

}  // namespace shardgate::shardctl
