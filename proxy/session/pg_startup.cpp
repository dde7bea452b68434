// Startup and authentication of a PostgreSQL client (the first two phases of
// PgSession::run).
#include <openssl/rand.h>

#include <cstring>

#include "proxy/net/pg_io.h"
#include "proxy/protocol/auth/md5.h"
#include "proxy/protocol/auth/scram.h"
#include "proxy/session/pg_session.h"

namespace shardgate::session {

using net::use_result;

namespace {

std::string_view param(const pg::Params& params, std::string_view name) {
  for (const auto& [k, v] : params)
    if (k == name) return v;
  return {};
}

// Parameters PostgreSQL reports with GUC_REPORT: a client's own startup value
// wins over the server's in the ParameterStatus the proxy sends at login.
bool is_reported(std::string_view name) {
  return name == "application_name" || name == "client_encoding" || name == "DateStyle" ||
         name == "IntervalStyle" || name == "TimeZone" || name == "standard_conforming_strings" ||
         name == "extra_float_digits" || name == "search_path";
}

}  // namespace

asio::awaitable<void> PgSession::refuse(std::string_view sqlstate, std::string_view message) {
  bump(worker_.metrics().client_connections_refused_total);
  co_await write_client(pg::error_response(sqlstate, message, "FATAL"));
}

// Answers SSLRequest ('S' and a TLS handshake when the listener has a
// certificate, else 'N') and GSSENCRequest (always 'N': no Kerberos here).
// 'N' lets the driver go on in clear text, or give up if it insists.
asio::awaitable<bool> PgSession::negotiate_tls(bool ssl_request) {
  if (client_.encrypted()) {
    co_await refuse("08P01", "encryption requested twice");
    co_return false;
  }
  if (!ssl_request || !tls_) {
    auto w = co_await write_client("N");
    co_return w.has_value();
  }
  // Bytes sent after SSLRequest, before the handshake, would be read as if
  // they came over TLS: a man in the middle could inject them (CVE-2021-23214).
  if (!in_.empty()) {
    co_await refuse("08P01", "unencrypted data after SSLRequest");
    co_return false;
  }
  auto w = co_await write_client("S");
  if (!w) co_return false;
  auto tls = co_await client_.start_tls(*tls_->context);
  if (!tls) {
    bump(worker_.metrics().client_connections_refused_total);
    co_return false;  // nothing can be said to a client whose handshake failed
  }
  co_return true;
}

asio::awaitable<bool> PgSession::startup() {
  for (;;) {
    auto d = pg::decode_startup(in_.readable());
    if (d.status == pg::DecodeStatus::Error) {
      co_await refuse("08P01", "invalid startup packet: " + d.error);
      co_return false;
    }
    if (d.status == pg::DecodeStatus::NeedMore) {
      auto r = co_await net::read_more(client_, in_, 1024);
      if (!r) co_return false;
      continue;
    }
    const pg::StartupPacket p = d.packet;
    if (p.code == pg::kSslRequestCode || p.code == pg::kGssEncRequestCode) {
      in_.consume(p.size);
      const bool negotiated = co_await negotiate_tls(p.code == pg::kSslRequestCode);
      if (!negotiated) co_return false;
      continue;
    }
    if (p.code == pg::kCancelRequestCode) {
      pg::BodyReader r(p.body);
      CancelRegistry::Key key{r.u32(), r.u32()};
      if (!r.failed() && ctx_.cancels.cancel(key)) bump(worker_.metrics().cancel_requests_total);
      co_return false;  // the protocol closes a cancel connection without an answer
    }
    if (p.code != pg::kProtocolVersion3) {
      co_await refuse("0A000", "unsupported frontend protocol " + std::to_string(p.code >> 16) +
                                   "." + std::to_string(p.code & 0xffff) +
                                   ": shardgate speaks protocol 3.0");
      co_return false;
    }
    auto params = pg::parse_startup_params(p.body);
    in_.consume(p.size);
    if (!params) {
      co_await refuse("08P01", "invalid startup packet: malformed parameter list");
      co_return false;
    }
    startup_params_ = std::make_unique<pg::Params>(std::move(*params));
    if (tls_ && tls_->required && !client_.encrypted()) {
      co_await refuse("28000",
                      "this listener requires TLS: connect with sslmode=require (or verify-ca, "
                      "verify-full)");
      co_return false;
    }
    break;
  }
  const std::string_view user = param(*startup_params_, "user");
  if (user.empty()) {
    co_await refuse("28000", "no PostgreSQL user name specified in startup packet");
    co_return false;
  }
  if (!param(*startup_params_, "replication").empty() &&
      param(*startup_params_, "replication") != "false") {
    co_await refuse("0A000",
                    "replication connections are not supported through shardgate: connect to the "
                    "server directly");
    co_return false;
  }
  database_ = std::string(param(*startup_params_, "database"));
  if (database_.empty()) database_ = std::string(user);
  const auto limit = ctx_.config->limits().max_client_connections();
  if (ctx_.clients.load(std::memory_order_relaxed) > static_cast<std::int64_t>(limit)) {
    co_await refuse("53300", "sorry, too many clients already (max_client_connections " +
                                 std::to_string(limit) + ")");
    co_return false;
  }
  user_ = ctx_.find_user(user);
  co_return true;
}

asio::awaitable<Result<std::string_view>> PgSession::read_password_message() {
  auto f = co_await net::read_frame(client_, in_, 64 * 1024);
  if (!f) co_return f.error();
  if (f->type != 'p')
    co_return make_error("expected a password message, got '" + std::string(1, f->type) + "'");
  const std::string_view body = f->body;
  in_.consume(f->size);  // the view stays valid: nothing is read until the caller is done
  co_return body;
}

asio::awaitable<bool> PgSession::authenticate() {
  state_ = ClientState::Authenticating;
  const std::string name(param(*startup_params_, "user"));
  if (user_ == nullptr) {
    bump(worker_.metrics().auth_failures_total);
    co_await refuse("28P01", "password authentication failed for user \"" + name + "\"");
    co_return false;
  }
  switch (user_->auth()) {
    case config::User::TRUST:
      co_return true;
    case config::User::MD5:
      co_return co_await authenticate_md5();
    default:
      co_return co_await authenticate_scram();
  }
}

asio::awaitable<bool> PgSession::authenticate_scram() {
  const auto* verifier = ctx_.scram_verifier(user_->name());
  if (verifier == nullptr) {
    co_await refuse("28P01", "user \"" + user_->name() +
                                 "\" has no usable SCRAM password in the shardgate config");
    co_return false;
  }
  auth::ScramServer scram(*verifier);
  static constexpr char kMechanisms[] = "SCRAM-SHA-256\0";
  if (!co_await write_client(
          pg::auth_request(pg::kAuthSasl, std::string_view(kMechanisms, sizeof kMechanisms))))
    co_return false;
  auto first = co_await read_password_message();
  if (!first) {
    co_await refuse("08P01", "SASL authentication: " + first.error().message());
    co_return false;
  }
  pg::BodyReader r(*first);
  const auto mechanism = r.cstr();
  const std::uint32_t len = r.u32();
  const auto data = r.bytes(len);
  if (r.failed() || mechanism != "SCRAM-SHA-256") {
    co_await refuse("08P01", "malformed SASLInitialResponse or unsupported mechanism");
    co_return false;
  }
  auto server_first = scram.on_client_first(data);
  if (!server_first) {
    co_await refuse("08P01", "SCRAM: " + server_first.error().message());
    co_return false;
  }
  if (!co_await write_client(pg::auth_request(pg::kAuthSaslContinue, *server_first)))
    co_return false;
  auto final_msg = co_await read_password_message();
  if (!final_msg) {
    co_await refuse("08P01", "SASL authentication: " + final_msg.error().message());
    co_return false;
  }
  auto server_final = scram.on_client_final(*final_msg);
  if (!server_final) {
    bump(worker_.metrics().auth_failures_total);
    if (scram.last_failure() == auth::ScramFailure::WrongPassword)
      co_await refuse("28P01", "password authentication failed for user \"" + user_->name() + "\"");
    else
      co_await refuse("08P01", "SCRAM: " + server_final.error().message());
    co_return false;
  }
  to_client_ += pg::auth_request(pg::kAuthSaslFinal, *server_final);
  co_return true;
}

asio::awaitable<bool> PgSession::authenticate_md5() {
  std::array<std::uint8_t, 4> salt{};
  RAND_bytes(salt.data(), static_cast<int>(salt.size()));
  const std::string_view salt_bytes(reinterpret_cast<const char*>(salt.data()), salt.size());
  if (!co_await write_client(pg::auth_request(pg::kAuthMd5, salt_bytes))) co_return false;
  auto response = co_await read_password_message();
  if (!response) {
    co_await refuse("08P01", "md5 authentication: " + response.error().message());
    co_return false;
  }
  std::string_view answer = *response;
  if (!answer.empty() && answer.back() == '\0') answer.remove_suffix(1);
  if (!auth::md5_verify(user_->password(), user_->name(), salt, answer)) {
    bump(worker_.metrics().auth_failures_total);
    co_await refuse("28P01", "password authentication failed for user \"" + user_->name() + "\"");
    co_return false;
  }
  co_return true;
}

asio::awaitable<bool> PgSession::send_login_ok() {
  auto params = co_await ctx_.login_parameters(worker_, *user_, database_);
  if (!params) {
    co_await refuse("08006", "no server available for database \"" + database_ +
                                 "\": " + params.error().message());
    co_return false;
  }
  to_client_ += pg::auth_request(pg::kAuthOk);
  for (const auto& [name, value] : *params) {
    const std::string_view own = param(*startup_params_, name);
    to_client_ += pg::parameter_status(name, is_reported(name) && !own.empty() ? own : value);
  }
  std::weak_ptr<PgSession> weak = weak_from_this();
  asio::any_io_executor ex = client_.get_executor();
  cancel_key_ = ctx_.cancels.add([weak, ex](bool) {
    asio::post(ex, [weak] {
      if (auto self = weak.lock()) self->cancel_running();
    });
  });
  to_client_ += pg::backend_key_data(cancel_key_->pid, cancel_key_->secret);
  to_client_ += pg::ready_for_query('I');
  settings_ = SharedSettings::intern(settings_from_startup(*startup_params_));
  startup_params_.reset();  // settings_ keeps what is still needed
  state_ = ClientState::Idle;
  co_return static_cast<bool>(co_await flush_client());
}

}  // namespace shardgate::session
