// Integration-test harness: a real PostgreSQL sandbox (primary + 2 streaming
// replicas, started with `shardctl sandbox up`) and a real shardgate process in
// front of it, shared by every test of the binary. Nothing is mocked.
#pragma once

#include <libpq-fe.h>
#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace shardgate::it {

inline constexpr int kBasePort = 21432;  // primary; replicas +1, +2
inline constexpr int kProxyPort = 21532;
inline constexpr int kAdminPort = 21533;

struct PgConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
using Conn = std::unique_ptr<PGconn, PgConnDeleter>;

struct PgResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Res = std::unique_ptr<PGresult, PgResultDeleter>;

std::string sandbox_dir();
std::string bin(const std::string& name);  // build/bin/<name>

std::string proxy_conninfo(const std::string& user = "app", const std::string& password = "app");
std::string direct_conninfo(int port, const std::string& user = "postgres",
                            const std::string& password = "postgres");
Conn connect(const std::string& conninfo);  // asserts success

// Runs a statement; returns the first column of the first row, or nullopt on
// error (the error text goes to *error when given).
std::optional<std::string> scalar(PGconn* c, const std::string& sql, std::string* error = nullptr);
// Runs a command (shell), returns its exit status and output.
int run(const std::string& command, std::string* output = nullptr);

// Connects to 127.0.0.1:port, sends raw bytes, returns everything answered
// until the peer closes (or 5 s pass).
std::string raw_exchange(const std::string& bytes, int port = kProxyPort);

// Process control over the sandbox's servers.
pid_t postmaster_pid(const std::string& member);  // "pg-s0-replica1"
void kill_member(const std::string& member);      // kill -9 of the postmaster
void start_member(const std::string& member);     // pg_ctl start, waits until it accepts
bool wait_until(const std::function<bool()>& predicate, int timeout_ms);

// Starts a shardgate with `config_path`, waits until it listens on `port`,
// returns its pid (-1 on failure). Stopped by stop_proxy.
pid_t start_proxy(const std::string& config_path, int port);
void stop_proxy(pid_t pid);
// Waits until the proxy whose admin API listens on admin_port counts no
// client (start_proxy's own port probe is one until the proxy sees it close).
bool wait_for_no_clients(int admin_port);
// Writes a shardgate config transformed by a sed script as <name>.yaml beside
// it: by default the PostgreSQL sandbox's, else `source_yaml`.
std::string write_config_variant(const std::string& name, const std::string& sed_script,
                                 const std::string& source_yaml = "");

// The shared sandboxes' tests kill and restart primaries on purpose and
// expect them back: their proxies run with automatic failover off (the
// failover tests start sandboxes of their own).
void disable_failover(const std::string& config_path);

// Whether the run includes a test of a suite whose name starts with `prefix`:
// an environment whose sandbox no selected test uses leaves it down.
bool suites_selected(const std::string& prefix);
// Whether a process is gone, or only a zombie waiting to be reaped whose every
// thread has exited (it holds no port, file or lock any more).
bool process_gone(pid_t pid);

}  // namespace shardgate::it
