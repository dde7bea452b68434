#include "proxy/backend/pg_server_connection.h"

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "proxy/net/pg_io.h"
#include "proxy/net/tcp_options.h"
#include "proxy/protocol/auth/md5.h"

namespace shardgate::backend {

using namespace asio::experimental::awaitable_operators;
using net::use_result;

namespace {
constexpr std::uint32_t kMaxServerStartupMessage = 1 << 20;
}

PgServerConnection::PgServerConnection(asio::any_io_executor ex, std::uint32_t backend_index)
    : socket_(ex), backend_index_(backend_index) {}

asio::awaitable<Result<void>> PgServerConnection::open(const router::BackendInfo& backend,
                                                       const ServerLogin& login,
                                                       std::chrono::milliseconds timeout) {
  auto work = [&]() -> asio::awaitable<Result<void>> {
    auto c = co_await connect_socket(backend);
    if (!c) co_return c;
    co_return co_await startup(login);
  };
  auto result =
      co_await net::with_deadline(socket_, work(), timeout, "connecting to " + backend.name);
  state = result ? ServerState::Idle : ServerState::Broken;
  co_return result;
}

Result<asio::generic::stream_protocol::endpoint> endpoint_of(const router::BackendInfo& b) {
  using Generic = asio::generic::stream_protocol::endpoint;
  if (!b.unix_socket_dir.empty())
    return Generic(asio::local::stream_protocol::endpoint(b.unix_socket_dir + "/.s.PGSQL." +
                                                          std::to_string(b.port)));
  boost::system::error_code ec;
  auto address = asio::ip::make_address(b.host, ec);
  if (ec) {
    // Generic endpoints convert from anything, so the error needs its tag.
    return Result<Generic>(
        boost::system::in_place_error,
        make_error("backend " + b.name + ": host must be an IP address: " + b.host));
  }
  return Generic(asio::ip::tcp::endpoint(address, b.port));
}

asio::awaitable<Result<void>> PgServerConnection::connect_socket(const router::BackendInfo& b) {
  const bool unix_socket = !b.unix_socket_dir.empty();
  auto target = endpoint_of(b);
  if (!target) co_return target.error();
  const auto endpoint = *target;
  auto [ec] = co_await socket_.async_connect(endpoint, use_result);
  if (ec) co_return make_error("cannot connect to " + b.name + ": " + ec.message());
  if (!unix_socket) net::tune_tcp(socket_.native_handle(), true);
  co_return Result<void>{};
}

asio::awaitable<Result<void>> PgServerConnection::startup(const ServerLogin& login) {
  const pg::Params params = {
      {"user", login.user}, {"database", login.database}, {"application_name", "shardgate"}};
  auto w = co_await net::write_all(socket_, pg::startup_message(params));
  if (!w) co_return w;
  std::optional<auth::ScramClient> scram;
  for (;;) {
    auto frame = co_await net::read_frame(socket_, buffer_, kMaxServerStartupMessage);
    if (!frame) co_return frame.error();
    const pg::Frame f = *frame;
    pg::BodyReader r(f.body);
    Result<void> step;
    switch (f.type) {
      case 'R': {
        const std::uint32_t code = r.u32();
        step = co_await authenticate(code, r.rest(), login, scram);
        break;
      }
      case 'S': {
        auto name = r.cstr();
        auto value = r.cstr();
        if (!r.failed()) parameters_.emplace_back(std::string(name), std::string(value));
        break;
      }
      case 'K':
        pid_ = r.u32();
        key_ = r.u32();
        break;
      case 'E': {
        auto e = pg::parse_error_fields(f.body);
        step = make_error("server refused login: " + e.sqlstate + " " + e.message);
        break;
      }
      case 'Z':
        buffer_.consume(f.size);
        co_return Result<void>{};
      default:
        break;  // NoticeResponse and others carry nothing the pool needs
    }
    buffer_.consume(f.size);
    if (!step) co_return step;
  }
}

asio::awaitable<Result<void>> PgServerConnection::authenticate(
    std::uint32_t code, std::string_view data, const ServerLogin& login,
    std::optional<auth::ScramClient>& scram) {
  std::string reply;
  switch (code) {
    case pg::kAuthOk:
      co_return Result<void>{};
    case pg::kAuthCleartext:
      reply = pg::password_message(login.password);
      break;
    case pg::kAuthMd5: {
      if (data.size() != 4) co_return make_error("malformed md5 salt from server");
      std::array<std::uint8_t, 4> salt;
      std::memcpy(salt.data(), data.data(), 4);
      reply = pg::password_message(auth::md5_response(login.password, login.user, salt));
      break;
    }
    case pg::kAuthSasl: {
      if (data.find("SCRAM-SHA-256") == std::string_view::npos)
        co_return make_error("server offers no SASL mechanism the proxy supports");
      scram.emplace(login.password);
      reply = pg::sasl_initial_response("SCRAM-SHA-256", scram->client_first_message());
      break;
    }
    case pg::kAuthSaslContinue: {
      if (!scram) co_return make_error("server sent SASLContinue out of order");
      auto final_message = scram->on_server_first(data);
      if (!final_message)
        co_return make_error("SCRAM with server: " + final_message.error().message());
      reply = pg::sasl_response(*final_message);
      break;
    }
    case pg::kAuthSaslFinal: {
      if (!scram) co_return make_error("server sent SASLFinal out of order");
      auto ok = scram->on_server_final(data);
      if (!ok) co_return make_error("SCRAM with server: " + ok.error().message());
      co_return Result<void>{};
    }
    default:
      co_return make_error("server asks for an authentication method the proxy does not support (" +
                           std::to_string(code) + ")");
  }
  co_return co_await net::write_all(socket_, reply);
}

}  // namespace shardgate::backend
