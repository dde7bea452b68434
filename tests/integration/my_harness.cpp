#include "tests/integration/my_harness.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/sha.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <fstream>

#include "tests/integration/harness.h"

namespace shardgate::it {

namespace {

std::string g_dir;
pid_t g_proxy = -1;

class MySandboxEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    if (!suites_selected("My")) return;
    char tmpl[] = "/tmp/shardgate-my-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    g_dir = tmpl;
    ::chmod(g_dir.c_str(), 0755);  // the servers run as the sandbox's own OS user
    std::string out;
    const int rc = run(bin("shardctl") + " sandbox up --engine mysql --shards 1 --replicas 2" +
                           " --base-port " + std::to_string(kMyBasePort) + " --proxy-port " +
                           std::to_string(kMyProxyPort) + " --admin-port " +
                           std::to_string(kMyAdminPort) + " --dir " + my_sandbox_dir(),
                       &out);
    ASSERT_EQ(rc, 0) << "sandbox up --engine mysql failed:\n" << out;
    disable_failover(my_config());
    g_proxy = start_proxy(my_config(), kMyProxyPort);
    ASSERT_GT(g_proxy, 0);
  }
  void TearDown() override {
    if (g_dir.empty()) return;
    if (g_proxy > 0) stop_proxy(g_proxy);
    run(bin("shardctl") + " sandbox down --destroy --dir " + my_sandbox_dir());
    run("rm -rf " + g_dir);
  }
};

const auto* const g_env = ::testing::AddGlobalTestEnvironment(new MySandboxEnvironment);

std::string shell_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

std::string my_sandbox_dir() {
  return g_dir + "/mysb";
}

std::string my_config() {
  return my_sandbox_dir() + "/shardgate.yaml";
}

int my_member_port(const std::string& member) {
  if (member == kMyReplica1) return kMyBasePort + 1;
  if (member == kMyReplica2) return kMyBasePort + 2;
  return kMyBasePort;
}

