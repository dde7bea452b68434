// Unit tests of the sans-io PostgreSQL v3 codec: framing (frame.h) and the
// message bodies the proxy reads or writes (messages.h).
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "proxy/protocol/postgres/frame.h"
#include "proxy/protocol/postgres/messages.h"

namespace shardgate::pg {
namespace {

using namespace std::string_literals;
using namespace std::string_view_literals;

constexpr std::uint32_t kMax = 1u << 20;

std::string be32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}
std::string be16(std::uint16_t v) {
  return {static_cast<char>(v >> 8), static_cast<char>(v)};
}

// A regular message built by hand, independent of Encoder.
std::string raw_message(char type, std::string_view body) {
  return std::string(1, type) + be32(static_cast<std::uint32_t>(body.size() + 4)) +
         std::string(body);
}

// Decodes a buffer that must hold exactly one whole message.
Frame decode_one(const std::string& buf) {
  const FrameDecode d = decode_frame(buf, kMax);
  EXPECT_EQ(d.status, DecodeStatus::Frame) << d.error;
  EXPECT_EQ(d.frame.size, buf.size());
  return d.frame;
}
// The frame's body views the buffer: the buffer must outlive it.
Frame decode_one(std::string&&) = delete;

// ---------------------------------------------------------------- decode_frame

TEST(PgDecodeFrame, CompleteMessage) {
  const std::string buf = raw_message('Q', "SELECT 1\0"sv);
  const FrameDecode d = decode_frame(buf, kMax);
  ASSERT_EQ(d.status, DecodeStatus::Frame);
  EXPECT_EQ(d.frame.type, 'Q');
  EXPECT_EQ(d.frame.body, "SELECT 1\0"sv);
  EXPECT_EQ(d.frame.size, buf.size());
  EXPECT_TRUE(d.error.empty());
}

TEST(PgDecodeFrame, EmptyBodyLengthFour) {
  const std::string buf = "1"s + be32(4);
  const FrameDecode d = decode_frame(buf, kMax);
  ASSERT_EQ(d.status, DecodeStatus::Frame);
  EXPECT_EQ(d.frame.type, '1');
  EXPECT_TRUE(d.frame.body.empty());
  EXPECT_EQ(d.frame.size, 5u);
}

TEST(PgDecodeFrame, OnlyFirstOfSeveralMessages) {
  const std::string first = raw_message('T', "abc");
  const std::string buf = first + raw_message('D', "defgh") + "Z"s;
  const FrameDecode d = decode_frame(buf, kMax);
  ASSERT_EQ(d.status, DecodeStatus::Frame);
  EXPECT_EQ(d.frame.type, 'T');
  EXPECT_EQ(d.frame.body, "abc");
  EXPECT_EQ(d.frame.size, first.size());
  // The body is a view into the buffer, not a copy.
  EXPECT_EQ(d.frame.body.data(), buf.data() + 5);

  const FrameDecode second = decode_frame(std::string_view(buf).substr(d.frame.size), kMax);
  ASSERT_EQ(second.status, DecodeStatus::Frame);
  EXPECT_EQ(second.frame.type, 'D');
  EXPECT_EQ(second.frame.body, "defgh");
}

TEST(PgDecodeFrame, EveryPrefixNeedsMore) {
  const std::string msgs[] = {
      raw_message('Q', "SELECT * FROM t WHERE id = 42\0"sv),
      "1"s + be32(4),
      error_response("42P01", "relation \"t\" does not exist"),
  };
  for (const std::string& buf : msgs) {
    for (std::size_t n = 0; n < buf.size(); ++n) {
      const FrameDecode d = decode_frame(std::string_view(buf).substr(0, n), kMax);
      EXPECT_EQ(d.status, DecodeStatus::NeedMore) << "prefix of " << n << " bytes";
      EXPECT_TRUE(d.error.empty());
    }
    EXPECT_EQ(decode_frame(buf, kMax).status, DecodeStatus::Frame);
  }
}

TEST(PgDecodeFrame, MessageOfExactlyMaxSizeIsAccepted) {
  // max_size bounds the whole message: type byte + length + body.
  const std::uint32_t max = 64;
  const std::string buf = raw_message('d', std::string(max - 5, 'x'));
  ASSERT_EQ(buf.size(), max);
  const FrameDecode d = decode_frame(buf, max);
  EXPECT_EQ(d.status, DecodeStatus::Frame) << d.error;
  EXPECT_EQ(d.frame.size, max);
}

TEST(PgDecodeFrame, ZeroMaxSizeRefusesEverythingInsteadOfWrapping) {
  const FrameDecode d = decode_frame(raw_message('Q', "x"), 0);
  EXPECT_EQ(d.status, DecodeStatus::Error);
  EXPECT_NE(d.error.find("max_message_size"), std::string::npos) << d.error;
}

TEST(PgDecodeFrame, MessageOverMaxSizeIsAnError) {
  const std::uint32_t max = 64;
  const std::string buf = raw_message('d', std::string(max - 4, 'x'));
  ASSERT_EQ(buf.size(), max + 1);
  const FrameDecode d = decode_frame(buf, max);
  EXPECT_EQ(d.status, DecodeStatus::Error);
  EXPECT_NE(d.error.find("max_message_size"), std::string::npos) << d.error;
}

TEST(PgDecodeFrame, OversizedLengthIsRejectedFromTheHeaderAlone) {
  // A peer announcing 1 GiB must be refused before the proxy buffers anything.
  const std::string header = "D"s + be32(1u << 30);
  const FrameDecode d = decode_frame(header, kMax);
  EXPECT_EQ(d.status, DecodeStatus::Error);
  EXPECT_NE(d.error.find("max_message_size"), std::string::npos) << d.error;

  const std::string huge = "D"s + be32(0xFFFFFFFFu);
  EXPECT_EQ(decode_frame(huge, kMax).status, DecodeStatus::Error);
}

TEST(PgDecodeFrame, LengthUnderFourIsAnError) {
  for (std::uint32_t len : {0u, 1u, 2u, 3u}) {
    const std::string buf = "Q"s + be32(len) + "xxxx";
    const FrameDecode d = decode_frame(buf, kMax);
    EXPECT_EQ(d.status, DecodeStatus::Error) << "length " << len;
    EXPECT_FALSE(d.error.empty());
  }
}

// ---------------------------------------------------------------- decode_startup

TEST(PgDecodeStartup, SslRequest) {
  const std::string buf = be32(8) + be32(kSslRequestCode);
  ASSERT_EQ(buf, "\x00\x00\x00\x08\x04\xd2\x16\x2f"s);
  const StartupDecode d = decode_startup(buf);
  ASSERT_EQ(d.status, DecodeStatus::Frame);
  EXPECT_EQ(d.packet.code, kSslRequestCode);
  EXPECT_TRUE(d.packet.body.empty());
  EXPECT_EQ(d.packet.size, 8u);
}

TEST(PgDecodeStartup, GssEncRequestCode) {
  const StartupDecode d = decode_startup(be32(8) + be32(kGssEncRequestCode));
  ASSERT_EQ(d.status, DecodeStatus::Frame);
  EXPECT_EQ(d.packet.code, kGssEncRequestCode);
}

TEST(PgDecodeStartup, EveryPrefixNeedsMore) {
  const std::string buf = startup_message({{"user", "alice"}, {"database", "app"}});
  for (std::size_t n = 0; n < buf.size(); ++n)
    EXPECT_EQ(decode_startup(std::string_view(buf).substr(0, n)).status, DecodeStatus::NeedMore)
        << "prefix of " << n << " bytes";
  EXPECT_EQ(decode_startup(buf).status, DecodeStatus::Frame);
}

TEST(PgDecodeStartup, StartupMessageRoundTrip) {
  const Params params = {{"user", "alice"}, {"database", "app"}, {"application_name", "psql"}};
  const std::string buf = startup_message(params);
  const std::string with_trailing = buf + "trailing";
  const StartupDecode d = decode_startup(with_trailing);
  ASSERT_EQ(d.status, DecodeStatus::Frame);
  EXPECT_EQ(d.packet.code, kProtocolVersion3);
  EXPECT_EQ(d.packet.size, buf.size());
  const auto parsed = parse_startup_params(d.packet.body);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(*parsed, params);
}

TEST(PgDecodeStartup, CancelRequestRoundTrip) {
  const std::string buf = cancel_request(0x01020304, 0xA0B0C0D0);
  const StartupDecode d = decode_startup(buf);
  ASSERT_EQ(d.status, DecodeStatus::Frame);
  EXPECT_EQ(d.packet.code, kCancelRequestCode);
  EXPECT_EQ(d.packet.size, 16u);
  BodyReader r(d.packet.body);
  EXPECT_EQ(r.u32(), 0x01020304u);
  EXPECT_EQ(r.u32(), 0xA0B0C0D0u);
  EXPECT_TRUE(r.at_end());
  EXPECT_FALSE(r.failed());
}

TEST(PgDecodeStartup, MaximumLengthIsAccepted) {
  std::string buf = be32(kMaxStartupPacket) + be32(kProtocolVersion3);
  buf.resize(kMaxStartupPacket, '\0');
  const StartupDecode d = decode_startup(buf);
  EXPECT_EQ(d.status, DecodeStatus::Frame) << d.error;
  EXPECT_EQ(d.packet.size, kMaxStartupPacket);
}

TEST(PgDecodeStartup, TooLongIsAnErrorFromTheHeader) {
  for (std::uint32_t len : {kMaxStartupPacket + 1, 1u << 20, 0xFFFFFFFFu}) {
    const StartupDecode d = decode_startup(be32(len) + be32(kProtocolVersion3));
    EXPECT_EQ(d.status, DecodeStatus::Error) << "length " << len;
    EXPECT_FALSE(d.error.empty());
  }
}

TEST(PgDecodeStartup, TooShortIsAnError) {
  for (std::uint32_t len : {0u, 4u, 7u}) {
    const StartupDecode d = decode_startup(be32(len) + be32(kProtocolVersion3));
    EXPECT_EQ(d.status, DecodeStatus::Error) << "length " << len;
  }
}

// ---------------------------------------------------------------- round trips

TEST(PgCodecRoundTrip, Query) {
  const std::string f_bytes = query_message("SELECT 'x'");
  const Frame f = decode_one(f_bytes);
  EXPECT_EQ(f.type, 'Q');
  EXPECT_EQ(f.body, "SELECT 'x'\0"sv);
  BodyReader r(f.body);
  EXPECT_EQ(r.cstr(), "SELECT 'x'");
  EXPECT_TRUE(r.at_end());
}

TEST(PgCodecRoundTrip, ParseWithParameterTypes) {
  const std::string types = be16(2) + be32(23) + be32(25);
  const std::string msg = parse_message("stmt1", "SELECT $1::int, $2", types);
  const Frame f = decode_one(msg);
  EXPECT_EQ(f.type, 'P');
  const auto p = parse_parse(f.body);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->name, "stmt1");
  EXPECT_EQ(p->query, "SELECT $1::int, $2");
  EXPECT_EQ(p->param_types, types);
  EXPECT_EQ(read_u16(p->param_types.data()), 2);
  EXPECT_EQ(read_u32(p->param_types.data() + 2), 23u);
  EXPECT_EQ(read_u32(p->param_types.data() + 6), 25u);
}

