#include "tools/shardctl/sandbox.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <thread>

#include "tools/shardctl/sandbox_common.h"
#include "tools/shardctl/sandbox_mysql.h"
#include "tools/shardctl/sandbox_postgres.h"

namespace shardgate::shardctl {
namespace {

std::unique_ptr<SandboxEngine> make_engine(Engine engine) {
  return engine == Engine::kMysql ? make_mysql_engine() : make_postgres_engine();
}

}  // namespace

Result<std::string> sandbox_up(const SandboxOptions& options) {
  auto engine = make_engine(options.engine);
  return run_sandbox_up(options, *engine);
}

Result<void> sandbox_down(const DownOptions& options) {
  // Made when DIR first shows a member of that engine.
  std::map<Engine, std::unique_ptr<SandboxEngine>> engines;
  return run_sandbox_down(options, [&](Engine engine) -> SandboxEngine& {
    auto& slot = engines[engine];
    if (!slot) slot = make_engine(engine);
    return *slot;
  });
}

namespace {

Result<std::unique_ptr<SandboxEngine>> engine_of_member(const std::string& member) {
  const auto engine = member_engine(member);
  if (!engine)
    return make_error("'" + member +
                      "' is not a sandbox member name (pg-s0-primary, my-s1-replica2...)");
  return make_engine(*engine);
}

}  // namespace

Result<pid_t> sandbox_signal_member(const std::filesystem::path& dir, const std::string& member,
                                    int signal) {
  auto engine = engine_of_member(member);
  if (!engine) return engine.error();
  const auto pid = (*engine)->server_pid(absolute_dir(dir) / member);
  if (!pid) return make_error(member + " is not running");
  // SIGSTOP/SIGCONT freeze the whole server (a PostgreSQL postmaster leads
  // the process group of its backends and WAL senders); a kill hits the
  // server process alone, as a crash of it does.
  const bool whole_group = (signal == SIGSTOP || signal == SIGCONT) && ::getpgid(*pid) == *pid;
  if (::kill(whole_group ? -*pid : *pid, signal) != 0)
    return make_error("cannot signal " + member + ": " + std::strerror(errno));
  return *pid;
}

Result<void> sandbox_stop_member(const std::filesystem::path& dir, const std::string& member) {
  auto engine = engine_of_member(member);
  if (!engine) return engine.error();
  return (*engine)->stop(absolute_dir(dir) / member);
}

Result<void> sandbox_start_member(const std::filesystem::path& dir, const std::string& member) {
  auto engine = engine_of_member(member);
  if (!engine) return engine.error();
  auto ctx = member_context(dir, member, **engine);
  if (!ctx) return ctx.error();
  return (*engine)->start_member(ctx->first, ctx->second);
}

Result<void> sandbox_destroy_member_data(const std::filesystem::path& dir,
                                         const std::string& member, pid_t pid) {
  auto engine = engine_of_member(member);
  if (!engine) return engine.error();
  for (int i = 0; i < 100 && ::kill(pid, 0) == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  if (::kill(pid, 0) == 0) return make_error(member + " still runs: its data is left alone");
  return (*engine)->destroy_data(absolute_dir(dir) / member);
}

Result<void> sandbox_rejoin_member(const std::filesystem::path& dir, const std::string& member,
                                   int primary_port) {
  auto engine = engine_of_member(member);
  if (!engine) return engine.error();
  auto ctx = member_context(dir, member, **engine);
  if (!ctx) return ctx.error();
  return (*engine)->rejoin_member(ctx->first, ctx->second, primary_port);
}

}  // namespace shardgate::shardctl