MyConn my_try_connect(int port, const std::string& user, const std::string& password,
                      const std::string& database, MyError* error) {
  MyConn c(mysql_init(nullptr));
  const unsigned int connect_timeout = 10;
  const unsigned int io_timeout = 30;
  mysql_options(c.get(), MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
  mysql_options(c.get(), MYSQL_OPT_READ_TIMEOUT, &io_timeout);
  mysql_options(c.get(), MYSQL_OPT_WRITE_TIMEOUT, &io_timeout);
  const unsigned long max_packet = 64ul * 1024 * 1024;  // messages over 16 MB
  mysql_optionsv(c.get(), MYSQL_OPT_MAX_ALLOWED_PACKET, &max_packet);
  if (mysql_real_connect(c.get(), "127.0.0.1", user.c_str(), password.c_str(),
                         database.empty() ? nullptr : database.c_str(), port, nullptr,
                         0) == nullptr) {
    if (error) *error = MyError{mysql_errno(c.get()), mysql_error(c.get())};
    return nullptr;
  }
  return c;
}

MyConn my_connect(int port) {
  MyError e;
  MyConn c = my_try_connect(port, "app", "app", "app", &e);
  EXPECT_NE(c, nullptr) << "connecting to port " << port << ": " << e.code << " " << e.message;
  return c;
}

std::optional<std::vector<std::string>> my_rows(MYSQL* c, const std::string& sql, MyError* error) {
  if (c == nullptr || mysql_real_query(c, sql.data(), sql.size()) != 0) {
    if (error) *error = c ? MyError{mysql_errno(c), mysql_error(c)} : MyError{0, "no connection"};
    return std::nullopt;
  }
  std::vector<std::string> rows;
  bool first = true;
  do {
    MYSQL_RES* res = mysql_store_result(c);
    if (res == nullptr) {
      if (mysql_field_count(c) != 0) {
        if (error) *error = MyError{mysql_errno(c), mysql_error(c)};
        return std::nullopt;
      }
      continue;
    }
    const unsigned n = mysql_num_fields(res);
    while (MYSQL_ROW row = mysql_fetch_row(res)) {
      if (!first) continue;  // rows of the first result set only
      const unsigned long* lengths = mysql_fetch_lengths(res);
      std::string line;
      for (unsigned i = 0; i < n; ++i) {
        if (i) line += '\t';
        line += row[i] ? std::string(row[i], lengths[i]) : std::string("NULL");
      }
      rows.push_back(std::move(line));
    }
    mysql_free_result(res);
    first = false;
  } while (mysql_next_result(c) == 0);
  if (mysql_errno(c) != 0) {
    if (error) *error = MyError{mysql_errno(c), mysql_error(c)};
    return std::nullopt;
  }
  return rows;
}

std::optional<std::string> my_scalar(MYSQL* c, const std::string& sql, MyError* error) {
  auto rows = my_rows(c, sql, error);
  if (!rows) return std::nullopt;
  if (rows->empty()) return std::string();
  const std::string& row = rows->front();
  return row.substr(0, row.find('\t'));
}

int my_port(MYSQL* c, const std::string& prefix) {
  auto p = my_scalar(c, prefix + "SELECT @@port");
  return p && !p->empty() ? std::stoi(*p) : -1;
}

int mariadb_cli(const std::string& sql, std::string* out, int port) {
  // -c keeps comments (the client strips them by default, hints included).
  return run("mariadb -h 127.0.0.1 -P " + std::to_string(port) +
                 " -u app -papp app -N -c --connect-timeout=10 -e " + shell_quote(sql),
             out);
}

pid_t my_member_pid(const std::string& member) {
  std::ifstream in(my_sandbox_dir() + "/logs/" + member + ".pid");
  pid_t pid = -1;
  in >> pid;
  return pid;
}

void kill_my_member(const std::string& member) {
  const pid_t pid = my_member_pid(member);
  ASSERT_GT(pid, 0) << member << " has no pid file";
  ASSERT_FALSE(process_gone(pid)) << member << " is not running";
  ::kill(pid, SIGKILL);
  // Until it is gone its port and InnoDB's file locks are held; a restart
  // before then fails.
  EXPECT_TRUE(wait_until([&] { return process_gone(pid); }, 15000)) << member << " did not die";
}

bool my_member_up(const std::string& member) {
  auto c = my_try_connect(my_member_port(member), "app", "app", "");
  return c && my_scalar(c.get(), "SELECT 1") == "1";
}

bool replica_caught_up(const std::string& replica) {
  auto r = my_try_connect(my_member_port(replica), "app", "app", "");
  auto p = my_try_connect(kMyBasePort, "app", "app", "");
  if (!r || !p) return false;
  if (mysql_query(r.get(), "SHOW SLAVE STATUS") != 0) return false;
  MYSQL_RES* res = mysql_store_result(r.get());
  if (res == nullptr) return false;
  bool running = false;
  if (MYSQL_ROW row = mysql_fetch_row(res)) {
    const MYSQL_FIELD* fields = mysql_fetch_fields(res);
    int yes = 0;
    for (unsigned i = 0; i < mysql_num_fields(res); ++i) {
      const std::string name = fields[i].name;
      if ((name == "Slave_IO_Running" || name == "Slave_SQL_Running") && row[i] &&
          std::string(row[i]) == "Yes")
        ++yes;
    }
    running = yes == 2;
  }
  mysql_free_result(res);
  if (!running) return false;
  const auto target = my_scalar(p.get(), "SELECT @@gtid_binlog_pos");
  const auto applied = my_scalar(r.get(), "SELECT @@gtid_slave_pos");
  return target && applied && *target == *applied;
}

void start_my_member(const std::string& member) {
  const std::string dir = my_sandbox_dir();
  const std::string as_owner = ::getuid() == 0 ? "runuser -u shardgate -- " : "";
  // As shardctl starts it: the member's own option file, output to its log.
  std::string out;
  run("(setsid " + as_owner + "/usr/sbin/mariadbd --defaults-file=" + dir + "/" + member +
          "/my.cnf </dev/null >>" + dir + "/logs/" + member + ".log 2>&1 &)",
      &out);
  ASSERT_TRUE(wait_until([&] { return my_member_up(member); }, 60000))
      << member << " did not come up: " << out << "; see " << dir << "/logs/" << member << ".log";
  if (member != kMyPrimary && my_member_up(kMyPrimary)) {
    EXPECT_TRUE(wait_until([&] { return replica_caught_up(member); }, 30000))
        << member << " does not replicate again";
  }
}

std::string write_my_config_variant(const std::string& name, const std::string& sed_script) {
  return write_config_variant(name, sed_script, my_config());
}

// ---------------------------------------------------------------- prepared statements

Stmt::Stmt(MYSQL* c, const std::string& sql) : stmt_(c ? mysql_stmt_init(c) : nullptr) {
  ok_ = stmt_ != nullptr && mysql_stmt_prepare(stmt_, sql.data(), sql.size()) == 0;
}

Stmt::~Stmt() {
  if (stmt_) mysql_stmt_close(stmt_);
}

std::string Stmt::error() const {
  return stmt_ ? std::to_string(mysql_stmt_errno(stmt_)) + " " + mysql_stmt_error(stmt_)
               : std::string("no statement");
}

std::optional<std::vector<std::vector<Value>>> Stmt::run(const std::vector<Param>& params) {
  if (!ok_) return std::nullopt;
  std::vector<MYSQL_BIND> binds(params.size());
  std::vector<long long> ints(params.size());
  std::vector<double> doubles(params.size());
  std::vector<unsigned long> lengths(params.size());
  for (std::size_t i = 0; i < params.size(); ++i) {
    MYSQL_BIND& b = binds[i];
    std::memset(&b, 0, sizeof b);
    if (std::holds_alternative<std::nullptr_t>(params[i])) {
      b.buffer_type = MYSQL_TYPE_NULL;
    } else if (auto* v = std::get_if<long long>(&params[i])) {
      ints[i] = *v;
      b.buffer_type = MYSQL_TYPE_LONGLONG;
      b.buffer = &ints[i];
    } else if (auto* d = std::get_if<double>(&params[i])) {
      doubles[i] = *d;
      b.buffer_type = MYSQL_TYPE_DOUBLE;
      b.buffer = &doubles[i];
    } else {
      const std::string& s = std::get<std::string>(params[i]);
      lengths[i] = s.size();
      b.buffer_type = MYSQL_TYPE_STRING;
      b.buffer = const_cast<char*>(s.data());
      b.buffer_length = s.size();
      b.length = &lengths[i];
    }
  }
  if (!params.empty() && mysql_stmt_bind_param(stmt_, binds.data()) != 0) return std::nullopt;
  if (mysql_stmt_execute(stmt_) != 0) return std::nullopt;
  std::vector<std::vector<Value>> rows;
  const unsigned columns = mysql_stmt_field_count(stmt_);
  if (columns == 0) return rows;
  std::vector<MYSQL_BIND> out(columns);
  std::vector<std::array<char, 1024>> buffers(columns);
  std::vector<unsigned long> out_lengths(columns);
  std::vector<my_bool> nulls(columns);
  for (unsigned i = 0; i < columns; ++i) {
    std::memset(&out[i], 0, sizeof out[i]);
    out[i].buffer_type = MYSQL_TYPE_STRING;
    out[i].buffer = buffers[i].data();
    out[i].buffer_length = buffers[i].size();
    out[i].length = &out_lengths[i];
    out[i].is_null = &nulls[i];
  }
  if (mysql_stmt_bind_result(stmt_, out.data()) != 0) return std::nullopt;
  int rc;
  while ((rc = mysql_stmt_fetch(stmt_)) == 0) {
    std::vector<Value> row;
    for (unsigned i = 0; i < columns; ++i)
      row.push_back(nulls[i] ? Value() : Value(std::string(buffers[i].data(), out_lengths[i])));
    rows.push_back(std::move(row));
  }
  mysql_stmt_free_result(stmt_);
  if (rc != MYSQL_NO_DATA) return std::nullopt;  // an error, or a value over 1 KB
  return rows;
}

// ---------------------------------------------------------------- raw protocol

std::string my_packet(std::uint8_t seq, const std::string& payload) {
  std::string out;
  const std::size_t n = payload.size();
  out.push_back(static_cast<char>(n & 0xff));
  out.push_back(static_cast<char>((n >> 8) & 0xff));
  out.push_back(static_cast<char>((n >> 16) & 0xff));
  out.push_back(static_cast<char>(seq));
  return out + payload;
}

namespace {

void receive_timeout(int fd) {
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

std::string sha1(const std::string& in) {
  unsigned char out[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(in.data()), in.size(), out);
  return std::string(reinterpret_cast<char*>(out), sizeof out);
}

// mysql_native_password: SHA1(password) XOR SHA1(nonce + SHA1(SHA1(password))).
std::string native_scramble(const std::string& password, const std::string& nonce) {
  const std::string h1 = sha1(password);
  const std::string h3 = sha1(nonce + sha1(h1));
  std::string out(h1.size(), '\0');
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<char>(h1[i] ^ h3[i]);
  return out;
}

}  // namespace

RawSocket::RawSocket(int port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)), owned_(true) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  receive_timeout(fd_);
}

