// MySQL/MariaDB authentication methods, sans-io: mysql_native_password and
// caching_sha2_password as the proxy needs them on both sides (authenticating
// clients, and authenticating itself to servers). The session code moves the
// bytes through the handshake response, AuthSwitchRequest and AuthMoreData
// packets (proxy/protocol/mysql/handshake.h); nothing here touches a socket.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace shardgate::auth {

inline constexpr std::string_view kMysqlNativePassword = "mysql_native_password";
inline constexpr std::string_view kCachingSha2Password = "caching_sha2_password";
inline constexpr std::size_t kMysqlNonceSize = 20;

// caching_sha2_password codes, the byte after AuthMoreData's 0x01 header.
inline constexpr std::uint8_t kCachingSha2RequestPublicKey = 0x02;  // client -> server
inline constexpr std::uint8_t kCachingSha2FastAuthSuccess = 0x03;   // server -> client, then OK
inline constexpr std::uint8_t kCachingSha2PerformFullAuth = 0x04;   // server -> client

// A fresh nonce for a greeting or an AuthSwitchRequest: 20 random bytes in
// 1..127 and never '$', as MySQL makes them, since clients read part of it as
// a C string and some as UTF-8.
std::string make_mysql_nonce();

// The nonce inside an AuthSwitchRequest's plugin data: 20 bytes, optionally
// followed by the NUL servers append. Anything else is an error.
Result<std::string_view> nonce_from_plugin_data(std::string_view plugin_data);

// ---------------------------------------------------------------- mysql_native_password

using Sha1Digest = std::array<std::uint8_t, 20>;

// Client side: SHA1(password) XOR SHA1(nonce + SHA1(SHA1(password))). An empty
// password gives an empty response, as libmysqlclient sends.
std::string native_password_scramble(std::string_view password, std::string_view nonce);

// What the server keeps: SHA1(SHA1(password)), mysql.user's "*<40 hex>".
struct NativePasswordVerifier {
  bool empty_password = false;  // no password: only an empty response passes
  Sha1Digest stage2{};
};

NativePasswordVerifier native_password_verifier(std::string_view password);
// "*" + 40 hex digits (either case), or "" for an account without a password.
Result<NativePasswordVerifier> parse_native_password_hash(std::string_view text);
// "*" + 40 upper-case hex digits, or "" for no password.
std::string format_native_password_hash(const NativePasswordVerifier& verifier);
// For a password from the configuration: 41 characters starting with '*' must be
// a stored hash (a malformed one is an error, not a plaintext password, as it is
// almost surely a truncated paste); anything else is plaintext.
Result<NativePasswordVerifier> native_verifier_for(std::string_view configured_password);

// Server side: SHA1(response XOR SHA1(nonce + stage2)) must equal stage2.
// Constant-time in the digest comparison.
bool verify_native_password(const NativePasswordVerifier& verifier, std::string_view nonce,
                            std::string_view response);

// ---------------------------------------------------------------- caching_sha2_password

using Sha256Digest = std::array<std::uint8_t, 32>;

// Client side, fast auth: SHA256(password) XOR SHA256(SHA256(SHA256(password)) + nonce).
// An empty password gives an empty response.
std::string caching_sha2_scramble(std::string_view password, std::string_view nonce);

// Server side, fast auth, given the plaintext password.
bool verify_caching_sha2_scramble(std::string_view password, std::string_view nonce,
                                  std::string_view response);
// The same given SHA256(SHA256(password)), which is what MySQL keeps in its cache.
bool verify_caching_sha2_scramble(const Sha256Digest& stage2, std::string_view nonce,
                                  std::string_view response);

enum class MysqlAuthFailure {
  Protocol,       // malformed or unexpected packet
  WrongPassword,  // well-formed exchange, wrong password
  NeedsTls,       // full authentication over plaintext (RSA key exchange is not supported)
};

// The proxy authenticating a client with caching_sha2_password, knowing the
// plaintext password. Feed on_client_response the client's scramble (from the
// handshake response or the reply to an AuthSwitchRequest); if it says
// SendPerformFullAuth, feed the client's next packet to on_full_auth.
class CachingSha2Server {
 public:
  enum class Next {
    SendFastAuthSuccess,  // send AuthMoreData(0x03), then the OK packet
    SendPerformFullAuth,  // send AuthMoreData(0x04), then read the client's password
    SendOk,               // send the OK packet
  };

  // require_full_auth: always ask for the cleartext password (only over TLS),
  // e.g. when the proxy needs it to log in to the servers as this user.
  CachingSha2Server(std::string password, std::string nonce, bool require_full_auth = false);

  Result<Next> on_client_response(std::string_view response);
  // packet: the client's full-auth packet, the password and a NUL. Over a
  // plaintext connection the client would send a public-key request or an
  // RSA-encrypted password instead; both fail with NeedsTls.
  Result<Next> on_full_auth(std::string_view packet, bool tls);

  std::optional<MysqlAuthFailure> last_failure() const { return failure_; }

 private:
  enum class State { ExpectScramble, ExpectFullAuth, Done, Failed };
  Error fail(MysqlAuthFailure why, std::string message);

  std::string password_;
  std::string nonce_;
  bool require_full_auth_ = false;
  State state_ = State::ExpectScramble;
  std::optional<MysqlAuthFailure> failure_;
};

// The proxy authenticating to a server with caching_sha2_password.
class CachingSha2Client {
 public:
  CachingSha2Client(std::string password, std::string nonce);

  // The scramble for the handshake response or the AuthSwitchRequest reply.
  std::string initial_response() const;
  // data: an AuthMoreData body (after the 0x01 header). Returns what to send
  // next: nothing after fast-auth success (the OK follows), or over TLS the
  // password and a NUL when the server asks for full authentication. Without
  // TLS that request fails: sending the password would need the server's RSA key.
  Result<std::optional<std::string>> on_more_data(std::string_view data, bool tls);

 private:
  std::string password_;
  std::string nonce_;
};

}  // namespace shardgate::auth
