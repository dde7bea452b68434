// Unit tests of the MySQL connection phase: greeting, handshake response,
// SSLRequest, AuthSwitchRequest and AuthMoreData. The captured packets come
// from MariaDB 10.11.19 and its client (libmariadb 3.3.20) on loopback, recorded
// once through a relay and pasted here as hex: no server is needed to run them.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>

#include "proxy/protocol/mysql/constants.h"
#include "proxy/protocol/mysql/handshake.h"
#include "proxy/protocol/mysql/packet.h"
#include "tests/unit/protocol/hex.h"

namespace shardgate::mysql {
namespace {

using namespace std::string_literals;
using namespace std::string_view_literals;

using shardgate::testing::from_hex;

// Whole packets (header included) as sent on the wire.
const std::string kGreetingPacket = from_hex(
    "680000000a352e352e352d31302e31312e31392d4d6172696144422d302b646562313275312d6c6f67000500"
    "00003d32225359493f4100fef7080200ff81150000000000001d000000696c622942504a612b513658006d79"
    "73716c5f6e61746976655f70617373776f726400");

// The client's reply to it: user app, password "secret", database shop.
const std::string kResponsePacket = from_hex(
    "d40000018ca2bf000000100021000000000000000000000000000000000000001d0000006170700014e03cfb"
    "658833b6dbe819a3a15c1a925f7f4fe6e873686f70006d7973716c5f6e61746976655f70617373776f726400"
    "7f035f6f73054c696e75780c5f636c69656e745f6e616d650a6c69626d617269616462045f70696405313736"
    "34320f5f636c69656e745f76657273696f6e06332e332e3230095f706c6174666f726d067838365f36340c70"
    "726f6772616d5f6e616d65056d7973716c0c5f7365727665725f686f7374093132372e302e302e31");

// Another client reply, without a database (no CLIENT_CONNECT_WITH_DB).
const std::string kResponseNoDbPacket = from_hex(
    "cf00000184a2bf000000100021000000000000000000000000000000000000001d0000006170700014b98222"
    "22ff694fb61a3a7633bf5e87a9ffbef1ed6d7973716c5f6e61746976655f70617373776f7264007f035f6f73"
    "054c696e75780c5f636c69656e745f6e616d650a6c69626d617269616462045f7069640531383035340f5f63"
    "6c69656e745f76657273696f6e06332e332e3230095f706c6174666f726d067838365f36340c70726f677261"
    "6d5f6e616d65056d7973716c0c5f7365727665725f686f7374093132372e302e302e31");

std::string payload_of(const std::string& packet, std::uint8_t expected_seq) {
  const PacketDecode d = decode_packet(packet, 1u << 24);
  EXPECT_EQ(d.status, DecodeStatus::Frame) << d.error;
  EXPECT_EQ(d.size, packet.size());
  EXPECT_EQ(d.seq, expected_seq);
  return std::string(d.payload);
}

constexpr std::uint32_t kModernClientCaps =
    kClientLongPassword | kClientFoundRows | kClientLongFlag | kClientProtocol41 |
    kClientTransactions | kClientSecureConnection | kClientMultiResults | kClientPluginAuth |
    kClientPluginAuthLenencClientData | kClientSessionTrack;

// ---------------------------------------------------------------- greeting

TEST(MysqlGreeting, ParsesCapturedMariadbGreeting) {
  const std::string payload = payload_of(kGreetingPacket, 0);
  auto g = parse_handshake_v10(payload);
  ASSERT_TRUE(g.has_value()) << g.error().message();
  EXPECT_EQ(g->protocol_version, 10);
  EXPECT_EQ(g->server_version, "5.5.5-10.11.19-MariaDB-0+deb12u1-log");
  EXPECT_EQ(g->connection_id, 5u);
  EXPECT_EQ(g->auth_plugin_data, from_hex("3d32225359493f41696c622942504a612b513658"));
  EXPECT_EQ(g->auth_plugin_data.size(), kScrambleSize);
  EXPECT_EQ(g->capabilities, 0x81fff7feu);
  EXPECT_EQ(g->capabilities & kClientMysql, 0u);  // MariaDB: extended caps follow
  EXPECT_NE(g->capabilities & kClientPluginAuth, 0u);
  EXPECT_NE(g->capabilities & kClientSessionTrack, 0u);
  EXPECT_EQ(g->charset, 8);
  EXPECT_EQ(g->status_flags, kServerStatusAutocommit);
  EXPECT_EQ(g->mariadb_capabilities, kMariadbClientProgress | kMariadbClientStmtBulkOperations |
                                         kMariadbClientExtendedMetadata |
                                         kMariadbClientCacheMetadata);
  EXPECT_EQ(g->auth_plugin_name, "mysql_native_password");
}

TEST(MysqlGreeting, RebuildsCapturedGreetingByteForByte) {
  const std::string payload = payload_of(kGreetingPacket, 0);
  auto g = parse_handshake_v10(payload);
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(build_handshake_v10(*g), payload);
  EXPECT_EQ(packetize(build_handshake_v10(*g), 0), kGreetingPacket);
}

TEST(MysqlGreeting, MysqlServerRoundTripWithoutMariadbCaps) {
  HandshakeV10 g;
  g.server_version = "8.0.36";
  g.connection_id = 0xA1B2C3D4;
  g.auth_plugin_data = "abcdefghijklmnopqrst";
  g.capabilities = kModernClientCaps | kClientConnectWithDb | kClientDeprecateEof;
  g.charset = 255;
  g.status_flags = kServerStatusAutocommit | kServerStatusInTrans;
  g.mariadb_capabilities = 0x1F;  // not carried: kClientMysql is set
  g.auth_plugin_name = "caching_sha2_password";
  auto parsed = parse_handshake_v10(build_handshake_v10(g));
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message();
  EXPECT_EQ(parsed->server_version, g.server_version);
  EXPECT_EQ(parsed->connection_id, g.connection_id);
  EXPECT_EQ(parsed->auth_plugin_data, g.auth_plugin_data);
  EXPECT_EQ(parsed->capabilities, g.capabilities);
  EXPECT_EQ(parsed->charset, 255);
  EXPECT_EQ(parsed->status_flags, g.status_flags);
  EXPECT_EQ(parsed->mariadb_capabilities, 0u);
  EXPECT_EQ(parsed->auth_plugin_name, "caching_sha2_password");
}

TEST(MysqlGreeting, WithoutPluginAuth) {
  HandshakeV10 g;
  g.server_version = "5.1.73";
  g.auth_plugin_data = "01234567890123456789";
  g.capabilities = kClientLongPassword | kClientProtocol41 | kClientSecureConnection;
  const std::string payload = build_handshake_v10(g);
  auto parsed = parse_handshake_v10(payload);
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message();
  EXPECT_EQ(parsed->auth_plugin_data, g.auth_plugin_data);
  EXPECT_TRUE(parsed->auth_plugin_name.empty());
}

TEST(MysqlGreeting, PluginNameWithoutNul) {
  // MySQL before 5.5.10 did not terminate the plugin name.
  std::string payload = payload_of(kGreetingPacket, 0);
  payload.pop_back();
  auto g = parse_handshake_v10(payload);
  ASSERT_TRUE(g.has_value()) << g.error().message();
  EXPECT_EQ(g->auth_plugin_name, "mysql_native_password");
}

TEST(MysqlGreeting, OldServerStopsAfterLowerCapabilities) {
  const std::string payload =
      "\x0a"
      "5.0.1\0"s +
      "\x01\x00\x00\x00"s + "ABCDEFGH" + "\0"s + "\x00\x02"s;
  auto g = parse_handshake_v10(payload);
  ASSERT_TRUE(g.has_value()) << g.error().message();
  EXPECT_EQ(g->server_version, "5.0.1");
  EXPECT_EQ(g->auth_plugin_data, "ABCDEFGH");
  EXPECT_EQ(g->capabilities, 0x0200u);
}

TEST(MysqlGreeting, RejectsOtherProtocolsAndErrors) {
  EXPECT_FALSE(parse_handshake_v10("").has_value());
  EXPECT_FALSE(parse_handshake_v10("\x09"
                                   "5.0\0"s)
                   .has_value());
  auto err = parse_handshake_v10("\xff\x10\x04Too many connections"s);
  ASSERT_FALSE(err.has_value());
  EXPECT_NE(err.error().message().find("ERR"), std::string::npos) << err.error().message();
}

TEST(MysqlGreeting, TruncatedGreetingNeverCrashes) {
  const std::string payload = payload_of(kGreetingPacket, 0);
  for (std::size_t n = 0; n < payload.size(); ++n) {
    // Some prefixes are valid old-style greetings; the rest must be errors.
    auto g = parse_handshake_v10(std::string_view(payload).substr(0, n));
    if (g.has_value()) {
      EXPECT_LE(g->auth_plugin_data.size(), kScrambleSize) << n;
    }
  }
  // Cut inside the reserved bytes or part 2 of the scramble: an error.
  EXPECT_FALSE(parse_handshake_v10(std::string_view(payload).substr(0, 65)).has_value());
  EXPECT_FALSE(parse_handshake_v10(std::string_view(payload).substr(0, 75)).has_value());
}

// ---------------------------------------------------------------- handshake response

TEST(MysqlHandshakeResponse, ParsesCapturedResponse) {
  const std::string payload = payload_of(kResponsePacket, 1);
  auto r = parse_handshake_response41(payload);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->capabilities, 0x00bfa28cu);
  EXPECT_NE(r->capabilities & kClientConnectWithDb, 0u);
  EXPECT_NE(r->capabilities & kClientPluginAuthLenencClientData, 0u);
  EXPECT_EQ(r->max_packet_size, 1u << 20);
  EXPECT_EQ(r->charset, 0x21);
  EXPECT_EQ(r->mariadb_capabilities, 0x1du);
  EXPECT_EQ(r->username, "app");
  EXPECT_EQ(r->auth_response, from_hex("e03cfb658833b6dbe819a3a15c1a925f7f4fe6e8"));
  EXPECT_EQ(r->database, "shop");
  EXPECT_EQ(r->auth_plugin_name, "mysql_native_password");
  const ConnectAttributes expected = {{"_os", "Linux"},
                                      {"_client_name", "libmariadb"},
                                      {"_pid", "17642"},
                                      {"_client_version", "3.3.20"},
                                      {"_platform", "x86_64"},
                                      {"program_name", "mysql"},
                                      {"_server_host", "127.0.0.1"}};
  EXPECT_EQ(r->attributes, expected);
  EXPECT_FALSE(is_ssl_request(payload));
}

TEST(MysqlHandshakeResponse, RebuildsCapturedResponsesByteForByte) {
  for (const std::string* packet : {&kResponsePacket, &kResponseNoDbPacket}) {
    const std::string payload = payload_of(*packet, 1);
    auto r = parse_handshake_response41(payload);
    ASSERT_TRUE(r.has_value()) << r.error().message();
    auto rebuilt = build_handshake_response41(*r);
    ASSERT_TRUE(rebuilt.has_value()) << rebuilt.error().message();
    EXPECT_EQ(*rebuilt, payload);
  }
}

TEST(MysqlHandshakeResponse, CapturedResponseWithoutDatabase) {
  auto r = parse_handshake_response41(payload_of(kResponseNoDbPacket, 1));
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->capabilities & kClientConnectWithDb, 0u);
  EXPECT_TRUE(r->database.empty());
  EXPECT_EQ(r->username, "app");
  EXPECT_EQ(r->auth_plugin_name, "mysql_native_password");
  EXPECT_EQ(r->attributes.size(), 7u);
}

