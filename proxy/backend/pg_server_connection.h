// One connection from the proxy to a PostgreSQL server: opening it (startup and
// authentication as the configured server user) and what the proxy must
// remember about it while it sits in a pool: the server's parameters, the
// statements the proxy prepared on it, and the session settings applied to it.
#pragma once

#include <boost/asio.hpp>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <unordered_set>

#include "common/result.h"
#include "proxy/backend/server_common.h"
#include "proxy/net/buffer.h"
#include "proxy/protocol/auth/scram.h"
#include "proxy/protocol/postgres/messages.h"
#include "proxy/session/settings.h"
#include "router/topology.h"

namespace shardgate::backend {

namespace asio = boost::asio;

// Where to reach a backend: its Unix socket when configured, else TCP.
Result<asio::generic::stream_protocol::endpoint> endpoint_of(const router::BackendInfo& backend);

class PgServerConnection {
 public:
  using Socket = asio::generic::stream_protocol::socket;

  PgServerConnection(asio::any_io_executor ex, std::uint32_t backend_index);

  // Connects, authenticates and waits for ReadyForQuery, within `timeout`.
  asio::awaitable<Result<void>> open(const router::BackendInfo& backend, const ServerLogin& login,
                                     std::chrono::milliseconds timeout);

  Socket& socket() { return socket_; }
  net::ReadBuffer& buffer() { return buffer_; }
  std::uint32_t backend_index() const { return backend_index_; }
  const pg::Params& parameters() const { return parameters_; }
  std::uint32_t backend_pid() const { return pid_; }
  std::uint32_t backend_key() const { return key_; }

  ServerState state = ServerState::Connecting;
  // Statement names the proxy prepared on this connection (see session/prepared.h).
  std::unordered_set<std::string> prepared;
  // Session settings applied here: setting name -> the SQL that applied it.
  session::SharedSettings settings;
  std::chrono::steady_clock::time_point idle_since{};
  // In its pool's set of live sockets, from the pool's connect() on.
  LiveSockets::Membership live;

 private:
  asio::awaitable<Result<void>> connect_socket(const router::BackendInfo& backend);
  asio::awaitable<Result<void>> startup(const ServerLogin& login);
  asio::awaitable<Result<void>> authenticate(std::uint32_t code, std::string_view data,
                                             const ServerLogin& login,
                                             std::optional<auth::ScramClient>& scram);

  Socket socket_;
  net::ReadBuffer buffer_;
  std::uint32_t backend_index_;
  pg::Params parameters_;
  std::uint32_t pid_ = 0;
  std::uint32_t key_ = 0;
};

template <class Conn>
class Pool;
using PgPool = Pool<PgServerConnection>;

}  // namespace shardgate::backend
