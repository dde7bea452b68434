#include "tools/shardctl/admin_client.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace shardgate::shardctl {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

Result<AdminReply> admin_request(const std::string& admin, bool post, const std::string& target,
                                 const std::string& body) {
  const auto colon = admin.rfind(':');
  if (colon == std::string::npos)
    return make_error("--admin must be HOST:PORT, got '" + admin + "'");
  asio::io_context io;
  asio::ip::tcp::socket socket(io);
  boost::system::error_code ec;
  asio::ip::tcp::resolver resolver(io);
  auto endpoints = resolver.resolve(admin.substr(0, colon), admin.substr(colon + 1), ec);
  if (!ec) asio::connect(socket, endpoints, ec);
  if (ec)
    return make_error("cannot reach the shardgate admin API at " + admin + ": " + ec.message() +
                      " (is shardgate running, with admin.port set?)");
  http::request<http::string_body> req(post ? http::verb::post : http::verb::get, target, 11);
  req.set(http::field::host, admin);
  if (!body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = body;
  }
  req.prepare_payload();
  http::write(socket, req, ec);
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  if (!ec) http::read(socket, buffer, res, ec);
  if (ec) return make_error("admin API at " + admin + ": " + ec.message());
  return AdminReply{static_cast<int>(res.result_int()), res.body()};
}

Result<std::string> admin_get(const std::string& admin, const std::string& target) {
  auto reply = admin_request(admin, false, target);
  if (!reply) return reply.error();
  if (reply->status != 200)
    return make_error("admin API answered " + std::to_string(reply->status) + ": " + reply->body);
  return reply->body;
}

}  // namespace shardgate::shardctl