TEST(PgCodecRoundTrip, ParseUnnamedWithoutTypes) {
  const std::string f_bytes = parse_message("", "BEGIN", be16(0));
  const Frame f = decode_one(f_bytes);
  const auto p = parse_parse(f.body);
  ASSERT_TRUE(p.has_value());
  EXPECT_TRUE(p->name.empty());
  EXPECT_EQ(p->query, "BEGIN");
  EXPECT_EQ(p->param_types, be16(0));
}

TEST(PgCodecRoundTrip, Bind) {
  // One text parameter "42", one result column in binary.
  const std::string rest = be16(0) + be16(1) + be32(2) + "42" + be16(1) + be16(1);
  const std::string f_bytes = bind_message("portal_a", "stmt1", rest);
  const Frame f = decode_one(f_bytes);
  EXPECT_EQ(f.type, 'B');
  const auto b = parse_bind(f.body);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->portal, "portal_a");
  EXPECT_EQ(b->statement, "stmt1");
  EXPECT_EQ(b->rest, rest);
}

TEST(PgCodecRoundTrip, BindResultFormats) {
  const std::string params =
      be16(1) + be16(1) + be16(2) + be32(8) + std::string(8, '\0') + be32(0xffffffffu);
  EXPECT_TRUE(bind_results_all_text(params + be16(0)));
  EXPECT_TRUE(bind_results_all_text(params + be16(1) + be16(0)));
  EXPECT_TRUE(bind_results_all_text(params + be16(2) + be16(0) + be16(0)));
  EXPECT_FALSE(bind_results_all_text(params + be16(1) + be16(1)));
  EXPECT_FALSE(bind_results_all_text(params + be16(2) + be16(0) + be16(1)));
  EXPECT_FALSE(bind_results_all_text(params));                  // truncated
  EXPECT_FALSE(bind_results_all_text(params + be16(0) + "x"));  // trailing bytes
}

