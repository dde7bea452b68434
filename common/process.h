// Running external programs (shardctl's servers and tools, the proxy's
// mariadb-binlog catch-up): argv vectors only (never a shell, so paths with
// spaces or quotes cannot change the command), optionally as another OS user,
// with the output captured and every wait bounded in time.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace shardgate {

// An OS account to run a child process as (PostgreSQL refuses to run as root).
struct OsUser {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string home;
};

struct ProcessResult {
  // The exit status, or 128 + signal number when the child was killed by a signal
  // (the shell's convention, so one number tells the whole story).
  int exit_code = 0;
  std::string output;  // stdout and stderr, interleaved as the child wrote them
  bool timed_out = false;
};

struct RunOptions {
  std::optional<OsUser> as_user;  // empty: run as the current user
  std::chrono::milliseconds timeout{std::chrono::seconds(60)};
  // "NAME=value" entries added to (or replacing) the inherited environment:
  // how a password reaches a client tool without showing in `ps`.
  std::vector<std::string> env{};
  std::filesystem::path stdin_file{};  // empty: /dev/null
};

// Runs argv[0] (searched in PATH when it has no slash) and waits for it. An error
// means the program could not be started at all; a non-zero exit is a value.
Result<ProcessResult> run_process(const std::vector<std::string>& argv, const RunOptions& options);

struct DaemonOptions {
  std::optional<OsUser> as_user;  // empty: run as the current user
  // stdout and stderr are appended here; the file is created if missing and
  // given to as_user, so a server that reopens its log by name may write it.
  std::filesystem::path output;
};

// Starts argv as a daemon: in a session of its own (a Ctrl-C to shardctl does
// not reach it), adopted by init (it outlives shardctl and never becomes our
// zombie), stdin from /dev/null. Returns its pid once exec has succeeded; an
// error means it could not be started at all.
Result<pid_t> start_daemon(const std::vector<std::string>& argv, const DaemonOptions& options);

// Whether pid is a live process (not a zombie). With `name`, it must also be
// called that (/proc/PID/comm), so that a stale pid file whose pid was reused
// by an unrelated program is not taken for a server.
bool process_running(pid_t pid, std::string_view name = {});

// Sends `signal` to pid (to its whole process group when it leads one) and
// waits up to `timeout` for it to be gone. Returns whether it is gone.
bool signal_and_wait(pid_t pid, int signal, std::chrono::milliseconds timeout,
                     std::string_view name = {});

// Looks up an account by name; empty when it does not exist.
std::optional<OsUser> find_os_user(const std::string& name);
std::optional<OsUser> find_os_user(uid_t uid);
OsUser current_os_user();

// Whether `user` may access `path` with `mode` (R_OK/W_OK/X_OK), asked of the
// kernel from a child that has taken that identity, so ACLs and supplementary
// groups count exactly as they will for the real server.
bool user_can_access(const OsUser& user, const std::filesystem::path& path, int mode);

// Polls `ready` every `interval` until it returns true or `timeout` has passed.
// Returns whether it became true; the predicate is always tried at least once.
bool wait_until(const std::function<bool()>& ready, std::chrono::milliseconds timeout,
                std::chrono::milliseconds interval = std::chrono::milliseconds(200));

// The last `lines` lines of a text file (for error messages that show a log).
std::string tail_of_file(const std::filesystem::path& path, int lines);

}  // namespace shardgate
