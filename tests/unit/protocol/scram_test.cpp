#include "proxy/protocol/auth/scram.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace shardgate::auth {
namespace {

// RFC 7677 section 3.
constexpr std::string_view kRfcClientNonce = "rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kRfcServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr std::string_view kRfcClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kRfcServerFirst =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr std::string_view kRfcClientFinal =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr std::string_view kRfcServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

// Computed independently with Python's hashlib (pbkdf2_hmac, hmac, sha256) for
// password "pencil" and the RFC salt.
constexpr std::string_view kPencilVerifier =
    "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";

// base64 "W22ZaJ0SNY7soEsUEjb6gQ==" decoded.
const std::string kRfcSalt("\x5b\x6d\x99\x68\x9d\x12\x35\x8e\xec\xa0\x4b\x14\x12\x36\xfa\x81", 16);

ScramVerifier pencil_verifier() {
  return make_verifier("pencil", kRfcSalt, 4096);
}

ScramServer rfc_server() {
  return ScramServer(pencil_verifier(), std::string(kRfcServerNonce));
}

// A server that has already answered the RFC client-first-message.
ScramServer rfc_server_after_first() {
  ScramServer server = rfc_server();
  EXPECT_TRUE(server.on_client_first(kRfcClientFirst).has_value());
  return server;
}

void expect_protocol_error(ScramServer& server, const Result<std::string>& r) {
  ASSERT_FALSE(r.has_value());
  ASSERT_TRUE(server.last_failure().has_value());
  EXPECT_EQ(*server.last_failure(), ScramFailure::Protocol) << r.error().message();
}

void expect_final_rejected(std::string_view client_final) {
  ScramServer server = rfc_server_after_first();
  const Result<std::string> r = server.on_client_final(client_final);
  SCOPED_TRACE(std::string(client_final));
  expect_protocol_error(server, r);
}

void expect_first_rejected(std::string_view client_first) {
  ScramServer server = rfc_server();
  const Result<std::string> r = server.on_client_first(client_first);
  SCOPED_TRACE(std::string(client_first));
  expect_protocol_error(server, r);
}

// ---- RFC 7677 test vector ----

TEST(ScramRfc7677, ClientProducesExactClientFinal) {
  ScramClient client("pencil", std::string(kRfcClientNonce), "user");
  EXPECT_EQ(client.client_first_message(), kRfcClientFirst);
  const Result<std::string> final_message = client.on_server_first(kRfcServerFirst);
  ASSERT_TRUE(final_message.has_value()) << final_message.error().message();
  EXPECT_EQ(*final_message, kRfcClientFinal);
  const Result<void> done = client.on_server_final(kRfcServerFinal);
  EXPECT_TRUE(done.has_value()) << done.error().message();
}

TEST(ScramRfc7677, ServerProducesExactMessages) {
  ScramServer server = rfc_server();
  const Result<std::string> first = server.on_client_first(kRfcClientFirst);
  ASSERT_TRUE(first.has_value()) << first.error().message();
  EXPECT_EQ(*first, kRfcServerFirst);
  const Result<std::string> final_message = server.on_client_final(kRfcClientFinal);
  ASSERT_TRUE(final_message.has_value()) << final_message.error().message();
  EXPECT_EQ(*final_message, kRfcServerFinal);
  EXPECT_FALSE(server.last_failure().has_value());
}

TEST(ScramRfc7677, VerifierMatchesIndependentComputation) {
  EXPECT_EQ(format_verifier(pencil_verifier()), kPencilVerifier);
}

TEST(ScramRfc7677, ClientSendsEmptyUsernameByDefault) {
  ScramClient client("pencil", std::string(kRfcClientNonce));
  EXPECT_EQ(client.client_first_message(), "n,,n=,r=rOprNGfwEbeRWgbNEkqO");
}

TEST(ScramClient, EscapesUsername) {
  ScramClient client("pw", "abc", "a,b=c");
  EXPECT_EQ(client.client_first_message(), "n,,n=a=2Cb=3Dc,r=abc");
}

// ---- round trips ----

// Runs a full exchange; returns the server's failure, if any.
std::optional<ScramFailure> round_trip(const ScramVerifier& verifier, std::string password) {
  ScramClient client(std::move(password));
  ScramServer server(verifier);
  const Result<std::string> server_first = server.on_client_first(client.client_first_message());
  EXPECT_TRUE(server_first.has_value());
  if (!server_first) return server.last_failure();
  const Result<std::string> client_final = client.on_server_first(*server_first);
  EXPECT_TRUE(client_final.has_value());
  if (!client_final) return ScramFailure::Protocol;
  const Result<std::string> server_final = server.on_client_final(*client_final);
  if (!server_final) return server.last_failure();
  const Result<void> done = client.on_server_final(*server_final);
  EXPECT_TRUE(done.has_value()) << done.error().message();
  return std::nullopt;
}

TEST(ScramRoundTrip, RightPasswordSucceeds) {
  EXPECT_EQ(round_trip(pencil_verifier(), "pencil"), std::nullopt);
}

TEST(ScramRoundTrip, PlaintextConfigGetsFreshVerifier) {
  const Result<ScramVerifier> verifier = verifier_for("s3cret pass");
  ASSERT_TRUE(verifier.has_value()) << verifier.error().message();
  EXPECT_EQ(verifier->iterations, 4096u);
  EXPECT_EQ(verifier->salt.size(), 16u);
  EXPECT_EQ(round_trip(*verifier, "s3cret pass"), std::nullopt);
  EXPECT_EQ(round_trip(*verifier, "s3cret pasS"), ScramFailure::WrongPassword);
}

TEST(ScramRoundTrip, VerifierConfigIsParsed) {
  const Result<ScramVerifier> verifier = verifier_for(kPencilVerifier);
  ASSERT_TRUE(verifier.has_value()) << verifier.error().message();
  EXPECT_EQ(verifier->salt, kRfcSalt);
  EXPECT_EQ(round_trip(*verifier, "pencil"), std::nullopt);
}

TEST(ScramRoundTrip, EmptyPasswordStillWorksBothWays) {
  EXPECT_EQ(round_trip(make_verifier("", "salt", 1), ""), std::nullopt);
}

TEST(ScramRoundTrip, WrongPasswordIsReportedAsSuch) {
  ScramClient client("pen", std::string(kRfcClientNonce));
  ScramServer server = rfc_server();
  const Result<std::string> first = server.on_client_first(client.client_first_message());
  ASSERT_TRUE(first.has_value());
  const Result<std::string> client_final = client.on_server_first(*first);
  ASSERT_TRUE(client_final.has_value());
  const Result<std::string> r = server.on_client_final(*client_final);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(server.last_failure(), ScramFailure::WrongPassword);
  EXPECT_NE(r.error().message().find("password authentication failed"), std::string::npos);
}

TEST(ScramRoundTrip, RandomNoncesDiffer) {
  ScramClient a("x");
  ScramClient b("x");
  EXPECT_NE(a.client_first_message(), b.client_first_message());
  EXPECT_EQ(a.client_first_message().size(), std::string("n,,n=,r=").size() + 24);
}

// ---- server: channel binding ----

TEST(ScramServer, AcceptsClientThatCouldBindButWasNotOffered) {
  ScramServer server = rfc_server();
  ASSERT_TRUE(server.on_client_first("y,,n=,r=abc").has_value());
  // c= must carry the "y,," header: base64 "eSws". The proof is wrong, but the
  // binding passed, so the failure is about the password.
  const std::string nonce = "abc" + std::string(kRfcServerNonce);
  const Result<std::string> r = server.on_client_final(
      "c=eSws,r=" + nonce + ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(server.last_failure(), ScramFailure::WrongPassword);
}

TEST(ScramServer, RejectsChannelBindingRequest) {
  ScramServer server = rfc_server();
  const Result<std::string> r = server.on_client_first("p=tls-server-end-point,,n=,r=abc");
  expect_protocol_error(server, r);
  EXPECT_NE(r.error().message().find("SCRAM-SHA-256-PLUS"), std::string::npos);
}

TEST(ScramServer, RejectsBindingThatDoesNotMatchHeader) {
  // Client said "n,," in client-first but claims "y,," in client-final.
  expect_final_rejected(
      "c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
      "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
}

// ---- server: malformed client-first ----

TEST(ScramServer, RejectsMalformedClientFirst) {
  expect_first_rejected("");
  expect_first_rejected("n");
  expect_first_rejected("n,");
  expect_first_rejected("n,,");
  expect_first_rejected("n,,n=");
  expect_first_rejected("n,,n=user");
  expect_first_rejected("n,,n=user,r=");
  expect_first_rejected("n,,r=abc");                // username missing
  expect_first_rejected("n,,n=user,x=abc");         // nonce missing
  expect_first_rejected("x,,n=user,r=abc");         // unknown cbind flag
  expect_first_rejected("n,a=admin,n=user,r=abc");  // authzid
  expect_first_rejected("n,,m=ext,n=user,r=abc");   // mandatory extension
  expect_first_rejected(
      "n,,n=user,r=ab\x7f"
      "c");  // unprintable nonce
}

TEST(ScramServer, RejectsEveryTruncationOfClientFirstBeforeNonce) {
  const std::string_view full = kRfcClientFirst;
  const size_t nonce_start = full.find("r=") + 2;
  for (size_t n = 0; n <= nonce_start; ++n) expect_first_rejected(full.substr(0, n));
}

TEST(ScramServer, IgnoresClientFirstExtensions) {
  ScramServer server = rfc_server();
  EXPECT_TRUE(server.on_client_first("n,,n=,r=abc,x=ext").has_value());
}

// ---- server: malformed client-final ----

TEST(ScramServer, RejectsTamperedNonce) {
  expect_final_rejected(
      "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k1,"
      "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
  // Only the client's part, and the right nonce with extra bytes.
  expect_final_rejected(
      "c=biws,r=rOprNGfwEbeRWgbNEkqO,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
  expect_final_rejected(
      "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0X,"
      "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
}

TEST(ScramServer, RejectsMissingOrMisorderedAttributes) {
  const std::string nonce = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
  const std::string proof = "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
  expect_final_rejected(nonce + "," + proof);                      // no c=
  expect_final_rejected("c=biws," + proof);                        // no r=
  expect_final_rejected("c=biws," + nonce);                        // no p=
  expect_final_rejected(nonce + ",c=biws," + proof);               // order
  expect_final_rejected("c=biws," + proof + "," + nonce);          // order
  expect_final_rejected("c=biws," + nonce + ",garbage," + proof);  // bad extension
}

TEST(ScramServer, RejectsBadBase64) {
  const std::string head = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,";
  expect_final_rejected(head + "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ");    // no padding
  expect_final_rejected(head + "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7And*Q=");   // bad char
  expect_final_rejected(head + "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7A=dVQ=");   // inner '='
  expect_final_rejected(head + "p= HzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");   // space
  expect_final_rejected(head + "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQAA");  // 33 bytes
  expect_final_rejected(head + "p=");                                               // empty
  expect_final_rejected(
      "c=bi*s,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
      "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
}

TEST(ScramServer, RejectsEveryTruncationOfClientFinal) {
  const std::string_view full = kRfcClientFinal;
  for (size_t n = 0; n < full.size(); ++n) expect_final_rejected(full.substr(0, n));
}

TEST(ScramServer, RejectsMessagesOutOfOrder) {
  ScramServer server = rfc_server();
  expect_protocol_error(server, server.on_client_final(kRfcClientFinal));

  ScramServer done = rfc_server_after_first();
  ASSERT_TRUE(done.on_client_final(kRfcClientFinal).has_value());
  expect_protocol_error(done, done.on_client_first(kRfcClientFirst));
}

TEST(ScramServer, StaysFailedAfterAnError) {
  ScramServer server = rfc_server();
  ASSERT_FALSE(server.on_client_first("garbage").has_value());
  expect_protocol_error(server, server.on_client_first(kRfcClientFirst));
  expect_protocol_error(server, server.on_client_final(kRfcClientFinal));
}

// ---- client ----

Result<std::string> rfc_client_first_step(std::string_view server_first) {
  ScramClient client("pencil", std::string(kRfcClientNonce), "user");
  return client.on_server_first(server_first);
}

TEST(ScramClient, RejectsBadServerFirst) {
  const std::string_view bad[] = {
      "",
      "r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",            // no server part
      "r=XOprNGfwEbeRWgbNEkqOabc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",         // not our nonce
      "r=rOprNGfwEbeRWgbNEkqOabc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0",            // zero iterations
      "r=rOprNGfwEbeRWgbNEkqOabc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=-1",           // negative
      "r=rOprNGfwEbeRWgbNEkqOabc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096x",        // trailing junk
      "r=rOprNGfwEbeRWgbNEkqOabc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999999",  // overflow
      "r=rOprNGfwEbeRWgbNEkqOabc,s=W22ZaJ0SNY7soEsUEjb6gQ=,i=4096",          // bad base64
      "r=rOprNGfwEbeRWgbNEkqOabc,s=,i=4096",                                 // empty salt
      "r=rOprNGfwEbeRWgbNEkqOabc,i=4096",                                    // no salt
      "r=rOprNGfwEbeRWgbNEkqOabc,s=W22ZaJ0SNY7soEsUEjb6gQ==",                // no iterations
      "s=W22ZaJ0SNY7soEsUEjb6gQ==,r=rOprNGfwEbeRWgbNEkqOabc,i=4096",         // order
      "m=ext,r=rOprNGfwEbeRWgbNEkqOabc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",   // mandatory ext
  };
  for (std::string_view message : bad) {
    EXPECT_FALSE(rfc_client_first_step(message).has_value()) << message;
  }
}

TEST(ScramClient, RejectsEveryTruncationOfServerFirst) {
  const std::string_view full = kRfcServerFirst;
  const size_t iter_start = full.find("i=") + 2;
  for (size_t n = 0; n <= iter_start; ++n) {
    EXPECT_FALSE(rfc_client_first_step(full.substr(0, n)).has_value()) << full.substr(0, n);
  }
}

TEST(ScramClient, ReportsServerError) {
  ScramClient client("pencil", std::string(kRfcClientNonce), "user");
  ASSERT_TRUE(client.on_server_first(kRfcServerFirst).has_value());
  const Result<void> r = client.on_server_final("e=invalid-proof");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("invalid-proof"), std::string::npos);
}

TEST(ScramClient, RejectsWrongServerSignature) {
  const std::string_view bad[] = {
      "v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",  // one byte off
      "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4",   // bad base64
      "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl9",      // short
      "v=",
      "",
      "x=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
  };
  for (std::string_view message : bad) {
    ScramClient client("pencil", std::string(kRfcClientNonce), "user");
    ASSERT_TRUE(client.on_server_first(kRfcServerFirst).has_value());
    EXPECT_FALSE(client.on_server_final(message).has_value()) << message;
  }
}

TEST(ScramClient, RejectsMessagesOutOfOrder) {
  ScramClient client("pencil", std::string(kRfcClientNonce), "user");
  EXPECT_FALSE(client.on_server_final(kRfcServerFinal).has_value());
  EXPECT_FALSE(client.on_server_first(kRfcServerFirst).has_value());  // stays failed
}

TEST(ScramClient, ServerWithWrongPasswordIsCaught) {
  // An impostor server that does not know the password cannot sign.
  ScramClient client("pencil", std::string(kRfcClientNonce), "user");
  ScramServer impostor(make_verifier("other", kRfcSalt, 4096), std::string(kRfcServerNonce));
  ASSERT_TRUE(impostor.on_client_first(client.client_first_message()).has_value());
  const Result<std::string> client_final = client.on_server_first(kRfcServerFirst);
  ASSERT_TRUE(client_final.has_value());
  EXPECT_FALSE(impostor.on_client_final(*client_final).has_value());
  EXPECT_EQ(impostor.last_failure(), ScramFailure::WrongPassword);
}

// ---- verifiers ----

TEST(ScramVerifier, ParseFormatRoundTrip) {
  const Result<ScramVerifier> parsed = parse_verifier(kPencilVerifier);
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message();
  EXPECT_EQ(parsed->iterations, 4096u);
  EXPECT_EQ(parsed->salt, kRfcSalt);
  EXPECT_EQ(parsed->stored_key, pencil_verifier().stored_key);
  EXPECT_EQ(parsed->server_key, pencil_verifier().server_key);
  EXPECT_EQ(format_verifier(*parsed), kPencilVerifier);
}

TEST(ScramVerifier, RejectsMalformed) {
  const std::string_view bad[] = {
      "",
      "SCRAM-SHA-1$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
      "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
      "SCRAM-SHA-256$0:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
      "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
      "SCRAM-SHA-256$abc:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
      "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
      "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ=$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
      "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
      "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=",
      "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$W22ZaJ0SNY7soEsUEjb6gQ==:"
      "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
      "SCRAM-SHA-256$4096$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
      "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
      "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
      "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=$extra",
  };
  for (std::string_view text : bad) {
    EXPECT_FALSE(parse_verifier(text).has_value()) << text;
  }
}

TEST(ScramVerifier, ConfiguredMalformedVerifierIsAnError) {
  const Result<ScramVerifier> r = verifier_for("SCRAM-SHA-256$4096:broken");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("configured password"), std::string::npos);
}

TEST(ScramVerifier, ConfiguredMd5HashIsAnError) {
  const Result<ScramVerifier> r = verifier_for("md553f48b7c4b76a86ce72276c5755f217d");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("md5"), std::string::npos);
  // Not the md5 stored form: a plaintext password that happens to start with md5.
  EXPECT_TRUE(verifier_for("md5isnotahash").has_value());
}

TEST(ScramVerifier, FreshSaltsDiffer) {
  const Result<ScramVerifier> a = verifier_for("same");
  const Result<ScramVerifier> b = verifier_for("same");
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_NE(a->salt, b->salt);
  EXPECT_NE(a->stored_key, b->stored_key);
}

}  // namespace
}  // namespace shardgate::auth