TEST(PgCodecRoundTrip, Execute) {
  const std::string bytes = execute_message("p1", 50);
  const Frame f = decode_one(bytes);
  EXPECT_EQ(f.type, 'E');
  const auto e = parse_execute(f.body);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->portal, "p1");
  EXPECT_EQ(e->max_rows, 50u);
  EXPECT_FALSE(parse_execute("p1"));
}

TEST(PgCodecRoundTrip, BindUnnamedEmptyRest) {
  const std::string f_bytes = bind_message("", "", "");
  const Frame f = decode_one(f_bytes);
  const auto b = parse_bind(f.body);
  ASSERT_TRUE(b.has_value());
  EXPECT_TRUE(b->portal.empty());
  EXPECT_TRUE(b->statement.empty());
  EXPECT_TRUE(b->rest.empty());
}

TEST(PgCodecRoundTrip, DescribeAndClose) {
  struct Case {
    char type, kind;
    std::string name;
  };
  for (const Case& c : {Case{'D', 'S', "stmt1"}, Case{'D', 'P', ""}, Case{'C', 'S', "s"},
                        Case{'C', 'P', "portal_b"}}) {
    const std::string f_bytes = describe_or_close_message(c.type, c.kind, c.name);
    const Frame f = decode_one(f_bytes);
    EXPECT_EQ(f.type, c.type);
    const auto d = parse_describe_or_close(f.body);
    ASSERT_TRUE(d.has_value()) << c.type << c.kind << c.name;
    EXPECT_EQ(d->kind, c.kind);
    EXPECT_EQ(d->name, c.name);
  }
}