// Round trips over the optional parts and the three auth-response forms.
struct ResponseCase {
  const char* name;
  std::uint32_t caps;
};

class MysqlResponseRoundTrip : public ::testing::TestWithParam<ResponseCase> {};

TEST_P(MysqlResponseRoundTrip, BuildThenParse) {
  HandshakeResponse41 in;
  in.capabilities = GetParam().caps;
  in.max_packet_size = 16u << 20;
  in.charset = 45;
  in.mariadb_capabilities = kMariadbClientStmtBulkOperations;
  in.username = "svc_orders";
  // NUL-free so the NUL-terminated form can carry it too.
  in.auth_response = "0123456789abcdefghij";
  in.database = "orders";
  in.auth_plugin_name = "mysql_native_password";
  in.attributes = {{"_client_name", "shardgate"}, {"empty", ""}};
  auto wire = build_handshake_response41(in);
  ASSERT_TRUE(wire.has_value()) << wire.error().message();
  auto out = parse_handshake_response41(*wire);
  ASSERT_TRUE(out.has_value()) << out.error().message();

  const std::uint32_t caps = in.capabilities | kClientProtocol41;
  EXPECT_EQ(out->capabilities, caps);
  EXPECT_EQ(out->max_packet_size, in.max_packet_size);
  EXPECT_EQ(out->charset, in.charset);
  EXPECT_EQ(out->mariadb_capabilities,
            (caps & kClientMysql) ? 0u : kMariadbClientStmtBulkOperations);
  EXPECT_EQ(out->username, in.username);
  EXPECT_EQ(out->auth_response, in.auth_response);
  EXPECT_EQ(out->database, (caps & kClientConnectWithDb) ? in.database : "");
  EXPECT_EQ(out->auth_plugin_name, (caps & kClientPluginAuth) ? in.auth_plugin_name : "");
  EXPECT_EQ(out->attributes, (caps & kClientConnectAttrs) ? in.attributes : ConnectAttributes{});
}

