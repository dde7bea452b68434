#include "proxy/backend/my_server_connection.h"

#include "proxy/net/my_io.h"
#include "proxy/net/tcp_options.h"
#include "proxy/protocol/auth/mysql_auth.h"
#include "proxy/protocol/mysql/constants.h"
#include "proxy/protocol/mysql/handshake.h"
#include "proxy/protocol/mysql/messages.h"

namespace shardgate::backend {

using net::use_result;

namespace {

constexpr std::uint32_t kMaxLoginMessage = 1 << 20;
constexpr std::uint8_t kDefaultCharset = 45;  // utf8mb4_general_ci

std::string scramble_for(std::string_view plugin, std::string_view password,
                         std::string_view nonce) {
  if (plugin == auth::kCachingSha2Password) return auth::caching_sha2_scramble(password, nonce);
  return auth::native_password_scramble(password, nonce);
}

}  // namespace

std::uint32_t my_base_capabilities() {
  using namespace mysql;
  // kClientLongPassword doubles as MariaDB's CLIENT_MYSQL: set, the server
  // keeps its extended capabilities (metadata caching...) to itself.
  return kClientLongPassword | kClientLongFlag | kClientConnectWithDb | kClientProtocol41 |
         kClientTransactions | kClientSecureConnection | kClientPluginAuth |
         kClientPluginAuthLenencClientData;
}

MyServerConnection::MyServerConnection(asio::any_io_executor ex, std::uint32_t backend_index)
    : socket_(ex), backend_index_(backend_index) {}

asio::awaitable<Result<void>> MyServerConnection::open(const router::BackendInfo& backend,
                                                       const ServerLogin& login,
                                                       std::chrono::milliseconds timeout) {
  auto work = [&]() -> asio::awaitable<Result<void>> {
    auto c = co_await connect_socket(backend);
    if (!c) co_return c;
    co_return co_await log_in(login);
  };
  auto result =
      co_await net::with_deadline(socket_, work(), timeout, "connecting to " + backend.name);
  state = result ? ServerState::Idle : ServerState::Broken;
  if (result) schema = login.database;
  co_return result;
}

// The server's socket file when configured (fewer system calls and no TCP
// stack per statement), else TCP with Nagle off.
asio::awaitable<Result<void>> MyServerConnection::connect_socket(const router::BackendInfo& b) {
  using Generic = asio::generic::stream_protocol::endpoint;
  Generic endpoint;
  if (!b.unix_socket.empty()) {
    endpoint = Generic(asio::local::stream_protocol::endpoint(b.unix_socket));
  } else {
    boost::system::error_code ec;
    auto address = asio::ip::make_address(b.host, ec);
    if (ec) co_return make_error("backend " + b.name + ": host must be an IP address: " + b.host);
    endpoint = Generic(asio::ip::tcp::endpoint(address, b.port));
  }
  auto [cec] = co_await socket_.async_connect(endpoint, use_result);
  if (cec) co_return make_error("cannot connect to " + b.name + ": " + cec.message());
  if (b.unix_socket.empty()) net::tune_tcp(socket_.native_handle(), true);
  co_return Result<void>{};
}

asio::awaitable<Result<void>> MyServerConnection::log_in(const ServerLogin& login) {
  auto greeting_msg = co_await net::read_message(socket_, buffer_, kMaxLoginMessage);
  if (!greeting_msg) co_return greeting_msg.error();
  std::string storage;
  std::string_view payload = mysql::message_payload(buffer_.readable(), *greeting_msg, storage);
  if (!payload.empty() && static_cast<unsigned char>(payload[0]) == mysql::kErrHeader) {
    auto err = mysql::parse_err(payload, 0);
    co_return make_error("server refused the connection: " +
                         (err ? std::string(err->message) : std::string("malformed error")));
  }
  auto greeting = mysql::parse_handshake_v10(payload);
  buffer_.consume(greeting_msg->size);
  if (!greeting) co_return make_error("bad greeting from server: " + greeting.error().message());
  connection_id_ = greeting->connection_id;
  server_version_ = greeting->server_version;
  std::uint8_t seq = static_cast<std::uint8_t>(greeting_msg->last_seq + 1);

  const std::uint32_t wanted = my_base_capabilities() | (login.options & 0x00ffffffu);
  capabilities_ = wanted & greeting->capabilities;
  if (!(capabilities_ & mysql::kClientProtocol41) || !(capabilities_ & mysql::kClientPluginAuth))
    co_return make_error("server " + server_version_ + " lacks protocol 4.1 or plugin auth");
  mysql::HandshakeResponse41 response;
  response.capabilities = capabilities_;
  response.max_packet_size = 1u << 30;
  const std::uint8_t charset = static_cast<std::uint8_t>(my_charset_of(login.options));
  response.charset = charset ? charset : kDefaultCharset;
  response.username = login.user;
  response.database = login.database;
  std::string plugin = greeting->auth_plugin_name;
  if (plugin != auth::kCachingSha2Password) plugin = std::string(auth::kMysqlNativePassword);
  response.auth_plugin_name = plugin;
  std::string nonce = greeting->auth_plugin_data.substr(0, auth::kMysqlNonceSize);
  response.auth_response = scramble_for(plugin, login.password, nonce);
  auto built = mysql::build_handshake_response41(response);
  if (!built) co_return built.error();
  std::string out;
  mysql::append_packets(out, *built, seq);
  auto w = co_await net::write_all(socket_, out);
  if (!w) co_return w;

  for (int step = 0; step < 4; ++step) {
    auto msg = co_await net::read_message(socket_, buffer_, kMaxLoginMessage);
    if (!msg) co_return msg.error();
    std::string_view p = mysql::message_payload(buffer_.readable(), *msg, storage);
    seq = static_cast<std::uint8_t>(msg->last_seq + 1);
    auto kind = mysql::classify_auth_packet(p);
    if (!kind) co_return make_error("bad authentication packet from server");
    std::string reply;
    switch (*kind) {
      case mysql::AuthPacketKind::Ok:
        buffer_.consume(msg->size);
        co_return Result<void>{};
      case mysql::AuthPacketKind::Err: {
        auto err = mysql::parse_err(p, capabilities_);
        buffer_.consume(msg->size);
        co_return make_error("server refused login: " +
                             (err ? std::string(err->message) : std::string("malformed error")));
      }
      case mysql::AuthPacketKind::AuthSwitchRequest: {
        auto sw = mysql::parse_auth_switch_request(p);
        if (!sw) co_return sw.error();
        auto n = auth::nonce_from_plugin_data(sw->plugin_data);
        if (!n) co_return n.error();
        if (sw->plugin_name != auth::kMysqlNativePassword &&
            sw->plugin_name != auth::kCachingSha2Password)
          co_return make_error("server asks for authentication plugin " + sw->plugin_name +
                               ", which the proxy does not support");
        nonce = std::string(*n);
        plugin = sw->plugin_name;
        reply = scramble_for(plugin, login.password, nonce);
        buffer_.consume(msg->size);
        break;
      }
      case mysql::AuthPacketKind::AuthMoreData: {
        auto data = mysql::parse_auth_more_data(p);
        if (!data) co_return data.error();
        auth::CachingSha2Client client(login.password, nonce);
        auto next = client.on_more_data(*data, false);
        if (!next)
          co_return make_error("caching_sha2_password with server: " + next.error().message());
        buffer_.consume(msg->size);
        if (!*next) continue;  // fast auth succeeded: the OK follows
        reply = **next;
        break;
      }
    }
    std::string packet;
    mysql::append_packets(packet, reply, seq);
    auto sent = co_await net::write_all(socket_, packet);
    if (!sent) co_return sent;
  }
  co_return make_error("authentication with server did not finish");
}

}  // namespace shardgate::backend
