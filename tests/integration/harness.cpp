#include "tests/integration/harness.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

namespace shardgate::it {

namespace {

std::string g_dir;
pid_t g_proxy = -1;

bool port_open(int port) {
  const std::string cmd =
      "bash -c 'exec 3<>/dev/tcp/127.0.0.1/" + std::to_string(port) + "' 2>/dev/null";
  return std::system(cmd.c_str()) == 0;
}

class SandboxEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    if (!suites_selected("Pg")) return;
    char tmpl[] = "/tmp/shardgate-it-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    g_dir = tmpl;
    ::chmod(g_dir.c_str(), 0755);
    std::string out;
    const int rc =
        run(bin("shardctl") + " sandbox up --engine postgres --shards 1 --replicas 2 --base-port " +
                std::to_string(kBasePort) + " --dir " + g_dir + "/sbx --proxy-port " +
                std::to_string(kProxyPort) + " --admin-port " + std::to_string(kAdminPort),
            &out);
    ASSERT_EQ(rc, 0) << "sandbox up failed:\n" << out;
    disable_failover(g_dir + "/sbx/shardgate.yaml");
    g_proxy = start_proxy(g_dir + "/sbx/shardgate.yaml", kProxyPort);
    ASSERT_GT(g_proxy, 0);
  }
  void TearDown() override {
    if (g_dir.empty()) return;
    if (g_proxy > 0) stop_proxy(g_proxy);
    run(bin("shardctl") + " sandbox down --destroy --dir " + g_dir + "/sbx");
    run("rm -rf " + g_dir);
  }
};

const auto* const g_env = ::testing::AddGlobalTestEnvironment(new SandboxEnvironment);

}  // namespace

std::string sandbox_dir() {
  return g_dir + "/sbx";
}
std::string bin(const std::string& name) {
  return std::string(SHARDGATE_BIN_DIR) + "/" + name;
}

std::string proxy_conninfo(const std::string& user, const std::string& password) {
  return "host=127.0.0.1 port=" + std::to_string(kProxyPort) + " user=" + user +
         " password=" + password + " dbname=app connect_timeout=10";
}

std::string direct_conninfo(int port, const std::string& user, const std::string& password) {
  return "host=127.0.0.1 port=" + std::to_string(port) + " user=" + user + " password=" + password +
         " dbname=app connect_timeout=10";
}

Conn connect(const std::string& conninfo) {
  Conn c(PQconnectdb(conninfo.c_str()));
  EXPECT_EQ(PQstatus(c.get()), CONNECTION_OK) << PQerrorMessage(c.get());
  return c;
}

std::optional<std::string> scalar(PGconn* c, const std::string& sql, std::string* error) {
  Res r(PQexec(c, sql.c_str()));
  const auto st = PQresultStatus(r.get());
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    if (error) *error = PQresultErrorMessage(r.get());
    return std::nullopt;
  }
  if (st == PGRES_COMMAND_OK || PQntuples(r.get()) == 0) return std::string();
  return std::string(PQgetvalue(r.get(), 0, 0));
}

