#include "proxy/protocol/mysql/handshake.h"

#include <algorithm>

#include "proxy/protocol/mysql/constants.h"
#include "proxy/protocol/mysql/packet.h"

namespace shardgate::mysql {
namespace {

constexpr std::size_t kScramblePart1Size = 8;
// Part 2 takes at least 13 bytes on the wire: 12 bytes of nonce and a NUL.
constexpr std::size_t kScramblePart2MinSize = 13;
constexpr std::size_t kGreetingReservedSize = 10;
constexpr std::size_t kResponseFillerSize = 23;
// MariaDB's extended capabilities sit in the last 4 of those reserved bytes.
constexpr std::size_t kMariadbCapsOffsetInGreeting = 6;
constexpr std::size_t kMariadbCapsOffsetInResponse = 19;

bool carries_mariadb_caps(std::uint32_t capabilities) {
  return (capabilities & kClientMysql) == 0;
}

std::string_view strip_trailing_nul(std::string_view s) {
  if (!s.empty() && s.back() == '\0') s.remove_suffix(1);
  return s;
}

Error contains_nul(std::string_view field) {
  return make_error(std::string(field) + " contains a NUL byte");
}

// The 32 fixed bytes every response (and the SSLRequest) starts with.
struct FixedFields {
  std::uint32_t capabilities = 0;
  std::uint32_t max_packet_size = 0;
  std::uint8_t charset = 0;
  std::uint32_t mariadb_capabilities = 0;
};

Result<FixedFields> read_fixed_fields(PayloadReader& r) {
  auto caps = r.u32();
  auto max_packet = r.u32();
  auto charset = r.u8();
  auto filler = r.bytes(kResponseFillerSize);
  if (auto s = r.status(); !s) return s.error();
  if ((*caps & kClientProtocol41) == 0) {
    return make_error("client does not speak protocol 4.1 (HandshakeResponse320 is not supported)");
  }
  FixedFields f;
  f.capabilities = *caps;
  f.max_packet_size = *max_packet;
  f.charset = *charset;
  if (carries_mariadb_caps(f.capabilities)) {
    f.mariadb_capabilities =
        static_cast<std::uint32_t>(load_le(filler->data() + kMariadbCapsOffsetInResponse, 4));
  }
  return f;
}

void put_fixed_fields(std::string& out, const HandshakeResponse41& r, std::uint32_t capabilities) {
  put_u32(out, capabilities);
  put_u32(out, r.max_packet_size);
  put_u8(out, r.charset);
  out.append(kMariadbCapsOffsetInResponse, '\0');
  put_u32(out, carries_mariadb_caps(capabilities) ? r.mariadb_capabilities : 0);
}

Result<std::string_view> read_auth_response(PayloadReader& r, std::uint32_t caps) {
  if (caps & kClientPluginAuthLenencClientData) return r.lenenc_str();
  if (caps & kClientSecureConnection) {
    auto len = r.u8();
    if (!len) return len.error();
    return r.bytes(*len);
  }
  return r.cstr();
}

Result<ConnectAttributes> read_connect_attributes(PayloadReader& r) {
  auto block = r.lenenc_str();
  if (!block) return block.error();
  PayloadReader attrs(*block);
  ConnectAttributes out;
  while (!attrs.at_end()) {
    auto key = attrs.lenenc_str();
    auto value = attrs.lenenc_str();
    if (auto s = attrs.status(); !s) {
      return make_error("malformed connection attributes: " + s.error().message());
    }
    out.emplace_back(std::string(*key), std::string(*value));
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------- HandshakeV10

std::string build_handshake_v10(const HandshakeV10& g) {
  const std::string_view scramble = g.auth_plugin_data;
  std::string part1(scramble.substr(0, kScramblePart1Size));
  part1.resize(kScramblePart1Size, '\0');
  std::string part2(scramble.size() > kScramblePart1Size ? scramble.substr(kScramblePart1Size)
                                                         : std::string_view{});
  part2.push_back('\0');
  if (part2.size() < kScramblePart2MinSize) part2.resize(kScramblePart2MinSize, '\0');

  std::string out;
  put_u8(out, g.protocol_version);
  put_cstr(out, g.server_version);
  put_u32(out, g.connection_id);
  out.append(part1);
  put_u8(out, 0);  // filler
  put_u16(out, static_cast<std::uint16_t>(g.capabilities & 0xFFFF));
  put_u8(out, g.charset);
  put_u16(out, g.status_flags);
  put_u16(out, static_cast<std::uint16_t>(g.capabilities >> 16));
  const bool plugin_auth = (g.capabilities & kClientPluginAuth) != 0;
  put_u8(out, plugin_auth ? static_cast<std::uint8_t>(
                                std::min<std::size_t>(kScramblePart1Size + part2.size(), 0xFF))
                          : 0);
  out.append(kMariadbCapsOffsetInGreeting, '\0');
  put_u32(out, carries_mariadb_caps(g.capabilities) ? g.mariadb_capabilities : 0);
  if (g.capabilities & kClientSecureConnection) out.append(part2);
  if (plugin_auth) put_cstr(out, g.auth_plugin_name);
  return out;
}

Result<HandshakeV10> parse_handshake_v10(std::string_view payload) {
  PayloadReader r(payload);
  auto version = r.u8();
  if (!version) return make_error("empty greeting");
  if (*version == kErrHeader) return make_error("server sent an ERR packet instead of a greeting");
  if (*version != kProtocolVersion10) {
    return make_error("unsupported protocol version " + std::to_string(*version) +
                      " in greeting (want 10)");
  }
  HandshakeV10 g;
  g.protocol_version = *version;
  auto server_version = r.cstr();
  auto connection_id = r.u32();
  auto part1 = r.bytes(kScramblePart1Size);
  auto filler = r.u8();
  auto caps_low = r.u16();
  if (auto s = r.status(); !s) return make_error("malformed greeting: " + s.error().message());
  g.server_version = *server_version;
  g.connection_id = *connection_id;
  g.auth_plugin_data = *part1;
  g.capabilities = *caps_low;
  (void)filler;
  if (r.at_end()) return g;  // pre-4.1 servers stop here

  auto charset = r.u8();
  auto status = r.u16();
  auto caps_high = r.u16();
  auto plugin_data_len = r.u8();
  auto reserved = r.bytes(kGreetingReservedSize);
  if (auto s = r.status(); !s) return make_error("malformed greeting: " + s.error().message());
  g.charset = *charset;
  g.status_flags = *status;
  g.capabilities |= std::uint32_t{*caps_high} << 16;
  if (carries_mariadb_caps(g.capabilities)) {
    g.mariadb_capabilities =
        static_cast<std::uint32_t>(load_le(reserved->data() + kMariadbCapsOffsetInGreeting, 4));
  }
  if (g.capabilities & kClientSecureConnection) {
    const std::size_t declared =
        *plugin_data_len > kScramblePart1Size ? *plugin_data_len - kScramblePart1Size : 0;
    auto part2 = r.bytes(std::max(kScramblePart2MinSize, declared));
    if (!part2) return make_error("malformed greeting: " + part2.error().message());
    g.auth_plugin_data.append(strip_trailing_nul(*part2));
  }
  if (g.capabilities & kClientPluginAuth) {
    // MySQL before 5.5.10 left out the NUL (bug #59453): take the rest then.
    auto rest = r.rest();
    g.auth_plugin_name = rest.substr(0, rest.find('\0'));
  }
  return g;
}

// ---------------------------------------------------------------- HandshakeResponse41

Result<HandshakeResponse41> parse_handshake_response41(std::string_view payload) {
  if (is_ssl_request(payload)) {
    return make_error("got an SSLRequest where a HandshakeResponse41 was expected");
  }
  PayloadReader r(payload);
  auto fixed = read_fixed_fields(r);
  if (!fixed) return make_error("malformed handshake response: " + fixed.error().message());
  HandshakeResponse41 out;
  out.capabilities = fixed->capabilities;
  out.max_packet_size = fixed->max_packet_size;
  out.charset = fixed->charset;
  out.mariadb_capabilities = fixed->mariadb_capabilities;

  auto username = r.cstr();
  auto auth = read_auth_response(r, out.capabilities);
  if (auto s = r.status(); !s) {
    return make_error("malformed handshake response: " + s.error().message());
  }
  out.username = *username;
  out.auth_response = *auth;
  if (out.capabilities & kClientConnectWithDb) {
    auto db = r.cstr();
    if (!db) return make_error("malformed handshake response: database: " + db.error().message());
    out.database = *db;
  }
  if ((out.capabilities & kClientPluginAuth) && !r.at_end()) {
    auto plugin = r.cstr();
    if (!plugin) {
      return make_error("malformed handshake response: plugin name: " + plugin.error().message());
    }
    out.auth_plugin_name = *plugin;
  }
  if ((out.capabilities & kClientConnectAttrs) && !r.at_end()) {
    auto attrs = read_connect_attributes(r);
    if (!attrs) return make_error("malformed handshake response: " + attrs.error().message());
    out.attributes = std::move(*attrs);
  }
  return out;
}

Result<std::string> build_handshake_response41(const HandshakeResponse41& resp) {
  const std::uint32_t caps = resp.capabilities | kClientProtocol41;
  if (resp.username.find('\0') != std::string::npos) return contains_nul("username");
  std::string out;
  put_fixed_fields(out, resp, caps);
  put_cstr(out, resp.username);
  if (caps & kClientPluginAuthLenencClientData) {
    put_lenenc_str(out, resp.auth_response);
  } else if (caps & kClientSecureConnection) {
    if (resp.auth_response.size() > 0xFF) {
      return make_error("auth response of " + std::to_string(resp.auth_response.size()) +
                        " bytes needs CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA");
    }
    put_u8(out, static_cast<std::uint8_t>(resp.auth_response.size()));
    out.append(resp.auth_response);
  } else {
    if (resp.auth_response.find('\0') != std::string::npos) return contains_nul("auth response");
    put_cstr(out, resp.auth_response);
  }
  if (caps & kClientConnectWithDb) {
    if (resp.database.find('\0') != std::string::npos) return contains_nul("database");
    put_cstr(out, resp.database);
  }
  if (caps & kClientPluginAuth) {
    if (resp.auth_plugin_name.find('\0') != std::string::npos) return contains_nul("plugin name");
    put_cstr(out, resp.auth_plugin_name);
  }
  if (caps & kClientConnectAttrs) {
    std::string attrs;
    for (const auto& [key, value] : resp.attributes) {
      put_lenenc_str(attrs, key);
      put_lenenc_str(attrs, value);
    }
    put_lenenc_str(out, attrs);
  }
  return out;
}

// ---------------------------------------------------------------- SSLRequest

bool is_ssl_request(std::string_view payload) {
  return payload.size() == kSslRequestSize &&
         (static_cast<std::uint32_t>(load_le(payload.data(), 4)) & kClientSsl) != 0;
}

Result<HandshakeResponse41> parse_ssl_request(std::string_view payload) {
  if (!is_ssl_request(payload)) {
    return make_error("not an SSLRequest (" + std::to_string(payload.size()) + " bytes)");
  }
  PayloadReader r(payload);
  auto fixed = read_fixed_fields(r);
  if (!fixed) return make_error("malformed SSLRequest: " + fixed.error().message());
  HandshakeResponse41 out;
  out.capabilities = fixed->capabilities;
  out.max_packet_size = fixed->max_packet_size;
  out.charset = fixed->charset;
  out.mariadb_capabilities = fixed->mariadb_capabilities;
  return out;
}

std::string build_ssl_request(const HandshakeResponse41& response) {
  std::string out;
  put_fixed_fields(out, response, response.capabilities | kClientSsl | kClientProtocol41);
  return out;
}

// ---------------------------------------------------------------- auth exchange

std::string build_auth_switch_request(const AuthSwitchRequest& request) {
  std::string out;
  put_u8(out, kEofHeader);
  put_cstr(out, request.plugin_name);
  out.append(request.plugin_data);
  return out;
}

Result<AuthSwitchRequest> parse_auth_switch_request(std::string_view payload) {
  PayloadReader r(payload);
  auto header = r.u8();
  if (!header || *header != kEofHeader) return make_error("not an AuthSwitchRequest");
  if (r.at_end()) {
    return make_error("server asked for mysql_old_password (pre-4.1 auth), which is not supported");
  }
  auto plugin = r.cstr();
  if (!plugin) return make_error("malformed AuthSwitchRequest: " + plugin.error().message());
  AuthSwitchRequest out;
  out.plugin_name = *plugin;
  out.plugin_data = r.rest();
  return out;
}

std::string build_auth_more_data(std::string_view data) {
  std::string out;
  put_u8(out, kAuthMoreDataHeader);
  out.append(data);
  return out;
}

Result<std::string_view> parse_auth_more_data(std::string_view payload) {
  if (payload.empty() || static_cast<std::uint8_t>(payload[0]) != kAuthMoreDataHeader) {
    return make_error("not an AuthMoreData packet");
  }
  return payload.substr(1);
}

Result<AuthPacketKind> classify_auth_packet(std::string_view payload) {
  if (payload.empty()) return make_error("empty packet during authentication");
  switch (static_cast<std::uint8_t>(payload[0])) {
    case kOkHeader:
      return AuthPacketKind::Ok;
    case kErrHeader:
      return AuthPacketKind::Err;
    case kEofHeader:
      return AuthPacketKind::AuthSwitchRequest;
    case kAuthMoreDataHeader:
      return AuthPacketKind::AuthMoreData;
    default:
      return make_error("unexpected packet header " +
                        std::to_string(static_cast<std::uint8_t>(payload[0])) +
                        " during authentication");
  }
}

}  // namespace shardgate::mysql
