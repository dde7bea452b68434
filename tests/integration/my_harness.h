// Integration-test harness for the MySQL side: a real MariaDB sandbox (primary
// + 2 GTID replicas, started with `shardctl sandbox up --engine mysql`) and a
// real shardgate in front of it, shared by the My* tests of the binary. The
// tests drive it with MariaDB Connector/C, the mariadb CLI and sysbench.
#pragma once

#include <mysql.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace shardgate::it {

inline constexpr int kMyBasePort = 22306;  // primary; replicas +1, +2
inline constexpr int kMyProxyPort = 22336;
inline constexpr int kMyAdminPort = 22337;
inline constexpr const char* kMyPrimary = "my-s0-primary";
inline constexpr const char* kMyReplica1 = "my-s0-replica1";
inline constexpr const char* kMyReplica2 = "my-s0-replica2";

struct MyCloser {
  void operator()(MYSQL* m) const { mysql_close(m); }
};
using MyConn = std::unique_ptr<MYSQL, MyCloser>;

struct MyError {
  unsigned code = 0;
  std::string message;
};

std::string my_sandbox_dir();
std::string my_config();  // the sandbox's shardgate.yaml
int my_member_port(const std::string& member);

// Connector/C over TCP; nullptr on failure (the error in *error). Reads time
// out after 30 s, so a hang becomes an error.
MyConn my_try_connect(int port = kMyProxyPort, const std::string& user = "app",
                      const std::string& password = "app", const std::string& database = "app",
                      MyError* error = nullptr);
MyConn my_connect(int port = kMyProxyPort);  // expects success

// Runs a statement; returns the first column of the first row ("" without a
// result set, "NULL" for NULL), or nullopt on error (in *error when given).
std::optional<std::string> my_scalar(MYSQL* c, const std::string& sql, MyError* error = nullptr);
// All rows, columns joined by '\t'; nullopt on error.
std::optional<std::vector<std::string>> my_rows(MYSQL* c, const std::string& sql,
                                                MyError* error = nullptr);
// SELECT @@port (after `prefix`, e.g. a hint); -1 on error.
int my_port(MYSQL* c, const std::string& prefix = "");

// `mariadb -h 127.0.0.1 -P port -u app -papp app -N -c -e sql`: returns the
// exit status, the output (stdout and stderr) in *out.
int mariadb_cli(const std::string& sql, std::string* out, int port = kMyProxyPort);

// Process control over the sandbox's servers.
pid_t my_member_pid(const std::string& member);  // from <dir>/logs/<member>.pid
void kill_my_member(const std::string& member);  // kill -9, waits until it is gone
// Starts mariadbd as the sandbox does and waits until it accepts connections
// and, for a replica, replicates the primary again (when the primary is up).
void start_my_member(const std::string& member);
bool my_member_up(const std::string& member);
// Both replication threads run and the replica has applied the primary's binlog.
bool replica_caught_up(const std::string& replica);

// The sandbox's shardgate.yaml transformed by a sed script, as <dir>/<name>.yaml.
std::string write_my_config_variant(const std::string& name, const std::string& sed_script);

// ---------------------------------------------------------------- prepared statements

using Param = std::variant<std::nullptr_t, long long, std::string, double>;
using Value = std::optional<std::string>;  // a result column as text, nullopt for NULL

// A Connector/C prepared statement whose parameters are bound from Params
// (NULL, BIGINT, VARCHAR, DOUBLE) and whose result columns are fetched as text.
class Stmt {
 public:
  Stmt(MYSQL* c, const std::string& sql);
  ~Stmt();
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  bool ok() const { return ok_; }
  std::string error() const;  // "errno message"
  // The rows of one execution (none for a statement without a result); nullopt on error.
  std::optional<std::vector<std::vector<Value>>> run(const std::vector<Param>& params);

 private:
  MYSQL_STMT* stmt_;
  bool ok_ = false;
};

// ---------------------------------------------------------------- raw protocol

// One MySQL packet: 3-byte length, sequence id, payload.
std::string my_packet(std::uint8_t seq, const std::string& payload);

// A socket spoken to packet by packet: one of its own, or the one under a
// Connector/C connection (left open here).
class RawSocket {
 public:
  explicit RawSocket(int port);
  explicit RawSocket(MYSQL* c);
  ~RawSocket();
  RawSocket(const RawSocket&) = delete;
  RawSocket& operator=(const RawSocket&) = delete;

  bool connected() const { return connected_; }
  bool send(const std::string& bytes);
  // {sequence id, payload}; nullopt when the peer closed or said nothing for 5 s.
  std::optional<std::pair<int, std::string>> read_packet();
  // True when the peer closes (within 5 s) without sending anything more.
  bool closed_by_peer();

 private:
  std::string read_exactly(std::size_t n);
  int fd_;
  bool owned_;
  bool connected_ = false;
};

// The error code of an ERR packet's payload; 0 when it is not one.
unsigned err_code(const std::string& payload);
// The 20-byte nonce in a HandshakeV10 payload.
std::string greeting_nonce(const std::string& greeting);
// A HandshakeResponse41 logging `user` in with mysql_native_password.
std::string handshake_response(const std::string& user, const std::string& password,
                               const std::string& database, const std::string& nonce);

}  // namespace shardgate::it
