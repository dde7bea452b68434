// One connection from the proxy to a MySQL/MariaDB server: opening it (the
// handshake and authentication as the configured server user) and what the
// proxy must remember about it while it sits in a pool: the session state
// applied to it and the statements prepared on it.
#pragma once

#include <boost/asio.hpp>
#include <chrono>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "proxy/backend/server_common.h"
#include "proxy/net/buffer.h"
#include "router/topology.h"

namespace shardgate::backend {

namespace asio = boost::asio;

// The capability flags a MySQL server connection always asks for; the
// format-changing ones a client may or may not want come from
// ServerLogin::options (kMyVariantFlags), and the charset from its top byte.
std::uint32_t my_base_capabilities();
inline constexpr std::uint32_t my_charset_of(std::uint32_t options) {
  return options >> 24;
}

// What MyServerConnection::schema holds when the proxy does not know it (no
// schema name can contain a NUL byte).
inline const std::string kUnknownSchema(1, '\0');

// A statement prepared on this server connection.
struct MyServerStatement {
  std::uint32_t id = 0;  // the server's statement id
  std::uint16_t num_params = 0;
  std::uint16_t num_columns = 0;
  bool types_sent = false;      // parameter types were bound in an execution here
  std::uint64_t last_used = 0;  // of the connection's use_clock: eviction order
};

class MyServerConnection {
 public:
  using Socket = asio::generic::stream_protocol::socket;

  MyServerConnection(asio::any_io_executor ex, std::uint32_t backend_index);

  // Connects and authenticates within `timeout`.
  asio::awaitable<Result<void>> open(const router::BackendInfo& backend, const ServerLogin& login,
                                     std::chrono::milliseconds timeout);

  Socket& socket() { return socket_; }
  net::ReadBuffer& buffer() { return buffer_; }
  std::uint32_t backend_index() const { return backend_index_; }
  std::uint32_t connection_id() const { return connection_id_; }
  std::uint32_t capabilities() const { return capabilities_; }
  const std::string& server_version() const { return server_version_; }

  ServerState state = ServerState::Connecting;
  std::chrono::steady_clock::time_point idle_since{};
  // Session state applied here: the current schema and the SET statements run,
  // in order (the proxy replays a client's list where it differs).
  std::string schema;  // kUnknownSchema after COM_RESET_CONNECTION: set it again
  std::vector<std::string> settings;
  // Statements prepared here, by their text.
  std::unordered_map<std::string, MyServerStatement> prepared;
  std::uint64_t use_clock = 0;
  // In its pool's set of live sockets, from the pool's connect() on.
  LiveSockets::Membership live;

 private:
  asio::awaitable<Result<void>> connect_socket(const router::BackendInfo& backend);
  asio::awaitable<Result<void>> log_in(const ServerLogin& login);

  Socket socket_;
  net::ReadBuffer buffer_;
  std::uint32_t backend_index_;
  std::uint32_t connection_id_ = 0;
  std::uint32_t capabilities_ = 0;
  std::string server_version_;
};

}  // namespace shardgate::backend
