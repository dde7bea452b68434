// Unit tests of mysql_native_password and caching_sha2_password.
//
// Expected values were computed independently with Python's hashlib:
//   sha1 = lambda b: hashlib.sha1(b).digest()
//   native = bytes(a ^ b for a, b in zip(sha1(pw), sha1(nonce + sha1(sha1(pw)))))
//   sha256 = lambda b: hashlib.sha256(b).digest()
//   sha2 = bytes(a ^ b for a, b in zip(sha256(pw), sha256(sha256(sha256(pw)) + nonce)))
// and the native scramble of the captured login was also accepted by a real
// MariaDB 10.11 server, whose mysql.user holds the "*14E6..." hash below.
#include "proxy/protocol/auth/mysql_auth.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>

#include "tests/unit/protocol/hex.h"

namespace shardgate::auth {
namespace {

using namespace std::string_literals;
using namespace std::string_view_literals;

using shardgate::testing::from_hex;

// 0x01 .. 0x14
const std::string kFixedNonce = from_hex("0102030405060708090a0b0c0d0e0f1011121314");
// The greeting nonce and the client's reply from a captured MariaDB login
// (password "secret").
const std::string kCapturedNonce = from_hex("3d32225359493f41696c622942504a612b513658");
const std::string kCapturedResponse = from_hex("e03cfb658833b6dbe819a3a15c1a925f7f4fe6e8");
constexpr std::string_view kSecretHash = "*14E65567ABDB5135D0CFD9A70B3032C179A49EE7";

// ---------------------------------------------------------------- nonces

TEST(MysqlNonce, TwentyBytesWithoutNulOrDollar) {
  const std::string a = make_mysql_nonce();
  const std::string b = make_mysql_nonce();
  ASSERT_EQ(a.size(), kMysqlNonceSize);
  EXPECT_NE(a, b);
  for (const char c : a + b) {
    EXPECT_NE(c, '\0');
    EXPECT_NE(c, '$');
    EXPECT_LT(static_cast<unsigned char>(c), 0x80);
  }
}

TEST(MysqlNonce, FromPluginData) {
  EXPECT_EQ(*nonce_from_plugin_data(kFixedNonce), kFixedNonce);
  EXPECT_EQ(*nonce_from_plugin_data(kFixedNonce + '\0'), kFixedNonce);
  EXPECT_FALSE(nonce_from_plugin_data(kFixedNonce.substr(0, 19)).has_value());
  EXPECT_FALSE(nonce_from_plugin_data(kFixedNonce + 'x').has_value());
  EXPECT_FALSE(nonce_from_plugin_data("").has_value());
}

// ---------------------------------------------------------------- mysql_native_password

TEST(MysqlNativePassword, ScrambleMatchesPythonVector) {
  EXPECT_EQ(native_password_scramble("secret", kFixedNonce),
            from_hex("b32bb3a583e1340c0a1108d58b1be49781ad8c2f"));
}

TEST(MysqlNativePassword, ScrambleMatchesCapturedLogin) {
  EXPECT_EQ(native_password_scramble("secret", kCapturedNonce), kCapturedResponse);
}

TEST(MysqlNativePassword, EmptyPasswordSendsNothing) {
  EXPECT_TRUE(native_password_scramble("", kFixedNonce).empty());
}

TEST(MysqlNativePassword, HashMatchesMysqlUser) {
  EXPECT_EQ(format_native_password_hash(native_password_verifier("secret")), kSecretHash);
  auto parsed = parse_native_password_hash(kSecretHash);
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message();
  EXPECT_EQ(parsed->stage2, native_password_verifier("secret").stage2);
  EXPECT_FALSE(parsed->empty_password);
  // Lower-case hex is accepted, and formats back upper-case.
  std::string lower(kSecretHash);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto from_lower = parse_native_password_hash(lower);
  ASSERT_TRUE(from_lower.has_value());
  EXPECT_EQ(format_native_password_hash(*from_lower), kSecretHash);
}

TEST(MysqlNativePassword, MalformedHashesAreErrors) {
  EXPECT_FALSE(parse_native_password_hash("14E65567ABDB5135D0CFD9A70B3032C179A49EE7").has_value());
  EXPECT_FALSE(parse_native_password_hash("*14E65567ABDB5135D0CFD9A70B3032C179A49EE").has_value());
  EXPECT_FALSE(parse_native_password_hash("*14E65567ABDB5135D0CFD9A70B3032C179A49EEG").has_value());
  EXPECT_FALSE(parse_native_password_hash("#14E65567ABDB5135D0CFD9A70B3032C179A49EE7").has_value());
  auto empty = parse_native_password_hash("");
  ASSERT_TRUE(empty.has_value());
  EXPECT_TRUE(empty->empty_password);
  EXPECT_EQ(format_native_password_hash(*empty), "");
}

TEST(MysqlNativePassword, VerifierFromConfiguration) {
  auto hashed = native_verifier_for(kSecretHash);
  ASSERT_TRUE(hashed.has_value());
  EXPECT_TRUE(verify_native_password(*hashed, kCapturedNonce, kCapturedResponse));
  auto plain = native_verifier_for("secret");
  ASSERT_TRUE(plain.has_value());
  EXPECT_TRUE(verify_native_password(*plain, kCapturedNonce, kCapturedResponse));
  // A truncated paste of a hash is an error, not a 41-character password.
  EXPECT_FALSE(native_verifier_for("*14E65567ABDB5135D0CFD9A70B3032C179A49EEZ").has_value());
  auto none = native_verifier_for("");
  ASSERT_TRUE(none.has_value());
  EXPECT_TRUE(none->empty_password);
}

TEST(MysqlNativePassword, ServerAcceptsOnlyTheRightScramble) {
  const NativePasswordVerifier v = native_password_verifier("secret");
  EXPECT_TRUE(verify_native_password(v, kCapturedNonce, kCapturedResponse));
  EXPECT_TRUE(
      verify_native_password(v, kFixedNonce, native_password_scramble("secret", kFixedNonce)));
  EXPECT_FALSE(verify_native_password(v, kFixedNonce, kCapturedResponse));  // other nonce
  EXPECT_FALSE(
      verify_native_password(v, kFixedNonce, native_password_scramble("Secret", kFixedNonce)));
  EXPECT_FALSE(verify_native_password(v, kFixedNonce, ""));
  EXPECT_FALSE(verify_native_password(v, kFixedNonce, kCapturedResponse.substr(0, 19)));
  EXPECT_FALSE(verify_native_password(v, kFixedNonce, kCapturedResponse + "x"));
}

TEST(MysqlNativePassword, EmptyPasswordAccount) {
  const NativePasswordVerifier v = native_password_verifier("");
  EXPECT_TRUE(v.empty_password);
  EXPECT_TRUE(verify_native_password(v, kFixedNonce, ""));
  EXPECT_TRUE(verify_native_password(v, kFixedNonce, "\0"sv));
  EXPECT_FALSE(verify_native_password(v, kFixedNonce, native_password_scramble("x", kFixedNonce)));
}

// ---------------------------------------------------------------- caching_sha2_password

const std::string kSha2Expected =
    from_hex("746ebe205d56a0707acb3e796e834e0dd7b1d61743b26bd5202c7a623230c7c9");

TEST(MysqlCachingSha2, ScrambleMatchesPythonVector) {
  EXPECT_EQ(caching_sha2_scramble("secret", kFixedNonce), kSha2Expected);
  EXPECT_TRUE(caching_sha2_scramble("", kFixedNonce).empty());
}

TEST(MysqlCachingSha2, ServerVerifiesWithPasswordOrStoredDigest) {
  EXPECT_TRUE(verify_caching_sha2_scramble("secret", kFixedNonce, kSha2Expected));
  EXPECT_FALSE(verify_caching_sha2_scramble("secreT", kFixedNonce, kSha2Expected));
  EXPECT_FALSE(verify_caching_sha2_scramble("secret", kCapturedNonce, kSha2Expected));
  EXPECT_FALSE(verify_caching_sha2_scramble("secret", kFixedNonce, kSha2Expected.substr(1)));
  // SHA256(SHA256("secret")), what MySQL keeps in its cache.
  const std::string stage2 =
      from_hex("3881219d087dd9c634373fd33dfa33a2cb6bfc6c520b64b8bb60ef2ceb534ae7");
  Sha256Digest digest{};
  std::copy(stage2.begin(), stage2.end(), digest.begin());
  EXPECT_TRUE(verify_caching_sha2_scramble(digest, kFixedNonce, kSha2Expected));
  digest[0] ^= 1;
  EXPECT_FALSE(verify_caching_sha2_scramble(digest, kFixedNonce, kSha2Expected));
  // Empty password: only an empty response.
  EXPECT_TRUE(verify_caching_sha2_scramble("", kFixedNonce, ""));
  EXPECT_FALSE(verify_caching_sha2_scramble("", kFixedNonce, kSha2Expected));
}

TEST(MysqlCachingSha2Server, FastAuthSuccess) {
  CachingSha2Server server("secret", kFixedNonce);
  auto next = server.on_client_response(kSha2Expected);
  ASSERT_TRUE(next.has_value()) << next.error().message();
  EXPECT_EQ(*next, CachingSha2Server::Next::SendFastAuthSuccess);
  EXPECT_FALSE(server.last_failure().has_value());
  // The exchange is over: anything more is out of order.
  EXPECT_FALSE(server.on_client_response(kSha2Expected).has_value());
  EXPECT_EQ(server.last_failure(), MysqlAuthFailure::Protocol);
}

TEST(MysqlCachingSha2Server, WrongPasswordAndMalformedScramble) {
  CachingSha2Server wrong("secret", kFixedNonce);
  EXPECT_FALSE(wrong.on_client_response(caching_sha2_scramble("guess", kFixedNonce)).has_value());
  EXPECT_EQ(wrong.last_failure(), MysqlAuthFailure::WrongPassword);

  CachingSha2Server short_one("secret", kFixedNonce);
  EXPECT_FALSE(short_one.on_client_response(kSha2Expected.substr(0, 20)).has_value());
  EXPECT_EQ(short_one.last_failure(), MysqlAuthFailure::Protocol);

  CachingSha2Server no_password_sent("secret", kFixedNonce);
  EXPECT_FALSE(no_password_sent.on_client_response("").has_value());
  EXPECT_EQ(no_password_sent.last_failure(), MysqlAuthFailure::WrongPassword);
}

TEST(MysqlCachingSha2Server, EmptyPasswordAccountSkipsFastAuth) {
  CachingSha2Server server("", kFixedNonce);
  auto next = server.on_client_response("");
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(*next, CachingSha2Server::Next::SendOk);
  CachingSha2Server other("", kFixedNonce);
  EXPECT_FALSE(other.on_client_response(kSha2Expected).has_value());
  EXPECT_EQ(other.last_failure(), MysqlAuthFailure::WrongPassword);
}

TEST(MysqlCachingSha2Server, FullAuthOverTls) {
  CachingSha2Server server("secret", kFixedNonce, /*require_full_auth=*/true);
  auto next = server.on_client_response(kSha2Expected);
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(*next, CachingSha2Server::Next::SendPerformFullAuth);
  auto done = server.on_full_auth("secret\0"sv, /*tls=*/true);
  ASSERT_TRUE(done.has_value()) << done.error().message();
  EXPECT_EQ(*done, CachingSha2Server::Next::SendOk);
}

TEST(MysqlCachingSha2Server, FullAuthFailures) {
  auto start = [] {
    CachingSha2Server s("secret", kFixedNonce, true);
    EXPECT_TRUE(s.on_client_response(kSha2Expected).has_value());
    return s;
  };
  CachingSha2Server plaintext = start();
  EXPECT_FALSE(plaintext.on_full_auth("secret\0"sv, false).has_value());
  EXPECT_EQ(plaintext.last_failure(), MysqlAuthFailure::NeedsTls);
  // What a client without TLS sends: a request for the server's public key.
  CachingSha2Server key_request = start();
  EXPECT_FALSE(key_request.on_full_auth("\x02"sv, false).has_value());
  EXPECT_EQ(key_request.last_failure(), MysqlAuthFailure::NeedsTls);

  CachingSha2Server wrong = start();
  EXPECT_FALSE(wrong.on_full_auth("secreT\0"sv, true).has_value());
  EXPECT_EQ(wrong.last_failure(), MysqlAuthFailure::WrongPassword);
  CachingSha2Server prefix = start();
  EXPECT_FALSE(prefix.on_full_auth("secre\0"sv, true).has_value());
  EXPECT_EQ(prefix.last_failure(), MysqlAuthFailure::WrongPassword);
  CachingSha2Server no_nul = start();
  EXPECT_FALSE(no_nul.on_full_auth("secret"sv, true).has_value());
  EXPECT_EQ(no_nul.last_failure(), MysqlAuthFailure::Protocol);

  // Full auth before the scramble is out of order.
  CachingSha2Server early("secret", kFixedNonce);
  EXPECT_FALSE(early.on_full_auth("secret\0"sv, true).has_value());
  EXPECT_EQ(early.last_failure(), MysqlAuthFailure::Protocol);
}

TEST(MysqlCachingSha2Client, FastAuthThenFullAuth) {
  CachingSha2Client client("secret", kFixedNonce);
  EXPECT_EQ(client.initial_response(), kSha2Expected);
  auto fast = client.on_more_data("\x03"sv, false);
  ASSERT_TRUE(fast.has_value()) << fast.error().message();
  EXPECT_FALSE(fast->has_value());  // nothing to send: the OK follows
  auto full = client.on_more_data("\x04"sv, true);
  ASSERT_TRUE(full.has_value()) << full.error().message();
  ASSERT_TRUE(full->has_value());
  EXPECT_EQ(**full, "secret\0"s);
}

TEST(MysqlCachingSha2Client, FullAuthWithoutTlsAndGarbageAreErrors) {
  CachingSha2Client client("secret", kFixedNonce);
  auto plaintext = client.on_more_data("\x04"sv, false);
  ASSERT_FALSE(plaintext.has_value());
  EXPECT_NE(plaintext.error().message().find("TLS"), std::string::npos);
  EXPECT_FALSE(client.on_more_data("", true).has_value());
  EXPECT_FALSE(client.on_more_data("\x05"sv, true).has_value());
  EXPECT_FALSE(client.on_more_data("-----BEGIN PUBLIC KEY-----"sv, true).has_value());
}

TEST(MysqlCachingSha2, ClientAndServerAgree) {
  const std::string nonce = make_mysql_nonce();
  CachingSha2Client client("p@ss w0rd", nonce);
  CachingSha2Server server("p@ss w0rd", nonce);
  auto next = server.on_client_response(client.initial_response());
  ASSERT_TRUE(next.has_value()) << next.error().message();
  EXPECT_EQ(*next, CachingSha2Server::Next::SendFastAuthSuccess);
  const std::string code(1, static_cast<char>(kCachingSha2FastAuthSuccess));
  EXPECT_FALSE(client.on_more_data(code, false)->has_value());

  CachingSha2Server full("p@ss w0rd", nonce, true);
  ASSERT_EQ(*full.on_client_response(client.initial_response()),
            CachingSha2Server::Next::SendPerformFullAuth);
  const std::string ask(1, static_cast<char>(kCachingSha2PerformFullAuth));
  auto password = client.on_more_data(ask, true);
  ASSERT_TRUE(password.has_value() && password->has_value());
  EXPECT_EQ(*full.on_full_auth(**password, true), CachingSha2Server::Next::SendOk);
}

}  // namespace
}  // namespace shardgate::auth