TEST(PgCodecRoundTrip, ErrorResponse) {
  const std::string f_bytes = error_response("42P01", "relation \"t\" does not exist");
  const Frame f = decode_one(f_bytes);
  EXPECT_EQ(f.type, 'E');
  const ErrorFields e = parse_error_fields(f.body);
  EXPECT_EQ(e.severity, "ERROR");
  EXPECT_EQ(e.sqlstate, "42P01");
  EXPECT_EQ(e.message, "relation \"t\" does not exist");
  EXPECT_TRUE(e.detail.empty());
  EXPECT_EQ(f.body.back(), '\0');  // field list terminator
}

TEST(PgCodecRoundTrip, ErrorResponseWithSeverity) {
  const std::string msg = error_response("57P01", "terminating", "FATAL");
  const ErrorFields e = parse_error_fields(decode_one(msg).body);
  EXPECT_EQ(e.severity, "FATAL");
  EXPECT_EQ(e.sqlstate, "57P01");
  EXPECT_EQ(e.message, "terminating");
}

TEST(PgCodecRoundTrip, ErrorFieldsIncludingDetailAndUnknownCodes) {
  Encoder enc;
  enc.begin('E').u8('S').cstr("ERROR").u8('C').cstr("23505").u8('M').cstr("duplicate key");
  enc.u8('D').cstr("Key (id)=(1) already exists.").u8('H').cstr("hint").u8(0).end();
  const std::string msg = enc.take();
  const ErrorFields e = parse_error_fields(decode_one(msg).body);
  EXPECT_EQ(e.severity, "ERROR");
  EXPECT_EQ(e.sqlstate, "23505");
  EXPECT_EQ(e.message, "duplicate key");
  EXPECT_EQ(e.detail, "Key (id)=(1) already exists.");
}

TEST(PgCodecRoundTrip, ReadyForQuery) {
  for (char status : {'I', 'T', 'E'}) {
    const std::string msg = ready_for_query(status);
    EXPECT_EQ(msg, "Z"s + be32(5) + std::string(1, status));
    const Frame f = decode_one(msg);
    EXPECT_EQ(f.type, 'Z');
    EXPECT_EQ(f.body, std::string(1, status));
  }
}

