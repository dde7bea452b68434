#include "tools/shardctl/sandbox.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <thread>
#include <vector>

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

namespace {

// The processes whose parent is `parent` (/proc/PID/stat's fourth field).
std::vector<pid_t> child_processes(pid_t parent) {
  std::vector<pid_t> children;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const auto paren = text.rfind(") ");
    if (paren == std::string::npos) continue;
    char state = 0;
    long ppid = 0;
    if (std::sscanf(text.c_str() + paren + 2, "%c %ld", &state, &ppid) == 2 && ppid == parent)
      children.push_back(static_cast<pid_t>(std::atol(name.c_str())));
  }
  return children;
}

}  // namespace

Result<pid_t> sandbox_signal_member(const std::filesystem::path& dir, const std::string& member,
                                    int signal) {
  auto engine = engine_of_member(member);
  if (!engine) return engine.error();
  const auto pid = (*engine)->server_pid(absolute_dir(dir) / member);
  if (!pid) return make_error(member + " is not running");
  // SIGSTOP/SIGCONT freeze the whole server: a PostgreSQL postmaster and
  // its children (backends, WAL senders), which do not always share its
  // process group (pg_ctl may lead it). A kill hits the server process
  // alone, as a crash of it does.
  if (::kill(*pid, signal) != 0)
    return make_error("cannot signal " + member + ": " + std::strerror(errno));
  if (signal == SIGSTOP || signal == SIGCONT) {
    for (pid_t child : child_processes(*pid)) ::kill(child, signal);
  }
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