RawSocket::RawSocket(MYSQL* c) : fd_(static_cast<int>(mysql_get_socket(c))), owned_(false) {
  connected_ = fd_ >= 0;
  receive_timeout(fd_);
}

RawSocket::~RawSocket() {
  if (owned_) ::close(fd_);
}

bool RawSocket::send(const std::string& bytes) {
  return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
         static_cast<ssize_t>(bytes.size());
}

std::string RawSocket::read_exactly(std::size_t n) {
  std::string out;
  char buf[4096];
  while (out.size() < n) {
    const ssize_t got = ::recv(fd_, buf, std::min(sizeof buf, n - out.size()), 0);
    if (got <= 0) break;
    out.append(buf, static_cast<std::size_t>(got));
  }
  return out;
}

std::optional<std::pair<int, std::string>> RawSocket::read_packet() {
  const std::string head = read_exactly(4);
  if (head.size() < 4) return std::nullopt;
  const std::size_t n = static_cast<unsigned char>(head[0]) |
                        (static_cast<unsigned char>(head[1]) << 8) |
                        (static_cast<unsigned char>(head[2]) << 16);
  std::string payload = read_exactly(n);
  if (payload.size() < n) return std::nullopt;
  return std::make_pair(static_cast<int>(static_cast<unsigned char>(head[3])), payload);
}

