#include "tools/shardctl/sandbox_common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "tools/shardctl/admin_client.h"
#include "tools/shardctl/status.h"

namespace shardgate::shardctl {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

// The unprivileged account the servers run as when shardctl is run by root:
// PostgreSQL refuses to run as root, and MariaDB would need --user to.
constexpr const char* kServerOsUser = "shardgate";
constexpr const char* kServerOsHome = "/var/lib/shardgate";
constexpr int kLogTailLines = 20;
// sockaddr_un.sun_path holds 107 bytes and a NUL.
constexpr size_t kMaxSocketPath = 107;

// ---------------------------------------------------------------- who runs the servers

Result<OsUser> server_os_user() {
  if (::geteuid() != 0) return current_os_user();
  if (auto user = find_os_user(kServerOsUser)) return *user;
  note(std::string("creating OS user ") + kServerOsUser +
       " (the database servers do not run as root)");
  auto run = run_process({"useradd", "--system", "--create-home", "--home-dir", kServerOsHome,
                          "--shell", "/usr/sbin/nologin", kServerOsUser},
                         RunOptions{{}, seconds(30)});
  if (!run) return run.error();
  if (run->exit_code != 0)
    return make_error(std::string("cannot create OS user ") + kServerOsUser + ": " + run->output +
                      "create it yourself, then run again");
  if (auto user = find_os_user(kServerOsUser)) return *user;
  return make_error(std::string("useradd succeeded but user ") + kServerOsUser +
                    " is still unknown");
}

// Path resolution needs search permission on every ancestor, so the first one
// the servers' user cannot enter is named (typically /root).
Result<void> check_traversable(const OsUser& user, const fs::path& dir) {
  if (user.uid == ::geteuid() || user_can_access(user, dir, X_OK)) return {};
  fs::path prefix;
  for (const auto& part : dir) {
    prefix /= part;
    if (!user_can_access(user, prefix, X_OK))
      return make_error(prefix.string() + " cannot be entered by OS user " + user.name +
                        ", which runs the database servers (they do not run as root): choose a "
                        "--dir outside it (e.g. /tmp/sandbox) or allow it with `chmod o+x " +
                        prefix.string() + "`");
  }
  return make_error(dir.string() + " cannot be entered by OS user " + user.name);
}

// ---------------------------------------------------------------- what DIR holds

// Member directories in DIR (of any engine), sorted by name.
std::vector<fs::path> member_dirs(const fs::path& dir) {
  std::vector<fs::path> dirs;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (member_engine(entry.path().filename().string()) && entry.is_directory(ec))
      dirs.push_back(entry.path());
  }
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

Engine engine_of(const fs::path& member_dir) {
  return *member_engine(member_dir.filename().string());
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

Result<void> check_ports(const SandboxContext& ctx) {
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

// kGrow: every existing member runs as asked, and whole shards are missing
// (more --spare-shards than before): only those are started.
enum class Existing { kNone, kAllRunning, kGrow };

std::string start_over(const std::string& dir) {
  return "start over with `shardctl sandbox down --dir " + dir +
         " --destroy`, or keep it and choose another --dir";
}

// Decides what an earlier sandbox in DIR means for this `up`: nothing there, the
// very same sandbox running (fine), or anything else (the user must choose).
Result<Existing> inspect_existing(const SandboxContext& ctx, const SandboxEngine& engine) {
  const auto dirs = member_dirs(ctx.options.dir);
  if (dirs.empty()) return Existing::kNone;
  const std::string dir = ctx.options.dir.string();
  for (const auto& d : dirs) {
    if (engine_of(d) != ctx.options.engine)
      return make_error(dir + " holds a " + engine_name(engine_of(d)) + " sandbox (" +
                        d.filename().string() + "): " + start_over(dir));
  }
  std::map<std::string, int> running;  // name -> port
  for (const auto& d : dirs) {
    if (auto port = engine.running_port(d)) running[d.filename().string()] = *port;
  }
  const bool same_shape = dirs.size() == ctx.members.size() &&
                          std::all_of(ctx.members.begin(), ctx.members.end(), [&](const Member& m) {
                            auto it = running.find(m.name);
                            return it != running.end() && it->second == m.port;
                          });
  if (same_shape) return Existing::kAllRunning;
  std::set<int> present_shards;
  bool existing_as_asked = true;
  for (const auto& d : dirs) {
    const std::string name = d.filename().string();
    auto member = std::find_if(ctx.members.begin(), ctx.members.end(),
                               [&](const Member& m) { return m.name == name; });
    auto it = running.find(name);
    if (member == ctx.members.end() || it == running.end() || it->second != member->port)
      existing_as_asked = false;
    else
      present_shards.insert(member->shard);
  }
  const bool whole_shards = std::all_of(
      ctx.members.begin(), ctx.members.end(),
      [&](const Member& m) { return !present_shards.count(m.shard) || running.count(m.name); });
  if (existing_as_asked && whole_shards && !running.empty()) return Existing::kGrow;
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
  return make_error(
      dir + " already holds a sandbox that is not running as asked (running: " + running_text +
      (stopped_text.empty() ? "" : "; stopped: " + stopped_text) + "): " + start_over(dir));
}

// ---------------------------------------------------------------- preparing `up`

Result<void> prepare_dirs(const SandboxContext& ctx) {
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

Result<SandboxContext> make_context(SandboxOptions options, SandboxEngine& engine) {
  if (auto r = validate(options); !r) return r.error();
  SandboxContext ctx;
  options.dir = absolute_dir(options.dir);
  ctx.options = options;
  ctx.members = sandbox_members(options);
  for (const Member& m : ctx.members) {
    const fs::path socket = engine.socket_path(ctx, m);
    if (socket.string().size() > kMaxSocketPath)
      return make_error("--dir " + options.dir.string() + " is too long: the server socket " +
                        socket.string() + " would exceed the " + std::to_string(kMaxSocketPath) +
                        "-byte limit of Unix socket paths");
  }
  if (auto r = engine.find_programs(); !r) return r.error();
  auto owner = server_os_user();
  if (!owner) return owner.error();
  ctx.owner = *owner;
  if (ctx.owner.uid != ::geteuid()) ctx.switch_to = ctx.owner;
  return ctx;
}

Result<std::string> write_config(const SandboxContext& ctx) {
  const std::string yaml = render_config_yaml(ctx.options, ctx.members);
  if (auto r = write_file(ctx.options.dir / kConfigFileName, yaml, false); !r) return r.error();
  return yaml;
}

// ---------------------------------------------------------------- `down`

// Files shardctl creates in DIR; --destroy refuses to remove anything else, so a
// mistyped --dir cannot wipe unrelated data.
bool sandbox_entry(const std::string& name) {
  return member_engine(name) || name == kSocketDirName || name == kLogDirName ||
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

void note(const std::string& message) {
  std::cerr << "shardctl: " << message << "\n";
}

Result<void> write_file(const fs::path& path, const std::string& text, bool append) {
  std::ofstream out(path, append ? std::ios::app : std::ios::trunc);
  out << text;
  out.close();
  if (!out) return make_error("cannot write " + path.string() + ": " + std::strerror(errno));
  return {};
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

std::vector<fs::path> program_dirs(std::vector<fs::path> preferred) {
  if (const char* path = std::getenv("PATH")) {
    std::stringstream entries(path);
    for (std::string entry; std::getline(entries, entry, ':');) {
      if (!entry.empty()) preferred.emplace_back(entry);
    }
  }
  return preferred;
}

fs::path absolute_dir(const fs::path& dir) {
  fs::path p = fs::weakly_canonical(fs::absolute(dir));
  return p.has_filename() ? p : p.parent_path();  // drop a trailing '/'
}

const Member& SandboxContext::primary_of(int shard) const {
  return *std::find_if(members.begin(), members.end(),
                       [&](const Member& m) { return m.shard == shard && m.primary(); });
}

std::string SandboxContext::with_log(const Member& m, const std::string& message) const {
  return message + "\n--- last lines of " + log_file(m).string() + " ---\n" +
         tail_of_file(log_file(m), kLogTailLines);
}

Result<void> run_as_owner(const SandboxContext& ctx, const std::vector<std::string>& argv,
                          seconds timeout, const std::string& what) {
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

Result<std::string> run_sandbox_up(SandboxOptions options, SandboxEngine& engine) {
  auto made = make_context(std::move(options), engine);
  if (!made) return made.error();
  SandboxContext& ctx = *made;
  auto existing = inspect_existing(ctx, engine);
  if (!existing) return existing.error();
  if (*existing == Existing::kAllRunning) {
    note("the sandbox in " + ctx.options.dir.string() + " is already running");
    return write_config(ctx);
  }
  std::vector<Member> all = ctx.members;
  if (*existing == Existing::kGrow) {
    // Only the new shards' members start; the config names them all. The
    // proxy's and admin ports are in use by a running proxy: not checked.
    std::vector<Member> added;
    for (const Member& m : ctx.members)
      if (!engine.running_port(ctx.member_dir(m))) added.push_back(m);
    ctx.members = added;
    std::string names;
    for (const Member& m : added) names += (names.empty() ? "" : ", ") + m.name;
    note("the sandbox in " + ctx.options.dir.string() + " runs; adding " + names);
    for (const Member& m : ctx.members)
      if (!port_free(m.port))
        return make_error("port " + std::to_string(m.port) + " (" + m.name +
                          ") is already in use on 127.0.0.1");
  } else if (auto r = check_ports(ctx); !r) {
    return r.error();
  }
  if (auto r = prepare_dirs(ctx); !r) return r.error();
  if (auto r = engine.start_all(ctx); !r) {
    // Leave nothing running behind a failure; the files stay for inspection.
    for (auto it = ctx.started.rbegin(); it != ctx.started.rend(); ++it) (void)engine.stop(*it);
    return make_error(r.error().message() + "\nthe servers were stopped; inspect " +
                      ctx.options.dir.string() +
                      ", then remove it with `shardctl sandbox down --dir " +
                      ctx.options.dir.string() + " --destroy`");
  }
  ctx.members = all;
  return write_config(ctx);
}

Result<void> run_sandbox_down(const DownOptions& options,
                              const std::function<SandboxEngine&(Engine)>& engine_for) {
  const fs::path dir = absolute_dir(options.dir);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return {};  // nothing there, nothing running
  auto dirs = member_dirs(dir);
  // Replicas first: a primary then has no replication connections to wait for.
  std::stable_partition(dirs.begin(), dirs.end(), [](const fs::path& d) {
    return d.filename().string().find("replica") != std::string::npos;
  });
  for (const auto& member : dirs) {
    SandboxEngine& engine = engine_for(engine_of(member));
    if (!engine.running_port(member)) continue;
    if (auto r = engine.stop(member); !r) return r;
  }
  return options.destroy ? destroy_dir(dir) : Result<void>{};
}

Result<std::pair<SandboxContext, Member>> member_context(const fs::path& dir,
                                                         const std::string& member,
                                                         const SandboxEngine& engine) {
  SandboxContext ctx;
  ctx.options.dir = absolute_dir(dir);
  Member m;
  m.name = member;
  const fs::path member_dir = ctx.member_dir(m);
  struct stat st {};
  if (::stat(member_dir.c_str(), &st) != 0)
    return make_error("no member " + member + " in " + ctx.options.dir.string());
  auto owner = find_os_user(st.st_uid);
  if (!owner) return make_error(member_dir.string() + " belongs to no known user");
  ctx.owner = *owner;
  if (ctx.owner.uid != ::geteuid()) ctx.switch_to = ctx.owner;
  auto port = engine.member_port(member_dir);
  if (!port || *port <= 0)
    return make_error("cannot read the port of " + member + " from its configuration");
  m.port = *port;
  return std::make_pair(std::move(ctx), m);
}

std::string wait_for_proxy_catch_up(const SandboxContext& ctx, const std::string& member) {
  namespace json = boost::json;
  auto admin = admin_from_config((ctx.options.dir / "shardgate.yaml").string());
  if (!admin) return "no proxy to apply them: " + admin.error().message();
  std::string last = "no answer from the proxy at " + *admin;
  const auto until = std::chrono::steady_clock::now() + seconds(30);
  while (std::chrono::steady_clock::now() < until) {
    auto body = admin_get(*admin, "/api/v1/failovers");
    if (!body) return "no proxy to apply them: " + body.error().message();
    boost::system::error_code ec;
    const json::value doc = json::parse(*body, ec);
    const json::object* root = ec ? nullptr : doc.if_object();
    const json::value* fenced = root ? root->if_contains("fenced") : nullptr;
    if (fenced && fenced->is_array()) {
      bool listed = false;
      for (const auto& f : fenced->as_array()) {
        const json::object* o = f.if_object();
        if (!o || !o->contains("name") || o->at("name") != member.c_str()) continue;
        listed = true;
        const json::value* state = o->if_contains("catch_up");
        last = state && state->is_string() ? std::string(state->as_string()) : "";
        if (!last.empty() && last != "pending") return "the proxy's catch-up from it: " + last;
      }
      if (!listed) return "the proxy does not hold " + member + " fenced";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return "the proxy did not apply them within 30 s (" + last + ")";
}

}  // namespace shardgate::shardctl
