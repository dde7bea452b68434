// The connection phase of the MySQL/MariaDB protocol, sans-io: the server's
// greeting (HandshakeV10), the client's HandshakeResponse41 or its short
// SSLRequest form, and the packets of the authentication exchange that follows
// (AuthSwitchRequest, AuthMoreData). Builders return payloads; framing them
// into packets is packet.h's job.
//
// Parsed messages own their strings: they are read once per connection and kept
// for its lifetime, long after the receive buffer has moved on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace shardgate::mysql {

inline constexpr std::uint8_t kProtocolVersion10 = 10;
// mysql_native_password and caching_sha2_password use a 20-byte nonce.
inline constexpr std::size_t kScrambleSize = 20;
// An SSLRequest is a HandshakeResponse41 cut after its fixed 32 bytes.
inline constexpr std::size_t kSslRequestSize = 32;

struct HandshakeV10 {
  std::uint8_t protocol_version = kProtocolVersion10;
  std::string server_version;  // MariaDB 10+ prefixes "5.5.5-" for old MySQL clients
  std::uint32_t connection_id = 0;
  // The nonce, part 1 and part 2 joined, without part 2's trailing NUL. Servers
  // keep NUL bytes out of it: some clients read part 2 as a C string.
  std::string auth_plugin_data;
  std::uint32_t capabilities = 0;
  std::uint8_t charset = 0;
  std::uint16_t status_flags = 0;
  // MariaDB's extended capabilities (kMariadbClient*), carried in reserved bytes
  // when kClientMysql is clear in capabilities; 0 otherwise.
  std::uint32_t mariadb_capabilities = 0;
  std::string auth_plugin_name;  // with kClientPluginAuth
};

// The greeting payload. auth_plugin_data shorter than 8 bytes is padded with NULs.
std::string build_handshake_v10(const HandshakeV10& greeting);
// A greeting that is an ERR packet (0xFF: too many connections, host blocked)
// is an error here: classify with classify_response() first to read it.
Result<HandshakeV10> parse_handshake_v10(std::string_view payload);

using ConnectAttributes = std::vector<std::pair<std::string, std::string>>;

struct HandshakeResponse41 {
  std::uint32_t capabilities = 0;
  std::uint32_t max_packet_size = 0;
  std::uint8_t charset = 0;
  // MariaDB's extended capabilities, in the last 4 filler bytes when
  // kClientMysql is clear in capabilities; 0 otherwise.
  std::uint32_t mariadb_capabilities = 0;
  std::string username;
  // Its length form follows the capabilities: lenenc with
  // kClientPluginAuthLenencClientData, 1-byte length with
  // kClientSecureConnection, NUL-terminated otherwise.
  std::string auth_response;
  std::string database;          // with kClientConnectWithDb
  std::string auth_plugin_name;  // with kClientPluginAuth
  ConnectAttributes attributes;  // with kClientConnectAttrs, in the order sent
};

// Only the 4.1 protocol is supported (kClientProtocol41); HandshakeResponse320
// is refused. Like the servers, a response that ends before the optional plugin
// name or attributes is accepted with them empty.
Result<HandshakeResponse41> parse_handshake_response41(std::string_view payload);
// Fails when a field cannot be encoded under the given capabilities (a NUL in a
// NUL-terminated field, an auth response over 255 bytes without the lenenc form).
Result<std::string> build_handshake_response41(const HandshakeResponse41& response);

// An SSLRequest: exactly 32 bytes with kClientSsl set. The client starts TLS
// right after it and then sends the full HandshakeResponse41 (sequence id 2).
bool is_ssl_request(std::string_view payload);
// The fixed fields of an SSLRequest (the string fields stay empty).
Result<HandshakeResponse41> parse_ssl_request(std::string_view payload);
// From the fixed fields of response; kClientSsl is set whatever they say.
std::string build_ssl_request(const HandshakeResponse41& response);

// Server -> client: switch to another authentication method.
struct AuthSwitchRequest {
  std::string plugin_name;
  // Raw. MySQL and MariaDB send the 20-byte nonce followed by a NUL for
  // mysql_native_password and caching_sha2_password; the NUL is kept here (see
  // auth::nonce_from_plugin_data) and a builder must include it.
  std::string plugin_data;
};
std::string build_auth_switch_request(const AuthSwitchRequest& request);
// The pre-4.1 form (a lone 0xFE, asking for mysql_old_password) is an error.
Result<AuthSwitchRequest> parse_auth_switch_request(std::string_view payload);

// Server -> client: more data for the current method (0x01 + data), such as
// caching_sha2_password's fast-auth result. Client -> server continuation
// packets have no header byte: they are the data itself.
std::string build_auth_more_data(std::string_view data);
Result<std::string_view> parse_auth_more_data(std::string_view payload);  // view into payload

// What the server sent during authentication, by its first byte.
enum class AuthPacketKind { Ok, Err, AuthSwitchRequest, AuthMoreData };
Result<AuthPacketKind> classify_auth_packet(std::string_view payload);

}  // namespace shardgate::mysql
