#include "proxy/net/listener.h"

#include <sys/socket.h>

#include "proxy/net/tcp_options.h"
#include "proxy/session/my_session.h"
#include "proxy/session/pg_session.h"

namespace shardgate::net {

namespace {

using tcp = asio::ip::tcp;

// One coroutine per client, started on the accepting thread.
template <class Session>
void start_session(ClientSocket socket, Worker& worker, const ServerTls* tls) {
  auto session = std::make_shared<Session>(std::move(socket), worker, tls);
  asio::co_spawn(worker.io(), session->run(), asio::detached);
}

asio::awaitable<void> accept_loop(Worker& worker, tcp::acceptor acceptor, const ServerTls* tls,
                                  config::Listener::Protocol protocol) {
  for (;;) {
    auto [ec, socket] =
        co_await acceptor.async_accept(worker.io(), asio::as_tuple(asio::use_awaitable));
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      // Out of file descriptors and the like: back off instead of spinning.
      asio::steady_timer t(worker.io(), std::chrono::milliseconds(50));
      co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    tune_tcp(socket.native_handle(), false);
    if (protocol == config::Listener::MYSQL)
      start_session<session::MySession>(std::move(socket), worker, tls);
    else
      start_session<session::PgSession>(std::move(socket), worker, tls);
  }
}

Result<tcp::acceptor> bind(Worker& worker, const asio::ip::address& ip, std::uint16_t port) {
  boost::system::error_code ec;
  tcp::acceptor acceptor(worker.io());
  const tcp::endpoint ep(ip, port);
  acceptor.open(ep.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) {
    int one = 1;
    if (::setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
      return make_error("SO_REUSEPORT is not available");
  }
  if (!ec) acceptor.bind(ep, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return make_error(ec.message());
  return acceptor;
}

}  // namespace

Result<void> start_listener(ProxyContext& ctx, config::Listener::Protocol protocol,
                            const std::string& address, std::uint16_t port, const ServerTls* tls) {
  boost::system::error_code ec;
  auto ip = asio::ip::make_address(address, ec);
  if (ec) return make_error("listener address '" + address + "' is not an IP address");
  // A first plain bind proves the port is free: SO_REUSEPORT alone would let
  // this proxy share a port with a stale one that is still running.
  {
    tcp::acceptor probe(ctx.workers.front()->io());
    probe.open(ip.is_v4() ? tcp::v4() : tcp::v6(), ec);
    if (!ec) probe.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) probe.bind(tcp::endpoint(ip, port), ec);
    if (ec)
      return make_error("cannot listen on " + address + ":" + std::to_string(port) + ": " +
                        ec.message());
  }
  for (auto& w : ctx.workers) {
    auto acceptor = bind(*w, ip, port);
    if (!acceptor) {
      return make_error("cannot listen on " + address + ":" + std::to_string(port) + ": " +
                        acceptor.error().message());
    }
    asio::co_spawn(w->io(), accept_loop(*w, std::move(*acceptor), tls, protocol), asio::detached);
  }
  return {};
}

}  // namespace shardgate::net
