#include "common/process.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <thread>

extern char** environ;

namespace shardgate {
namespace {

using Clock = std::chrono::steady_clock;

// What a child reports through its error pipe when it could not become the
// requested program; the parent turns it into an Error with the stage named.
struct ChildFailure {
  int stage = 0;
  int error = 0;
};
enum Stage : int { kStageIds = 1, kStageExec = 2, kStageInput = 3 };

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

std::optional<OsUser> from_passwd(const passwd* pw) {
  if (pw == nullptr) return std::nullopt;
  return OsUser{pw->pw_name, pw->pw_uid, pw->pw_gid, pw->pw_dir ? pw->pw_dir : "/"};
}

// Everything the child needs is built before fork(), so the child only makes
// async-signal-safe calls (plus initgroups, which glibc documents as usable there).
struct ChildPlan {
  std::string stdin_path;
  std::vector<std::string> env_storage;
  std::vector<char*> argv;
  std::vector<char*> envp;
};

ChildPlan make_plan(const std::vector<std::string>& argv, const std::optional<OsUser>& user,
                    const std::vector<std::string>& extra_env = {},
                    const std::filesystem::path& stdin_file = {}) {
  ChildPlan plan;
  plan.stdin_path = stdin_file.empty() ? "/dev/null" : stdin_file.string();
  auto overridden = [&](const std::string& entry) {
    for (const auto& e : extra_env)
      if (entry.compare(0, e.find('=') + 1, e, 0, e.find('=') + 1) == 0) return true;
    return false;
  };
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    if (overridden(entry)) continue;
    // The switched-to user gets its own identity variables; tools such as initdb
    // read them (for example to name the bootstrap superuser by default).
    const bool identity =
        entry.starts_with("HOME=") || entry.starts_with("USER=") || entry.starts_with("LOGNAME=");
    if (!(user && identity)) plan.env_storage.push_back(entry);
  }
  for (const auto& e : extra_env) plan.env_storage.push_back(e);
  if (user) {
    plan.env_storage.push_back("HOME=" + user->home);
    plan.env_storage.push_back("USER=" + user->name);
    plan.env_storage.push_back("LOGNAME=" + user->name);
  }
  for (const auto& a : argv) plan.argv.push_back(const_cast<char*>(a.c_str()));
  plan.argv.push_back(nullptr);
  for (auto& e : plan.env_storage) plan.envp.push_back(e.data());
  plan.envp.push_back(nullptr);
  return plan;
}

[[noreturn]] void child_fail(int error_fd, int stage) {
  const ChildFailure failure{stage, errno};
  [[maybe_unused]] auto n = ::write(error_fd, &failure, sizeof failure);
  ::_exit(127);
}

bool become_user(const OsUser& user) {
  return ::setgid(user.gid) == 0 && ::initgroups(user.name.c_str(), user.gid) == 0 &&
         ::setuid(user.uid) == 0 && ::chdir("/") == 0;
}

[[noreturn]] void run_child(const ChildPlan& plan, const std::optional<OsUser>& user, int out_fd,
                            int error_fd) {
  // Own process group, so that a timeout can kill the child and its helpers at once.
  ::setpgid(0, 0);
  const int in_fd = ::open(plan.stdin_path.c_str(), O_RDONLY);
  if (in_fd < 0) child_fail(error_fd, kStageInput);
  ::dup2(in_fd, STDIN_FILENO);
  ::dup2(out_fd, STDOUT_FILENO);
  ::dup2(out_fd, STDERR_FILENO);
  if (user && !become_user(*user)) child_fail(error_fd, kStageIds);
  // Servers started from here must not inherit our sockets or files; the error
  // pipe is close-on-exec, so it stays open exactly until exec succeeds.
  if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    // Kernels before 5.11 lack the flag: close by hand, sparing the error pipe.
    for (int fd = 3; fd < 4096; ++fd) {
      if (fd != error_fd) ::close(fd);
    }
  }
  ::execvpe(plan.argv[0], plan.argv.data(), plan.envp.data());
  child_fail(error_fd, kStageExec);
}

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 255;
}