int run(const std::string& command, std::string* output) {
  std::string cmd = command + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return -1;
  std::array<char, 4096> buf;
  std::string out;
  std::size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int status = ::pclose(p);
  if (output) *output = out;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

pid_t postmaster_pid(const std::string& member) {
  std::ifstream in(sandbox_dir() + "/" + member + "/postmaster.pid");
  pid_t pid = -1;
  in >> pid;
  return pid;
}

void kill_member(const std::string& member) {
  const pid_t pid = postmaster_pid(member);
  ASSERT_GT(pid, 0) << member << " is not running";
  // Machine loss: the postmaster and every child (walreceiver, backends) die
  // at once, so nothing holds the data directory's shared memory afterwards.
  run("pkill -9 -P " + std::to_string(pid));
  ::kill(pid, SIGKILL);
  // Stragglers forked in between: only this sandbox's (their working
  // directory is the data directory), since other sandboxes of the same run
  // name their members alike.
  run("for p in $(pgrep -f 'postgres: " + member + ":'); do [ \"$(readlink /proc/$p/cwd)\" = \"" +
      sandbox_dir() + "/" + member + "\" ] && kill -9 $p; done; true");
  // Until the dead postmaster is reaped its pid exists, and PostgreSQL refuses
  // to start over a postmaster.pid naming a live pid.
  EXPECT_TRUE(wait_until([&] { return ::kill(pid, 0) != 0; }, 15000))
      << member << " did not go away";
}

void start_member(const std::string& member) {
  std::string out;
  const std::string user = ::getuid() == 0 ? "runuser -u shardgate -- " : "";
  const int rc = run(user + "/usr/lib/postgresql/15/bin/pg_ctl -w -t 60 -D " + sandbox_dir() + "/" +
                         member + " -l " + sandbox_dir() + "/logs/" + member + ".log start",
                     &out);
  ASSERT_EQ(rc, 0) << out;
}

bool wait_until(const std::function<bool()>& predicate, int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (predicate()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return predicate();
}

std::string raw_exchange(const std::string& bytes, int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return "connect failed";
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  std::string answer;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) answer.append(buf, n);
  ::close(fd);
  return answer;
}

void disable_failover(const std::string& config_path) {
  ASSERT_EQ(run("sed -i '/^    failover:/,/^    shards:/ s/enabled: true/enabled: false/' " +
                config_path),
            0);
}

pid_t start_proxy(const std::string& config_path, int port) {
  const std::string log = config_path + "." + std::to_string(port) + ".log";
  const pid_t pid = ::fork();
  if (pid == 0) {
    FILE* f = std::freopen(log.c_str(), "w", stderr);
    (void)f;
    const std::string b = bin("shardgate");
    ::execl(b.c_str(), b.c_str(), "--config", config_path.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  const bool up = wait_until([&] { return port_open(port); }, 10000);
  EXPECT_TRUE(up) << "shardgate did not start listening on " << port << "; see " << log;
  return up ? pid : -1;
}

bool wait_for_no_clients(int admin_port) {
  return wait_until(
      [&] {
        std::string out;
        run("curl -s http://127.0.0.1:" + std::to_string(admin_port) + "/metrics", &out);
        return out.find("\nshardgate_clients_connected 0\n") != std::string::npos;
      },
      5000);
}

void stop_proxy(pid_t pid) {
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
}

std::string write_config_variant(const std::string& name, const std::string& sed_script,
                                 const std::string& source_yaml) {
  const std::string source = source_yaml.empty() ? sandbox_dir() + "/shardgate.yaml" : source_yaml;
  const std::string dir = source.substr(0, source.rfind('/') + 1);
  const std::string path = dir + name + ".yaml";
  // Each proxy needs a data_dir of its own (the topology store's lock).
  run("sed -e '" + sed_script + "' -e 's|^data_dir: .*|data_dir: " + dir + name + "-data|' " +
      source + " > " + path);
  return path;
}

bool suites_selected(const std::string& prefix) {
  const auto& unit = *::testing::UnitTest::GetInstance();
  for (int i = 0; i < unit.total_test_suite_count(); ++i) {
    const auto& suite = *unit.GetTestSuite(i);
    if (suite.should_run() && std::string(suite.name()).starts_with(prefix)) return true;
  }
  return false;
}

bool process_gone(pid_t pid) {
  if (::kill(pid, 0) != 0) return true;
  const std::string proc = "/proc/" + std::to_string(pid);
  std::ifstream stat(proc + "/stat");
  std::string pid_field, comm, state;
  stat >> pid_field >> comm >> state;
  if (state != "Z") return false;
  // The leader of a multi-threaded process turns zombie first; its files (the
  // sockets) close when the last of its threads has exited.
  std::error_code ec;
  const auto threads = std::distance(std::filesystem::directory_iterator(proc + "/task", ec),
                                     std::filesystem::directory_iterator());
  return ec || threads <= 1;
}

}  // namespace shardgate::it