TEST(PgCodecRoundTrip, ParameterStatusAndBackendKeyData) {
  const std::string ps_bytes = parameter_status("client_encoding", "UTF8");
  const Frame ps = decode_one(ps_bytes);
  EXPECT_EQ(ps.type, 'S');
  BodyReader r(ps.body);
  EXPECT_EQ(r.cstr(), "client_encoding");
  EXPECT_EQ(r.cstr(), "UTF8");
  EXPECT_TRUE(r.at_end());

  const std::string k_bytes = backend_key_data(4242, 0xDEADBEEF);

  const Frame k = decode_one(k_bytes);
  EXPECT_EQ(k.type, 'K');
  BodyReader kr(k.body);
  EXPECT_EQ(kr.u32(), 4242u);
  EXPECT_EQ(kr.u32(), 0xDEADBEEFu);
  EXPECT_TRUE(kr.at_end());
}

TEST(PgCodecRoundTrip, AuthRequests) {
  const std::string ok_bytes = auth_request(kAuthOk);
  const Frame ok = decode_one(ok_bytes);
  EXPECT_EQ(ok.type, 'R');
  EXPECT_EQ(ok.body, be32(0));

  const std::string md5_bytes = auth_request(kAuthMd5, "\x01\x02\x03\x04");

  const Frame md5 = decode_one(md5_bytes);
  BodyReader r(md5.body);
  EXPECT_EQ(r.u32(), kAuthMd5);
  EXPECT_EQ(r.bytes(4), "\x01\x02\x03\x04");
  EXPECT_TRUE(r.at_end());
}

TEST(PgCodecRoundTrip, PasswordAndSaslMessages) {
  const std::string p_bytes = password_message("md5abc");
  const Frame p = decode_one(p_bytes);
  EXPECT_EQ(p.type, 'p');
  EXPECT_EQ(p.body, "md5abc\0"sv);

  const std::string si_bytes = sasl_initial_response("SCRAM-SHA-256", "n,,n=,r=nonce");

  const Frame si = decode_one(si_bytes);
  EXPECT_EQ(si.type, 'p');
  BodyReader r(si.body);
  EXPECT_EQ(r.cstr(), "SCRAM-SHA-256");
  const std::uint32_t n = r.u32();
  EXPECT_EQ(n, 13u);
  EXPECT_EQ(r.bytes(n), "n,,n=,r=nonce");
  EXPECT_TRUE(r.at_end());

  const std::string sr_bytes = sasl_response("c=biws,r=x,p=y");

  const Frame sr = decode_one(sr_bytes);
  EXPECT_EQ(sr.type, 'p');
  EXPECT_EQ(sr.body, "c=biws,r=x,p=y");
}

TEST(PgCodecRoundTrip, SimpleMessages) {
  for (char type : {'1', '2', '3', 'X', 'S', 'H'}) {
    const std::string msg = simple_message(type);
    EXPECT_EQ(msg, std::string(1, type) + be32(4));
    const Frame f = decode_one(msg);
    EXPECT_EQ(f.type, type);
    EXPECT_TRUE(f.body.empty());
  }
}

TEST(PgCodecRoundTrip, EncoderPatchesEachMessageLength) {
  Encoder e;
  e.begin('P').cstr("").cstr("SELECT 1").u16(0).end();
  e.begin('B').cstr("").cstr("").u16(0).u16(0).u16(0).end();
  e.begin('S').end();
  const std::string buf = e.take();
  std::string_view rest = buf;
  std::string types;
  while (!rest.empty()) {
    const FrameDecode d = decode_frame(rest, kMax);
    ASSERT_EQ(d.status, DecodeStatus::Frame) << d.error;
    types += d.frame.type;
    rest.remove_prefix(d.frame.size);
  }
  EXPECT_EQ(types, "PBS");
  EXPECT_EQ(buf.size(), (5u + 1 + 9 + 2) + (5u + 1 + 1 + 6) + 5u);
}

// ---------------------------------------------------------------- malformed bodies