INSTANTIATE_TEST_SUITE_P(
    Flags, MysqlResponseRoundTrip,
    ::testing::Values(ResponseCase{"Minimal", kClientProtocol41 | kClientSecureConnection},
                      ResponseCase{"NulTerminatedAuth", kClientProtocol41},
                      ResponseCase{"LenencAuth", kModernClientCaps},
                      ResponseCase{"WithDb", kModernClientCaps | kClientConnectWithDb},
                      ResponseCase{"WithDbNoPlugin",
                                   (kModernClientCaps | kClientConnectWithDb) & ~kClientPluginAuth},
                      ResponseCase{"WithAttrs", kModernClientCaps | kClientConnectAttrs},
                      ResponseCase{"Everything",
                                   kModernClientCaps | kClientConnectWithDb | kClientConnectAttrs},
                      ResponseCase{"MariadbEverything", (kModernClientCaps | kClientConnectWithDb |
                                                         kClientConnectAttrs) &
                                                            ~kClientMysql}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(MysqlHandshakeResponse, SecureConnectionAuthOf255BytesNeedsLenenc) {
  HandshakeResponse41 r;
  r.capabilities = kClientProtocol41 | kClientSecureConnection;
  r.auth_response = std::string(255, 'a');
  EXPECT_TRUE(build_handshake_response41(r).has_value());
  r.auth_response.push_back('a');
  EXPECT_FALSE(build_handshake_response41(r).has_value());
  r.capabilities |= kClientPluginAuthLenencClientData;
  auto wire = build_handshake_response41(r);
  ASSERT_TRUE(wire.has_value());
  auto parsed = parse_handshake_response41(*wire);
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message();
  EXPECT_EQ(parsed->auth_response.size(), 256u);
}

TEST(MysqlHandshakeResponse, BuildRefusesNulInNulTerminatedFields) {
  HandshakeResponse41 r;
  r.capabilities = kClientProtocol41 | kClientSecureConnection | kClientConnectWithDb;
  r.username = "a\0b"s;
  EXPECT_FALSE(build_handshake_response41(r).has_value());
  r.username = "ab";
  r.database = "x\0"s;
  EXPECT_FALSE(build_handshake_response41(r).has_value());
  r.database = "x";
  r.capabilities = kClientProtocol41;  // NUL-terminated auth response
  r.auth_response = "\x01\x00\x02"s;
  EXPECT_FALSE(build_handshake_response41(r).has_value());
}

TEST(MysqlHandshakeResponse, RefusesPre41Protocol) {
  std::string payload = payload_of(kResponsePacket, 1);
  payload[1] = static_cast<char>(payload[1] & ~0x02);  // clear CLIENT_PROTOCOL_41 (bit 9)
  auto r = parse_handshake_response41(payload);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("4.1"), std::string::npos) << r.error().message();
}

TEST(MysqlHandshakeResponse, MissingDatabaseTerminatorIsError) {
  HandshakeResponse41 r;
  r.capabilities = kModernClientCaps | kClientConnectWithDb;
  r.username = "u";
  r.database = "db";
  auto wire = build_handshake_response41(r);
  ASSERT_TRUE(wire.has_value());
  // Cut the database's NUL and everything after it.
  const std::string cut = wire->substr(0, wire->find("db") + 2);
  EXPECT_FALSE(parse_handshake_response41(cut).has_value());
  // Ending right after the database is fine: the plugin name is optional there.
  auto no_plugin = parse_handshake_response41(cut + "\0"s);
  ASSERT_TRUE(no_plugin.has_value()) << no_plugin.error().message();
  EXPECT_EQ(no_plugin->database, "db");
  EXPECT_TRUE(no_plugin->auth_plugin_name.empty());
}

TEST(MysqlHandshakeResponse, MalformedAttributesAreError) {
  HandshakeResponse41 r;
  r.capabilities = kModernClientCaps | kClientConnectAttrs;
  r.username = "u";
  r.attributes = {{"k", "v"}};
  auto wire = build_handshake_response41(r);
  ASSERT_TRUE(wire.has_value());
  // The attribute block says 4 bytes: "\x01k\x01v". Make the value claim 5.
  std::string bad = *wire;
  bad[bad.size() - 2] = '\x05';
  EXPECT_FALSE(parse_handshake_response41(bad).has_value());
  // A block longer than the packet.
  bad = *wire;
  bad[bad.size() - 5] = '\x09';
  EXPECT_FALSE(parse_handshake_response41(bad).has_value());
}

TEST(MysqlHandshakeResponse, TruncatedOrGarbageNeverCrashes) {
  const std::string payload = payload_of(kResponsePacket, 1);
  for (std::size_t n = 0; n < payload.size(); ++n) {
    (void)parse_handshake_response41(std::string_view(payload).substr(0, n));
  }
  // Cuts inside the fixed part, the username and the auth response are errors.
  for (const std::size_t n : {0, 10, 31, 32, 34, 36, 40, 50}) {
    EXPECT_FALSE(parse_handshake_response41(std::string_view(payload).substr(0, n)).has_value())
        << n;
  }
  std::mt19937 rng(42);
  for (int i = 0; i < 2000; ++i) {
    std::string junk(rng() % 96, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    if (junk.size() > 4 && (i % 2)) junk[1] = static_cast<char>(junk[1] | 0x02);  // claim 4.1
    (void)parse_handshake_response41(junk);
    (void)parse_handshake_v10(junk);
    (void)parse_auth_switch_request(junk);
    (void)parse_ssl_request(junk);
  }
}

// ---------------------------------------------------------------- SSLRequest

TEST(MysqlSslRequest, BuildDetectParse) {
  HandshakeResponse41 r;
  r.capabilities = kModernClientCaps & ~kClientMysql;
  r.max_packet_size = 1u << 30;
  r.charset = 33;
  r.mariadb_capabilities = kMariadbClientProgress;
  r.username = "ignored";
  const std::string wire = build_ssl_request(r);
  ASSERT_EQ(wire.size(), kSslRequestSize);
  EXPECT_TRUE(is_ssl_request(wire));
  auto parsed = parse_ssl_request(wire);
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message();
  EXPECT_EQ(parsed->capabilities, r.capabilities | kClientSsl);
  EXPECT_EQ(parsed->max_packet_size, r.max_packet_size);
  EXPECT_EQ(parsed->charset, 33);
  EXPECT_EQ(parsed->mariadb_capabilities, kMariadbClientProgress);
  EXPECT_TRUE(parsed->username.empty());
  // Where a full response is expected, an SSLRequest is an error.
  EXPECT_FALSE(parse_handshake_response41(wire).has_value());
}

TEST(MysqlSslRequest, DetectionNeedsSizeAndFlag) {
  HandshakeResponse41 r;
  r.capabilities = kModernClientCaps;
  std::string wire = build_ssl_request(r);
  wire[1] = static_cast<char>(wire[1] & ~0x08);  // clear CLIENT_SSL (bit 11)
  EXPECT_FALSE(is_ssl_request(wire));
  EXPECT_FALSE(parse_ssl_request(wire).has_value());
  EXPECT_FALSE(is_ssl_request(build_ssl_request(r) + "x"));
  EXPECT_FALSE(is_ssl_request(build_ssl_request(r).substr(0, 31)));
}

// ---------------------------------------------------------------- auth exchange

TEST(MysqlAuthSwitch, RoundTripKeepsDataVerbatim) {
  AuthSwitchRequest in{"mysql_native_password", "abcdefghijklmnopqrst\0"s};
  const std::string wire = build_auth_switch_request(in);
  EXPECT_EQ(wire,
            "\xfe"
            "mysql_native_password\0abcdefghijklmnopqrst\0"s);
  auto out = parse_auth_switch_request(wire);
  ASSERT_TRUE(out.has_value()) << out.error().message();
  EXPECT_EQ(out->plugin_name, in.plugin_name);
  EXPECT_EQ(out->plugin_data, in.plugin_data);
  auto kind = classify_auth_packet(wire);
  ASSERT_TRUE(kind.has_value());
  EXPECT_EQ(*kind, AuthPacketKind::AuthSwitchRequest);
}

TEST(MysqlAuthSwitch, EmptyDataAndErrors) {
  auto no_data = parse_auth_switch_request(
      "\xfe"
      "dialog\0"s);
  ASSERT_TRUE(no_data.has_value());
  EXPECT_EQ(no_data->plugin_name, "dialog");
  EXPECT_TRUE(no_data->plugin_data.empty());
  auto old = parse_auth_switch_request("\xfe"sv);
  ASSERT_FALSE(old.has_value());
  EXPECT_NE(old.error().message().find("old"), std::string::npos) << old.error().message();
  EXPECT_FALSE(parse_auth_switch_request("\xfe"
                                         "no-terminator"sv)
                   .has_value());
  EXPECT_FALSE(parse_auth_switch_request("\x01"
                                         "x\0"s)
                   .has_value());
  EXPECT_FALSE(parse_auth_switch_request("").has_value());
}

TEST(MysqlAuthMoreData, RoundTripAndErrors) {
  const std::string wire = build_auth_more_data("\x03");
  EXPECT_EQ(wire, "\x01\x03");
  auto data = parse_auth_more_data(wire);
  ASSERT_TRUE(data.has_value());
  EXPECT_EQ(*data, "\x03");
  EXPECT_EQ(*parse_auth_more_data("\x01"), "");
  EXPECT_FALSE(parse_auth_more_data("").has_value());
  EXPECT_FALSE(parse_auth_more_data("\x02\x03").has_value());
}

TEST(MysqlAuthPacket, ClassifiesByFirstByte) {
  EXPECT_EQ(*classify_auth_packet("\x00\x00\x00\x02\x00\x00\x00"sv), AuthPacketKind::Ok);
  EXPECT_EQ(*classify_auth_packet("\xff\x15\x04"sv), AuthPacketKind::Err);
  EXPECT_EQ(*classify_auth_packet("\x01\x04"sv), AuthPacketKind::AuthMoreData);
  EXPECT_EQ(*classify_auth_packet("\xfe"sv), AuthPacketKind::AuthSwitchRequest);
  EXPECT_FALSE(classify_auth_packet("").has_value());
  EXPECT_FALSE(classify_auth_packet("\x0a").has_value());
}

}  // namespace
}  // namespace shardgate::mysql
