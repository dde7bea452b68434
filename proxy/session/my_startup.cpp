// The connection phase of a MySQL client: greeting, optional TLS, the
// handshake response and the password check (mysql_native_password or
// caching_sha2_password, with an AuthSwitchRequest when the client started
// with the other one), then OK.
#include "proxy/net/my_io.h"
#include "proxy/protocol/auth/mysql_auth.h"
#include "proxy/protocol/mysql/handshake.h"
#include "proxy/protocol/mysql/messages.h"
#include "proxy/session/my_session.h"

namespace shardgate::session {

namespace {

constexpr std::uint32_t kMaxLoginPacket = 64 * 1024;
constexpr std::uint8_t kDefaultCharset = 45;  // utf8mb4_general_ci
// Used in the greeting when no server could be asked for its version.
constexpr std::string_view kFallbackVersion = "5.5.5-10.11.0-MariaDB-shardgate";

// What the proxy offers clients. Not offered: compression, LOCAL INFILE
// (refused with an error instead), MySQL 8 query attributes and optional
// metadata, DEPRECATE_EOF (MariaDB servers do not speak it, and answers are
// relayed unchanged), MariaDB's extended capabilities (metadata caching).
std::uint32_t offered_capabilities(bool tls) {
  using namespace mysql;
  std::uint32_t caps = kClientLongPassword | kClientFoundRows | kClientLongFlag |
                       kClientConnectWithDb | kClientProtocol41 | kClientTransactions |
                       kClientSecureConnection | kClientMultiStatements | kClientMultiResults |
                       kClientPsMultiResults | kClientPluginAuth | kClientConnectAttrs |
                       kClientPluginAuthLenencClientData | kClientSessionTrack;
  if (tls) caps |= kClientSsl;
  return caps;
}

}  // namespace

asio::awaitable<void> MySession::refuse(mysql::ErrorCode code, const std::string& message) {
  bump(worker_.metrics().client_connections_refused_total);
  queue_error(code, message);
  std::string out = std::move(to_client_);
  to_client_.clear();
  co_await write_client(out);
}

// Reads one whole message from the client during login. It must continue the
// exchange's sequence ids; one out of order or too large gets its ERR packet
// here (the caller then closes).
asio::awaitable<Result<std::string>> MySession::read_client_packet() {
  for (;;) {
    auto d = mysql::decode_message(in_.readable(), kMaxLoginPacket);
    if (d.status == mysql::DecodeStatus::Error) {
      co_await refuse(mysql::kErNetPacketTooLarge, "login packet rejected: " + d.error +
                                                       " (at most " +
                                                       std::to_string(kMaxLoginPacket) + " bytes)");
      co_return make_error(d.error);
    }
    if (d.status == mysql::DecodeStatus::NeedMore) {
      auto r = co_await net::read_more(client_, in_, 1024);
      if (!r) co_return r.error();
      continue;
    }
    if (d.seq != seq_) {
      const std::string message = "Got packets out of order (sequence id " + std::to_string(d.seq) +
                                  ", expected " + std::to_string(seq_) + ")";
      seq_ = static_cast<std::uint8_t>(d.last_seq + 1);
      co_await refuse(mysql::kErNetPacketsOutOfOrder, message);
      co_return make_error(message);
    }
    std::string payload = mysql::assemble_payload(in_.readable(), d);
    seq_ = static_cast<std::uint8_t>(d.last_seq + 1);
    in_.consume(d.size);
    co_return payload;
  }
}

asio::awaitable<Result<void>> MySession::fetch_server_version() {
  {
    std::lock_guard lock(ctx_.server_params_mutex);
    if (ctx_.mysql_server_version) co_return Result<void>{};
  }
  if (ctx_.config->users_size() == 0) co_return make_error("no user configured");
  // Any configured user can open a connection; the version is the cluster's.
  const config::User& user = ctx_.config->users(0);
  auto& pool = worker_.pool<Conn>(ctx_.topology->shards[0].primary, user, "", 0);
  auto lease = co_await pool.acquire();
  if (!lease) co_return lease.error();
  std::string version = (*lease)->server_version();
  pool.release(std::move(*lease), true);
  std::lock_guard lock(ctx_.server_params_mutex);
  if (!ctx_.mysql_server_version) ctx_.mysql_server_version = version;
  co_return Result<void>{};
}

asio::awaitable<bool> MySession::greet_and_authenticate() {
  const auto limit = ctx_.config->limits().max_client_connections();
  if (ctx_.clients.load(std::memory_order_relaxed) > static_cast<std::int64_t>(limit)) {
    co_await refuse(
        mysql::kErConCountError,
        "Too many connections (shardgate max_client_connections " + std::to_string(limit) + ")");
    co_return false;
  }
  co_await fetch_server_version();  // on failure the greeting says shardgate's fallback
  mysql::HandshakeV10 greeting;
  {
    std::lock_guard lock(ctx_.server_params_mutex);
    greeting.server_version = ctx_.mysql_server_version.value_or(std::string(kFallbackVersion));
  }
  nonce_ = auth::make_mysql_nonce();
  // The connection id clients see is the session's key in the cancel registry:
  // KILL QUERY <id> from another connection finds this session.
  std::weak_ptr<MySession> weak = weak_from_this();
  asio::any_io_executor ex = client_.get_executor();
  cancel_key_ = ctx_.cancels.add([weak, ex](bool whole_connection) {
    asio::post(ex, [weak, whole_connection] {
      if (auto self = weak.lock()) self->cancel_running(whole_connection);
    });
  });
  connection_id_ = cancel_key_->pid;
  greeting.connection_id = connection_id_;
  greeting.auth_plugin_data = nonce_;
  greeting.capabilities = offered_capabilities(tls_ != nullptr);
  greeting.charset = kDefaultCharset;
  greeting.status_flags = mysql::kServerStatusAutocommit;
  // The user is not known yet: start with the method every client speaks and
  // switch a caching_sha2_password user over after the handshake response.
  greeting.auth_plugin_name = std::string(auth::kMysqlNativePassword);
  seq_ = 0;
  std::string out;
  mysql::append_packets(out, mysql::build_handshake_v10(greeting), seq_);
  if (!(co_await write_client(out))) co_return false;

  state_ = ClientState::Authenticating;
  auto packet = co_await read_client_packet();
  if (!packet) co_return false;
  if (mysql::is_ssl_request(*packet)) {
    if (!tls_ || !in_.empty()) {
      co_await refuse(mysql::kErHandshakeError,
                      tls_ ? "unencrypted data after SSLRequest"
                           : "TLS is not configured on this listener (tls_cert_file)");
      co_return false;
    }
    auto started = co_await client_.start_tls(*tls_->context);
    if (!started) co_return false;
    packet = co_await read_client_packet();
    if (!packet) co_return false;
  }
  auto response = mysql::parse_handshake_response41(*packet);
  if (!response) {
    co_await refuse(mysql::kErHandshakeError, "Bad handshake: " + response.error().message());
    co_return false;
  }
  if (tls_ && tls_->required && !client_.encrypted()) {
    co_await refuse(mysql::kErAccessDeniedError,
                    "this listener requires TLS: connect with --ssl (ssl-mode=REQUIRED)");
    co_return false;
  }
  capabilities_ = response->capabilities & offered_capabilities(tls_ != nullptr);
  charset_ = response->charset ? response->charset : kDefaultCharset;
  user_ = ctx_.find_user(response->username);
  login_database_ = (capabilities_ & mysql::kClientConnectWithDb) ? response->database : "";
  database_ = login_database_;
  std::string plugin = response->auth_plugin_name;
  if (plugin.empty()) plugin = std::string(auth::kMysqlNativePassword);
  const bool ok = co_await verify_password(plugin, response->auth_response);
  if (!ok) {
    co_await refuse(mysql::kErAccessDeniedError,
                    "Access denied for user '" + response->username + "' (using password: " +
                        (response->auth_response.empty() ? "NO" : "YES") + ")");
    co_return false;
  }
  pools_.variant = pool_variant();
  ctx_.cancels.set_owner(connection_id_, user_->name());
  queue_ok();
  std::string done = std::move(to_client_);
  to_client_.clear();
  if (!(co_await write_client(done))) co_return false;
  state_ = ClientState::Idle;
  co_return true;
}

// Checks the client's scramble for the nonce; switches the client to the
// user's method first when it answered with another one.
asio::awaitable<bool> MySession::verify_password(const std::string& plugin,
                                                 const std::string& response) {
  if (!user_) co_return false;
  const bool want_sha2 = user_->auth() == config::User::CACHING_SHA2_PASSWORD;
  const std::string want =
      std::string(want_sha2 ? auth::kCachingSha2Password : auth::kMysqlNativePassword);
  std::string scramble = response;
  const bool known = plugin == auth::kMysqlNativePassword || plugin == auth::kCachingSha2Password;
  std::string used = plugin;
  if (!known || (plugin != want)) {
    mysql::AuthSwitchRequest sw{want, nonce_ + std::string(1, '\0')};
    std::string out;
    mysql::append_packets(out, mysql::build_auth_switch_request(sw), seq_);
    if (!(co_await write_client(out))) co_return false;
    auto reply = co_await read_client_packet();
    if (!reply) co_return false;
    scramble = std::move(*reply);
    used = want;
  }
  if (user_->auth() == config::User::TRUST) co_return true;
  if (used == auth::kMysqlNativePassword) {
    auto verifier = auth::native_verifier_for(user_->password());
    co_return verifier&& auth::verify_native_password(*verifier, nonce_, scramble);
  }
  auth::CachingSha2Server server(user_->password(), nonce_);
  auto next = server.on_client_response(scramble);
  if (!next) co_return false;
  if (*next == auth::CachingSha2Server::Next::SendFastAuthSuccess) {
    std::string out;
    const char success = static_cast<char>(auth::kCachingSha2FastAuthSuccess);
    mysql::append_packets(out, mysql::build_auth_more_data(std::string_view(&success, 1)), seq_);
    if (!(co_await write_client(out))) co_return false;
    co_return true;
  }
  if (*next == auth::CachingSha2Server::Next::SendPerformFullAuth) {
    std::string out;
    const char full = static_cast<char>(auth::kCachingSha2PerformFullAuth);
    mysql::append_packets(out, mysql::build_auth_more_data(std::string_view(&full, 1)), seq_);
    if (!(co_await write_client(out))) co_return false;
    auto reply = co_await read_client_packet();
    if (!reply) co_return false;
    auto last = server.on_full_auth(*reply, client_.encrypted());
    co_return last.has_value();
  }
  co_return true;
}

}  // namespace shardgate::session