TEST(PgCodecMalformed, StartupParams) {
  EXPECT_FALSE(parse_startup_params(""sv).has_value());                    // no terminator
  EXPECT_FALSE(parse_startup_params("user\0bob\0"sv).has_value());         // no terminator
  EXPECT_FALSE(parse_startup_params("user\0"sv).has_value());              // name, no value
  EXPECT_FALSE(parse_startup_params("user\0bob"sv).has_value());           // value not ended
  EXPECT_FALSE(parse_startup_params("user\0bob\0\0extra"sv).has_value());  // trailing bytes
  const auto empty = parse_startup_params("\0"sv);
  ASSERT_TRUE(empty.has_value());
  EXPECT_TRUE(empty->empty());
  const auto one = parse_startup_params("user\0\0\0"sv);  // empty value is allowed
  ASSERT_TRUE(one.has_value());
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].first, "user");
  EXPECT_EQ((*one)[0].second, "");
}

TEST(PgCodecMalformed, Parse) {
  EXPECT_FALSE(parse_parse(""sv).has_value());
  EXPECT_FALSE(parse_parse("s1"sv).has_value());                // name not ended
  EXPECT_FALSE(parse_parse("s1\0SELECT 1"sv).has_value());      // query not ended
  EXPECT_FALSE(parse_parse("s1\0SELECT 1\0"sv).has_value());    // no type count
  EXPECT_FALSE(parse_parse("s1\0SELECT 1\0\0"sv).has_value());  // half a type count
  const std::string head = "s1\0SELECT $1, $2\0"s;
  EXPECT_FALSE(parse_parse(head + be16(2) + be32(23)).has_value());             // one oid short
  EXPECT_FALSE(parse_parse(head + be16(1) + be32(23) + be32(25)).has_value());  // one oid extra
  EXPECT_FALSE(parse_parse(head + be16(1) + "\0\0\0"s).has_value());            // partial oid
  EXPECT_FALSE(parse_parse(head + be16(0xFFFF)).has_value());                   // huge count
  EXPECT_TRUE(parse_parse(head + be16(2) + be32(23) + be32(25)).has_value());
}

TEST(PgCodecMalformed, Bind) {
  EXPECT_FALSE(parse_bind(""sv).has_value());
  EXPECT_FALSE(parse_bind("portal"sv).has_value());
  EXPECT_FALSE(parse_bind("portal\0stmt"sv).has_value());
  EXPECT_TRUE(parse_bind("portal\0stmt\0"sv).has_value());
}

TEST(PgCodecMalformed, DescribeOrClose) {
  EXPECT_FALSE(parse_describe_or_close(""sv).has_value());
  EXPECT_FALSE(parse_describe_or_close("S"sv).has_value());  // name not ended
  EXPECT_FALSE(parse_describe_or_close("Sname"sv).has_value());
  EXPECT_FALSE(parse_describe_or_close("Xname\0"sv).has_value());       // bad kind
  EXPECT_FALSE(parse_describe_or_close("Sname\0extra"sv).has_value());  // trailing bytes
  const auto d = parse_describe_or_close("P\0"sv);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->kind, 'P');
  EXPECT_TRUE(d->name.empty());
}

TEST(PgCodecMalformed, ErrorFieldsTruncated) {
  // The reader stops at the first malformed field and keeps what it read before.
  const ErrorFields e = parse_error_fields("SERROR\0C4200"sv);
  EXPECT_EQ(e.severity, "ERROR");
  EXPECT_TRUE(e.sqlstate.empty());
  const ErrorFields none = parse_error_fields(""sv);
  EXPECT_TRUE(none.severity.empty());
  EXPECT_TRUE(none.message.empty());
  // Missing final terminator: fields still read.
  const ErrorFields no_end = parse_error_fields("C42601\0Msyntax\0"sv);
  EXPECT_EQ(no_end.sqlstate, "42601");
  EXPECT_EQ(no_end.message, "syntax");
}

// ---------------------------------------------------------------- BodyReader

TEST(PgBodyReader, ReadsBigEndianAndStrings) {
  const std::string body = be32(0x01020304) + be16(0xFFFE) + "\xff"s + "abc\0"s + "xyz";
  BodyReader r(body);
  EXPECT_EQ(r.u32(), 0x01020304u);
  EXPECT_EQ(r.u16(), 0xFFFE);
  EXPECT_EQ(r.u8(), 0xFF);
  EXPECT_EQ(r.cstr(), "abc");
  EXPECT_FALSE(r.at_end());
  EXPECT_EQ(r.bytes(2), "xy");
  EXPECT_EQ(r.rest(), "z");
  EXPECT_TRUE(r.at_end());
  EXPECT_FALSE(r.failed());
  EXPECT_EQ(r.rest(), "");
  EXPECT_FALSE(r.failed());
}

