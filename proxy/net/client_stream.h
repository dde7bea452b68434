// The client's side of a session: a TCP socket that may be upgraded to TLS
// in the middle of the startup phase (PostgreSQL's SSLRequest, MySQL's
// SSLRequest packet). The session reads and writes through this one type and
// never needs to know which it is; a plain client pays one branch per call.
#pragma once

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <memory>

#include "common/result.h"

namespace shardgate::net {

namespace asio = boost::asio;

// A listener's TLS settings, shared by its sessions (an SSL_CTX is safe to use
// from several threads once it is set up).
struct ServerTls {
  std::shared_ptr<asio::ssl::context> context;
  bool required = false;  // refuse clients that do not ask for TLS
};

// Loads a PEM certificate chain and private key; the error says which file failed.
Result<std::shared_ptr<asio::ssl::context>> make_server_tls_context(const std::string& cert_file,
                                                                    const std::string& key_file);

// A client's socket, bound to its worker's io_context by the executor's
// concrete type: asio::any_io_executor would be copied into the socket and
// into every pending operation, and thousands of idle clients each hold one.
using ClientSocket = asio::basic_stream_socket<asio::ip::tcp, asio::io_context::executor_type>;

class ClientStream {
 public:
  using executor_type = asio::io_context::executor_type;

  explicit ClientStream(ClientSocket socket) : socket_(std::move(socket)) {}

  executor_type get_executor() { return socket_.get_executor(); }
  bool encrypted() const { return tls_ != nullptr; }
  ClientSocket& socket() { return socket_; }

  // The server side of the TLS handshake over the socket. Bytes the client
  // sent before this (there must be none: the client waits for our answer)
  // would be lost, so the caller checks its buffer is empty first.
  asio::awaitable<Result<void>> start_tls(asio::ssl::context& context);

  template <class Buffers, class Token>
  auto async_read_some(const Buffers& buffers, Token&& token) {
    if (tls_) return tls_->async_read_some(buffers, std::forward<Token>(token));
    return socket_.async_read_some(buffers, std::forward<Token>(token));
  }

  template <class Buffers, class Token>
  auto async_write_some(const Buffers& buffers, Token&& token) {
    if (tls_) return tls_->async_write_some(buffers, std::forward<Token>(token));
    return socket_.async_write_some(buffers, std::forward<Token>(token));
  }

  // Waits until a read would not block. Under TLS the engine may already hold
  // decrypted bytes the socket knows nothing about, so it completes at once
  // and the caller's read finds out.
  template <class Token>
  auto async_wait_readable(Token&& token) {
    if (tls_) {
      return asio::async_initiate<Token, void(boost::system::error_code)>(
          [](auto handler, executor_type ex) {
            asio::post(ex, [h = std::move(handler)]() mutable { h(boost::system::error_code{}); });
          },
          token, socket_.get_executor());
    }
    return socket_.async_wait(ClientSocket::wait_read, std::forward<Token>(token));
  }

  void cancel() {
    boost::system::error_code ignored;
    socket_.cancel(ignored);
  }

 private:
  ClientSocket socket_;
  std::unique_ptr<asio::ssl::stream<ClientSocket&>> tls_;
};

}  // namespace shardgate::net
