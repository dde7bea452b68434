#include "proxy/net/client_stream.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace shardgate::net {

namespace {

std::string openssl_reason(const boost::system::error_code& ec) {
  std::string reason = ec.message();
  if (unsigned long e = ERR_get_error(); e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    reason = buf;
  }
  return reason;
}

}  // namespace

Result<std::shared_ptr<asio::ssl::context>> make_server_tls_context(const std::string& cert_file,
                                                                    const std::string& key_file) {
  auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  boost::system::error_code ec;
  // TLS 1.2 is the oldest version any supported driver still needs.
  context->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                           asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                           asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use,
                       ec);
  if (ec) return make_error("cannot set up TLS: " + openssl_reason(ec));
  context->use_certificate_chain_file(cert_file, ec);
  if (ec) return make_error("cannot use certificate " + cert_file + ": " + openssl_reason(ec));
  context->use_private_key_file(key_file, asio::ssl::context::pem, ec);
  if (ec) return make_error("cannot use private key " + key_file + ": " + openssl_reason(ec));
  if (SSL_CTX_check_private_key(context->native_handle()) != 1)
    return make_error("private key " + key_file + " does not match certificate " + cert_file);
  return context;
}

asio::awaitable<Result<void>> ClientStream::start_tls(asio::ssl::context& context) {
  tls_ = std::make_unique<asio::ssl::stream<ClientSocket&>>(socket_, context);
  auto [ec] = co_await tls_->async_handshake(asio::ssl::stream_base::server,
                                             asio::as_tuple(asio::use_awaitable));
  if (ec) co_return make_error("TLS handshake failed: " + openssl_reason(ec));
  co_return Result<void>{};
}

}  // namespace shardgate::net