TEST(PgBodyReader, ShortIntegersFail) {
  {
    BodyReader r("\x01\x02\x03"sv);
    EXPECT_EQ(r.u32(), 0u);
    EXPECT_TRUE(r.failed());
  }
  {
    BodyReader r("\x01"sv);
    EXPECT_EQ(r.u16(), 0u);
    EXPECT_TRUE(r.failed());
  }
  {
    BodyReader r(""sv);
    EXPECT_EQ(r.u8(), 0u);
    EXPECT_TRUE(r.failed());
  }
}

TEST(PgBodyReader, BytesPastTheEndFail) {
  BodyReader r("abcd"sv);
  EXPECT_EQ(r.bytes(3), "abc");
  EXPECT_TRUE(r.bytes(2).empty());
  EXPECT_TRUE(r.failed());

  BodyReader huge("abcd"sv);
  EXPECT_TRUE(huge.bytes(std::numeric_limits<std::size_t>::max()).empty());
  EXPECT_TRUE(huge.failed());
}

TEST(PgBodyReader, UnterminatedStringFails) {
  BodyReader r("abc"sv);
  EXPECT_TRUE(r.cstr().empty());
  EXPECT_TRUE(r.failed());
}

TEST(PgBodyReader, FailureIsSticky) {
  // After one failed read nothing more is returned, even what would fit.
  BodyReader r(
      "\x01\x02\x03"sv
      "ok\0"sv);
  EXPECT_EQ(r.bytes(10), "");
  ASSERT_TRUE(r.failed());
  EXPECT_TRUE(r.cstr().empty());
  EXPECT_EQ(r.u8(), 0u);
  EXPECT_TRUE(r.rest().empty());
  EXPECT_TRUE(r.failed());
}

TEST(PgBodyReader, ReadingAtTheEnd) {
  BodyReader r("a\0"sv);
  EXPECT_EQ(r.cstr(), "a");
  EXPECT_TRUE(r.at_end());
  EXPECT_TRUE(r.cstr().empty());
  EXPECT_TRUE(r.failed());
}

TEST(PgRows, RowDescriptionRoundTrips) {
  std::vector<FieldDescription> fields(2);
  fields[0].name = "id";
  fields[0].type_oid = 20;
  fields[0].type_size = 8;
  fields[0].type_modifier = -1;
  fields[1].name = "note";
  fields[1].table_oid = 16384;
  fields[1].column = 3;
  fields[1].type_oid = 25;
  fields[1].type_size = -1;
  fields[1].type_modifier = -1;
  const std::string msg = row_description(fields);
  auto d = decode_frame(msg, 1 << 20);
  ASSERT_EQ(d.status, DecodeStatus::Frame);
  EXPECT_EQ(d.frame.type, 'T');
  auto back = parse_row_description(d.frame.body);
  ASSERT_TRUE(back);
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ((*back)[1].name, "note");
  EXPECT_EQ((*back)[1].table_oid, 16384u);
  EXPECT_EQ((*back)[1].type_size, -1);
  EXPECT_EQ((*back)[0].type_modifier, -1);
  EXPECT_FALSE(parse_row_description(d.frame.body.substr(0, d.frame.body.size() - 1)));
}

TEST(PgRows, DataRowRoundTripsWithNulls) {
  std::string msg;
  append_data_row(msg, {std::string("42"), std::nullopt, std::string()});
  EXPECT_EQ(msg,
            "D\0\0\0\x14\0\x03\0\0\0\x02"
            "42\xff\xff\xff\xff\0\0\0\0"s);
  auto d = decode_frame(msg, 1 << 20);
  ASSERT_EQ(d.status, DecodeStatus::Frame);
  DataRowCells cells;
  ASSERT_TRUE(parse_data_row(d.frame.body, cells));
  ASSERT_EQ(cells.size(), 3u);
  EXPECT_EQ(cells[0], "42");
  EXPECT_FALSE(cells[1]);
  EXPECT_EQ(cells[2], "");
  EXPECT_FALSE(
      parse_data_row("\0\x02\0\0\0\x05"
                     "ab"s,
                     cells));  // truncated value
}

}  // namespace
}  // namespace shardgate::pg
