// What `shardctl sandbox up|down` does the same for every engine: the checks,
// directories, rollback, config file and removal around the servers. An engine
// (sandbox_postgres, sandbox_mysql) implements SandboxEngine for the servers
// themselves: creating, starting, replicating, stopping.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/process.h"
#include "common/result.h"
#include "tools/shardctl/sandbox_config.h"

namespace shardgate::shardctl {

// Progress for the user, on stderr ("shardctl: ...").
void note(const std::string& message);

Result<void> write_file(const std::filesystem::path& path, const std::string& text, bool append);

// Creates path (and its parents) and gives it `mode` and, when we are root, `owner`.
Result<void> make_owned_dir(const std::filesystem::path& path, const OsUser& owner, mode_t mode);

// Where to look for a server's programs: `preferred` first (Debian keeps some
// outside PATH, e.g. /usr/lib/postgresql/15/bin), then the directories of PATH.
std::vector<std::filesystem::path> program_dirs(std::vector<std::filesystem::path> preferred);

// The path made absolute, without a trailing '/'.
std::filesystem::path absolute_dir(const std::filesystem::path& dir);

// One `up` in progress: the sandbox's shape and paths, and who runs the servers.
struct SandboxContext {
  SandboxOptions options;  // options.dir is absolute
  std::vector<Member> members;
  OsUser owner;                     // owns and runs the servers
  std::optional<OsUser> switch_to;  // set when that is not us (we are root)
  // Member directories whose server this run started; stopped again if `up` fails.
  std::vector<std::filesystem::path> started;

  std::filesystem::path member_dir(const Member& m) const { return options.dir / m.name; }
  std::filesystem::path log_file(const Member& m) const {
    return options.dir / kLogDirName / (m.name + ".log");
  }
  std::filesystem::path socket_dir() const { return options.dir / kSocketDirName; }
  const Member& primary_of(int shard) const;
  // The message, then the last lines of the member's log, which usually say why.
  std::string with_log(const Member& m, const std::string& message) const;
};

// Runs a program as the servers' owner; a failure to start, a timeout and a
// non-zero exit are errors that carry the program's output.
Result<void> run_as_owner(const SandboxContext& ctx, const std::vector<std::string>& argv,
                          std::chrono::seconds timeout, const std::string& what);

// The servers of one engine, as `up` and `down` drive them.
class SandboxEngine {
 public:
  virtual ~SandboxEngine() = default;
  // Finds the engine's programs and checks their version; the message says
  // which package to install.
  virtual Result<void> find_programs() = 0;
  // The Unix socket a member listens on (checked against the 107-byte limit of
  // socket paths before anything starts).
  virtual std::filesystem::path socket_path(const SandboxContext& ctx, const Member& m) const = 0;
  // The port of the server running in a member directory; empty when none runs.
  virtual std::optional<int> running_port(const std::filesystem::path& member_dir) const = 0;
  // Creates and starts every member and waits until each replica replicates.
  // Each server started is added to ctx.started before anything else can fail.
  virtual Result<void> start_all(SandboxContext& ctx) = 0;
  // Stops the server of a member directory if one runs; every wait is bounded.
  virtual Result<void> stop(const std::filesystem::path& member_dir) = 0;

  // For failover drills on a running sandbox (ctx from member_context):
  // The server's pid in a member directory; empty when none runs.
  virtual std::optional<pid_t> server_pid(const std::filesystem::path& member_dir) const = 0;
  // The port the member was set up with.
  virtual std::optional<int> member_port(const std::filesystem::path& member_dir) const = 0;
  // Starts a member's stopped server again, as set up, and waits until it
  // accepts connections.
  virtual Result<void> start_member(SandboxContext& ctx, const Member& m) = 0;
  // Makes a member that was a primary a replica of the server on
  // `primary_port` (after a failover), and starts it.
  virtual Result<void> rejoin_member(SandboxContext& ctx, const Member& m, int primary_port) = 0;
  // Deletes a stopped member's data, keeping what names it (port, config).
  virtual Result<void> destroy_data(const std::filesystem::path& member_dir) = 0;
};

// When the sandbox's proxy (the admin listener of DIR/shardgate.yaml) lists
// `member` as a fenced old primary, waits (up to 30 s) until it has applied
// on the new primary what only that member had: rejoining rewinds or
// rebuilds it, discarding those transactions. What happened, for a note;
// with no proxy answering it returns at once.
std::string wait_for_proxy_catch_up(const SandboxContext& ctx, const std::string& member);

// The context for acting on one member of an existing sandbox in DIR: its
// servers' owner, and the member with the port it was set up with.
Result<std::pair<SandboxContext, Member>> member_context(const std::filesystem::path& dir,
                                                         const std::string& member,
                                                         const SandboxEngine& engine);

// `sandbox up` with the given engine: starts the sandbox (or finds it already
// running exactly as asked), writes DIR/shardgate.yaml and returns its text. On
// failure the servers it started are stopped and the error says what to do.
Result<std::string> run_sandbox_up(SandboxOptions options, SandboxEngine& engine);

// `sandbox down`: stops the server of every member directory in DIR, replicas
// first, with the engine its name names; with `destroy`, removes DIR. Nothing
// running is success.
Result<void> run_sandbox_down(const DownOptions& options,
                              const std::function<SandboxEngine&(Engine)>& engine_for);

}  // namespace shardgate::shardctl
