// The admin HTTP listener (127.0.0.1 by default): JSON API and Prometheus
// metrics. It runs on its own thread and io_context; it reads each worker's
// pools by hopping onto that worker's thread, so pools stay lock-free.
#pragma once

#include <boost/asio.hpp>
#include <boost/beast/http.hpp>
#include <memory>
#include <thread>

#include "proxy/failover_controller.h"
#include "proxy/hot_key_watch.h"
#include "proxy/proxy_context.h"
#include "proxy/reshard/reshard_controller.h"
#include "replication/monitor.h"

namespace shardgate::admin {

class AdminServer {
 public:
  AdminServer(ProxyContext& ctx, replication::Monitor& monitor, FailoverController& failover,
              const HotKeyWatch& hot_keys, ReshardController& reshard);
  ~AdminServer();
  // Binds (errors are returned, e.g. the port is taken) and starts serving.
  Result<void> start(const std::string& address, std::uint16_t port);

 private:
  boost::asio::awaitable<void> accept_loop(boost::asio::ip::tcp::acceptor acceptor);
  boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket socket);
  boost::asio::awaitable<std::string> backends_json();
  std::string topology_json() const;
  boost::asio::awaitable<std::string> metrics_text();
  std::string failovers_json() const;
  // POST /api/v1/failover?shard=S[&to=NAME]: runs a switchover, answers its report.
  boost::asio::awaitable<void> switchover(
      const std::string& query, boost::beast::http::response<boost::beast::http::string_body>& res);

  ProxyContext& ctx_;
  replication::Monitor& monitor_;
  FailoverController& failover_;
  const HotKeyWatch& hot_keys_;
  ReshardController& reshard_;
  // POST /api/v1/reshard?op=...: runs on its own thread (a copy or a
  // cleanup takes long), answered from there.
  // POST /api/v1/shards: adds a spare shard (proxy/admin/add_shard.h).
  boost::asio::awaitable<void> add_shard(
      const std::string& body, boost::beast::http::response<boost::beast::http::string_body>& res);
  boost::asio::awaitable<void> reshard(
      const std::string& query, boost::beast::http::response<boost::beast::http::string_body>& res);
  boost::asio::io_context io_{1};
  std::thread thread_;
};

}  // namespace shardgate::admin