bool RawSocket::closed_by_peer() {
  char c;
  return ::recv(fd_, &c, 1, 0) == 0;
}

unsigned err_code(const std::string& payload) {
  if (payload.size() < 3 || static_cast<unsigned char>(payload[0]) != 0xff) return 0;
  return static_cast<unsigned char>(payload[1]) | (static_cast<unsigned char>(payload[2]) << 8);
}

std::string greeting_nonce(const std::string& g) {
  std::size_t at = g.find('\0', 1) + 1;  // after the protocol version and server version
  at += 4;                               // connection id
  std::string nonce = g.substr(at, 8);
  // the first part, filler, capabilities, charset, status, capabilities, length, reserved
  at += 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10;
  return nonce + g.substr(at, 12);
}

std::string handshake_response(const std::string& user, const std::string& password,
                               const std::string& database, const std::string& nonce) {
  // LONG_PASSWORD, CONNECT_WITH_DB, PROTOCOL_41, SECURE_CONNECTION, PLUGIN_AUTH
  const std::uint32_t caps = 0x1 | 0x8 | 0x200 | 0x8000 | 0x80000;
  std::string p;
  for (int i = 0; i < 4; ++i) p.push_back(static_cast<char>((caps >> (8 * i)) & 0xff));
  p += std::string("\0\0\0\x01", 4);  // max packet size 16 MB
  p.push_back(45);                    // utf8mb4_general_ci
  p += std::string(23, '\0');
  p += user + std::string(1, '\0');
  const std::string scramble = native_scramble(password, nonce);
  p.push_back(static_cast<char>(scramble.size()));
  p += scramble;
  p += database + std::string(1, '\0');
  p += std::string("mysql_native_password") + std::string(1, '\0');
  return p;
}

}  // namespace shardgate::it