void read_available(int fd, std::string& out, bool& eof) {
  std::array<char, 4096> buffer{};
  for (;;) {
    const ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n > 0) {
      out.append(buffer.data(), static_cast<size_t>(n));
      continue;
    }
    if (n == 0) eof = true;
    return;  // EOF, EAGAIN or an error: nothing more to take now
  }
}

// Collects output until the child has exited and the pipe is drained, or the
// deadline passes. A daemon forked by the child (pg_ctl start) may keep the pipe
// open forever, so the child's exit, not EOF, ends the wait.
ProcessResult collect(pid_t pid, int out_fd, Clock::time_point deadline) {
  ProcessResult result;
  bool eof = false;
  for (;;) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      read_available(out_fd, result.output, eof);
      result.exit_code = decode_status(status);
      return result;
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) break;
    if (eof) {
      std::this_thread::sleep_for(std::min(left, std::chrono::milliseconds(20)));
      continue;
    }
    pollfd p{out_fd, POLLIN, 0};
    ::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 100)));
    read_available(out_fd, result.output, eof);
  }
  ::kill(-pid, SIGKILL);
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);  // prompt after SIGKILL
  result.exit_code = decode_status(status);
  result.timed_out = true;
  return result;
}

std::string describe_failure(const ChildFailure& f, const std::string& program,
                             const std::optional<OsUser>& user) {
  if (f.stage == kStageInput)
    return "cannot open the input of " + program + ": " + std::strerror(f.error);
  if (f.stage == kStageIds)
    return "cannot switch to OS user '" + (user ? user->name : std::string("?")) + "' to run " +
           program + ": " + std::strerror(f.error);
  return "cannot run " + program + ": " + std::strerror(f.error);
}

}  // namespace

Result<ProcessResult> run_process(const std::vector<std::string>& argv, const RunOptions& options) {
  if (argv.empty()) return make_error("run_process: empty command");
  const ChildPlan plan = make_plan(argv, options.as_user, options.env, options.stdin_file);
  int out_pipe[2];
  int err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0)
    return make_error(std::string("pipe: ") + std::strerror(errno));
  Fd out_read(out_pipe[0]), out_write(out_pipe[1]);
  if (::pipe2(err_pipe, O_CLOEXEC) != 0)
    return make_error(std::string("pipe: ") + std::strerror(errno));
  Fd err_read(err_pipe[0]), err_write(err_pipe[1]);

  const pid_t pid = ::fork();
  if (pid < 0) return make_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) run_child(plan, options.as_user, out_write.get(), err_write.get());

  out_write.reset();
  err_write.reset();
  ::fcntl(out_read.get(), F_SETFL, O_NONBLOCK);
  ProcessResult result = collect(pid, out_read.get(), Clock::now() + options.timeout);
  // The error pipe closed on a successful exec, so this read never blocks.
  ChildFailure failure;
  if (::read(err_read.get(), &failure, sizeof failure) == sizeof failure)
    return make_error(describe_failure(failure, argv[0], options.as_user));
  return result;
}

Result<pid_t> start_daemon(const std::vector<std::string>& argv, const DaemonOptions& options) {
  if (argv.empty()) return make_error("start_daemon: empty command");
  const ChildPlan plan = make_plan(argv, options.as_user);
  Fd output(::open(options.output.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640));
  if (output.get() < 0)
    return make_error("cannot open " + options.output.string() + ": " + std::strerror(errno));
  if (options.as_user && ::geteuid() == 0 &&
      ::fchown(output.get(), options.as_user->uid, options.as_user->gid) != 0)
    return make_error("cannot give " + options.output.string() + " to " + options.as_user->name +
                      ": " + std::strerror(errno));
  int pid_pipe[2];
  int err_pipe[2];
  if (::pipe2(pid_pipe, O_CLOEXEC) != 0)
    return make_error(std::string("pipe: ") + std::strerror(errno));
  Fd pid_read(pid_pipe[0]), pid_write(pid_pipe[1]);
  if (::pipe2(err_pipe, O_CLOEXEC) != 0)
    return make_error(std::string("pipe: ") + std::strerror(errno));
  Fd err_read(err_pipe[0]), err_write(err_pipe[1]);

  // Fork twice: the middle child starts a new session, forks the daemon, tells
  // us its pid and exits, so init adopts the daemon.
  const pid_t middle = ::fork();
  if (middle < 0) return make_error(std::string("fork: ") + std::strerror(errno));
  if (middle == 0) {
    ::setsid();
    const pid_t daemon = ::fork();
    if (daemon == 0) run_child(plan, options.as_user, output.get(), err_write.get());
    [[maybe_unused]] auto n = ::write(pid_write.get(), &daemon, sizeof daemon);
    ::_exit(daemon < 0 ? 1 : 0);
  }
  pid_write.reset();
  err_write.reset();
  int status = 0;
  ::waitpid(middle, &status, 0);  // it exits right after one fork
  pid_t daemon = -1;
  if (::read(pid_read.get(), &daemon, sizeof daemon) != sizeof daemon || daemon <= 0)
    return make_error("cannot start " + argv[0] + ": fork failed");
  // EOF once exec succeeded (the pipe is close-on-exec), a report if it failed.
  ChildFailure failure;
  if (::read(err_read.get(), &failure, sizeof failure) == sizeof failure)
    return make_error(describe_failure(failure, argv[0], options.as_user));
  return daemon;
}

bool process_running(pid_t pid, std::string_view name) {
  if (pid <= 0) return false;
  // EPERM still means alive: the process exists but belongs to another user.
  if (::kill(pid, 0) != 0 && errno != EPERM) return false;
  // A dead process stays a zombie until its parent reaps it, and kill(pid, 0)
  // succeeds on zombies; /proc tells them apart.
  const std::string proc = "/proc/" + std::to_string(pid);
  std::ifstream stat(proc + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto paren = text.rfind(") ");
  if (paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] == 'Z') return false;
  if (name.empty()) return true;
  std::ifstream comm_file(proc + "/comm");
  std::string comm;
  std::getline(comm_file, comm);
  // The kernel keeps the first 15 bytes of a program's name.
  return comm == name.substr(0, 15);
}

bool signal_and_wait(pid_t pid, int signal, std::chrono::milliseconds timeout,
                     std::string_view name) {
  if (!process_running(pid, name)) return true;
  if (::getpgid(pid) == pid)
    ::kill(-pid, signal);
  else
    ::kill(pid, signal);
  return wait_until([&] { return !process_running(pid, name); }, timeout,
                    std::chrono::milliseconds(50));
}

std::optional<OsUser> find_os_user(const std::string& name) {
  return from_passwd(::getpwnam(name.c_str()));
}

std::optional<OsUser> find_os_user(uid_t uid) {
  return from_passwd(::getpwuid(uid));
}

OsUser current_os_user() {
  if (auto user = find_os_user(::geteuid())) return *user;
  return OsUser{std::to_string(::geteuid()), ::geteuid(), ::getegid(), "/"};
}

bool user_can_access(const OsUser& user, const std::filesystem::path& path, int mode) {
  if (user.uid == ::geteuid()) return ::access(path.c_str(), mode) == 0;
  const pid_t pid = ::fork();
  if (pid < 0) return false;
  if (pid == 0) {
    // setuid (not seteuid) so that access(), which checks the real ids, asks
    // about exactly this user.
    const bool ok = become_user(user) && ::access(path.c_str(), mode) == 0;
    ::_exit(ok ? 0 : 1);
  }
  int status = 0;
  // The child makes a handful of system calls; a blocking wait is bounded by that.
  if (::waitpid(pid, &status, 0) != pid) return false;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

bool wait_until(const std::function<bool()>& ready, std::chrono::milliseconds timeout,
                std::chrono::milliseconds interval) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (ready()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(interval);
  }
}

std::string tail_of_file(const std::filesystem::path& path, int lines) {
  std::error_code ec;
  std::ifstream in(path, std::ios::binary);
  if (!std::filesystem::is_regular_file(path, ec) || !in)
    return "(cannot read " + path.string() + ")\n";
  // Logs can grow large; the last 64 KiB always hold the lines that matter here.
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  in.seekg(std::max<std::streamoff>(0, size - 65536));
  std::vector<std::string> all;
  for (std::string line; std::getline(in, line);) all.push_back(line);
  const size_t first = all.size() > static_cast<size_t>(lines) ? all.size() - lines : 0;
  std::string tail;
  for (size_t i = first; i < all.size(); ++i) tail += all[i] + "\n";
  return tail;
}

}  // namespace shardgate
