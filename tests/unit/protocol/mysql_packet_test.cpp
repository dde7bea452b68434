// Unit tests of MySQL packet framing (decode_packet, decode_message,
// append_packets) and the payload primitives (PayloadReader, put_*).
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/protocol/mysql/packet.h"

namespace shardgate::mysql {
namespace {

using namespace std::string_literals;
using namespace std::string_view_literals;

constexpr std::uint32_t kMax = 64u << 20;
constexpr std::size_t kFull = kMaxPacketPayload;

// A packet header built by hand, independent of put_u24.
std::string header(std::uint32_t len, std::uint8_t seq) {
  return {static_cast<char>(len & 0xFF), static_cast<char>((len >> 8) & 0xFF),
          static_cast<char>((len >> 16) & 0xFF), static_cast<char>(seq)};
}

std::string raw_packet(std::string_view payload, std::uint8_t seq) {
  return header(static_cast<std::uint32_t>(payload.size()), seq) + std::string(payload);
}

// A payload that repeats a 251-byte block: 0xFFFFFF is not a multiple of 251,
// so a chunk copied to the wrong place shows. Built by appending, which stays
// fast in unoptimized test builds.
std::string pattern(std::size_t n) {
  std::string block(251, '\0');
  for (std::size_t i = 0; i < block.size(); ++i) block[i] = static_cast<char>(i * 7 + 1);
  std::string s;
  s.reserve(n + block.size());
  while (s.size() < n) s += block;
  s.resize(n);
  return s;
}

// ---------------------------------------------------------------- decode_packet

TEST(MysqlDecodePacket, CompletePacket) {
  const std::string buf = raw_packet("\x03SELECT 1", 0);
  const PacketDecode d = decode_packet(buf, kMax);
  ASSERT_EQ(d.status, DecodeStatus::Frame) << d.error;
  EXPECT_EQ(d.seq, 0);
  EXPECT_EQ(d.payload, "\x03SELECT 1");
  EXPECT_EQ(d.size, buf.size());
  EXPECT_TRUE(d.error.empty());
  // A view into the buffer, not a copy.
  EXPECT_EQ(d.payload.data(), buf.data() + 4);
}

TEST(MysqlDecodePacket, EmptyPayload) {
  const std::string buf = header(0, 7);
  const PacketDecode d = decode_packet(buf, kMax);
  ASSERT_EQ(d.status, DecodeStatus::Frame);
  EXPECT_EQ(d.seq, 7);
  EXPECT_TRUE(d.payload.empty());
  EXPECT_EQ(d.size, 4u);
}

TEST(MysqlDecodePacket, OnlyFirstOfSeveral) {
  const std::string first = raw_packet("abc", 1);
  const std::string buf = first + raw_packet("defgh", 2) + "\x01"s;
  const PacketDecode d = decode_packet(buf, kMax);
  ASSERT_EQ(d.status, DecodeStatus::Frame);
  EXPECT_EQ(d.payload, "abc");
  EXPECT_EQ(d.size, first.size());
  const PacketDecode second = decode_packet(std::string_view(buf).substr(d.size), kMax);
  ASSERT_EQ(second.status, DecodeStatus::Frame);
  EXPECT_EQ(second.seq, 2);
  EXPECT_EQ(second.payload, "defgh");
  const PacketDecode third =
      decode_packet(std::string_view(buf).substr(d.size + second.size), kMax);
  EXPECT_EQ(third.status, DecodeStatus::NeedMore);
}

TEST(MysqlDecodePacket, EveryPrefixNeedsMore) {
  const std::string buf = raw_packet("\x00\x01\x02\x03\x04hello world"sv, 3);
  for (std::size_t n = 0; n < buf.size(); ++n) {
    EXPECT_EQ(decode_packet(std::string_view(buf).substr(0, n), kMax).status,
              DecodeStatus::NeedMore)
        << "prefix of " << n << " bytes";
  }
  EXPECT_EQ(decode_packet(buf, kMax).status, DecodeStatus::Frame);
}

TEST(MysqlDecodePacket, OverMaxSizeIsErrorFromTheHeaderAlone) {
  const std::string buf = header(101, 0);  // no payload yet
  const PacketDecode d = decode_packet(buf, 100);
  EXPECT_EQ(d.status, DecodeStatus::Error);
  EXPECT_NE(d.error.find("101"), std::string::npos) << d.error;
  EXPECT_EQ(decode_packet(raw_packet(std::string(100, 'x'), 0), 100).status, DecodeStatus::Frame);
  EXPECT_EQ(decode_packet(header(0, 0), 0).status, DecodeStatus::Frame);
}

TEST(MysqlDecodePacket, FullPacketOverSmallMaxIsError) {
  EXPECT_EQ(decode_packet(header(kMaxPacketPayload, 0), 1u << 20).status, DecodeStatus::Error);
}

// ---------------------------------------------------------------- append_packets

TEST(MysqlAppendPackets, SmallPayloadIsOnePacket) {
  std::string out = "prefix";
  std::uint8_t seq = 5;
  append_packets(out, "hello", seq);
  EXPECT_EQ(out, "prefix" + raw_packet("hello", 5));
  EXPECT_EQ(seq, 6);
}

TEST(MysqlAppendPackets, EmptyPayloadIsOneEmptyPacket) {
  std::string out;
  std::uint8_t seq = 0;
  append_packets(out, "", seq);
  EXPECT_EQ(out, header(0, 0));
  EXPECT_EQ(seq, 1);
}

TEST(MysqlAppendPackets, SequenceWrapsAround) {
  std::string out;
  std::uint8_t seq = 255;
  append_packets(out, "a", seq);
  append_packets(out, "b", seq);
  EXPECT_EQ(out, raw_packet("a", 255) + raw_packet("b", 0));
  EXPECT_EQ(seq, 1);
}

TEST(MysqlAppendPackets, PacketizeStartsAtGivenSeq) {
  EXPECT_EQ(packetize("xyz", 9), raw_packet("xyz", 9));
}

// Splits payloads of the given size and checks the packet layout by hand.
struct SplitCase {
  std::size_t size;
  std::vector<std::size_t> packet_sizes;
};

class MysqlSplit : public ::testing::TestWithParam<SplitCase> {};

TEST_P(MysqlSplit, SplitsDecodesAndAssembles) {
  const SplitCase& c = GetParam();
  const std::string payload = pattern(c.size);
  std::string wire;
  std::uint8_t seq = 254;  // crosses the 255 -> 0 wrap on the way
  append_packets(wire, payload, seq);
  EXPECT_EQ(seq, static_cast<std::uint8_t>(254 + c.packet_sizes.size()));

  // The headers are where they should be, with consecutive sequence ids.
  std::size_t pos = 0;
  for (std::size_t i = 0; i < c.packet_sizes.size(); ++i) {
    ASSERT_LE(pos + 4, wire.size());
    EXPECT_EQ(wire.substr(pos, 4), header(static_cast<std::uint32_t>(c.packet_sizes[i]),
                                          static_cast<std::uint8_t>(254 + i)))
        << "packet " << i;
    pos += 4 + c.packet_sizes[i];
  }
  EXPECT_EQ(pos, wire.size());

  const MessageDecode m = decode_message(wire, kMax);
  ASSERT_EQ(m.status, DecodeStatus::Frame) << m.error;
  EXPECT_EQ(m.seq, 254);
  EXPECT_EQ(m.last_seq, static_cast<std::uint8_t>(254 + c.packet_sizes.size() - 1));
  EXPECT_EQ(m.packets, c.packet_sizes.size());
  EXPECT_EQ(m.payload_size, c.size);
  EXPECT_EQ(m.size, wire.size());
  EXPECT_TRUE(assemble_payload(wire, m) == payload);
  std::string storage;
  EXPECT_TRUE(message_payload(wire, m, storage) == payload);

  // Prefixes around every header, and a sample elsewhere, need more bytes.
  std::vector<std::size_t> prefixes;
  for (std::size_t at = 0, i = 0; i <= c.packet_sizes.size(); ++i) {
    for (std::size_t d = 0; d < 6; ++d) {
      if (at >= d) prefixes.push_back(at - d);
      prefixes.push_back(at + d);
    }
    if (i < c.packet_sizes.size()) at += 4 + c.packet_sizes[i];
  }
  for (std::size_t n = 0; n < wire.size(); n += 1 << 20) prefixes.push_back(n);
  for (const std::size_t n : prefixes) {
    if (n >= wire.size()) continue;
    EXPECT_EQ(decode_message(std::string_view(wire).substr(0, n), kMax).status,
              DecodeStatus::NeedMore)
        << "prefix of " << n << " bytes";
  }
}

INSTANTIATE_TEST_SUITE_P(SixteenMegabyteBoundaries, MysqlSplit,
                         ::testing::Values(SplitCase{0, {0}}, SplitCase{kFull - 1, {kFull - 1}},
                                           SplitCase{kFull, {kFull, 0}},
                                           SplitCase{kFull + 1, {kFull, 1}},
                                           SplitCase{2 * kFull, {kFull, kFull, 0}},
                                           SplitCase{2 * kFull + 5, {kFull, kFull, 5}}));

// ---------------------------------------------------------------- decode_message

TEST(MysqlDecodeMessage, SinglePacketIsAViewWithoutCopy) {
  const std::string buf = raw_packet("\x0e", 0) + raw_packet("next", 0);
  const MessageDecode m = decode_message(buf, kMax);
  ASSERT_EQ(m.status, DecodeStatus::Frame);
  EXPECT_EQ(m.packets, 1u);
  EXPECT_EQ(m.size, 5u);
  std::string storage;
  const std::string_view payload = message_payload(buf, m, storage);
  EXPECT_EQ(payload, "\x0e");
  EXPECT_EQ(payload.data(), buf.data() + 4);
  EXPECT_TRUE(storage.empty());
}

TEST(MysqlDecodeMessage, ContinuationPacketsAssembledByHand) {
  // Built without append_packets: a full packet, then a 3-byte one.
  const std::string first = pattern(kFull);
  const std::string buf = header(kFull, 0) + first + raw_packet("end", 1) + raw_packet("x", 0);
  const MessageDecode m = decode_message(buf, kMax);
  ASSERT_EQ(m.status, DecodeStatus::Frame) << m.error;
  EXPECT_EQ(m.packets, 2u);
  EXPECT_EQ(m.payload_size, kFull + 3);
  EXPECT_EQ(m.last_seq, 1);
  EXPECT_EQ(m.size, 4 + kFull + 4 + 3);
  EXPECT_TRUE(assemble_payload(buf, m) == first + "end");
}

TEST(MysqlDecodeMessage, MissingContinuationNeedsMore) {
  const std::string buf = header(kFull, 0) + std::string(kFull, 'a');
  EXPECT_EQ(decode_message(buf, kMax).status, DecodeStatus::NeedMore);
  // decode_packet sees the first packet whole: framing alone does not know.
  EXPECT_EQ(decode_packet(buf, kMax).status, DecodeStatus::Frame);
}

TEST(MysqlDecodeMessage, OutOfOrderContinuationIsError) {
  const std::string buf = header(kFull, 3) + std::string(kFull, 'a') + raw_packet("b", 5);
  const MessageDecode m = decode_message(buf, kMax);
  EXPECT_EQ(m.status, DecodeStatus::Error);
  EXPECT_NE(m.error.find("sequence"), std::string::npos) << m.error;
}

TEST(MysqlDecodeMessage, MaxSizeBoundsTheLogicalPayload) {
  // The second header pushes the total over: an error before its payload arrives.
  const std::string buf = header(kFull, 0) + std::string(kFull, 'a') + header(10, 1);
  const MessageDecode over = decode_message(buf, kFull + 9);
  EXPECT_EQ(over.status, DecodeStatus::Error);
  EXPECT_EQ(decode_message(buf, kFull + 10).status, DecodeStatus::NeedMore);
  EXPECT_EQ(decode_message(buf + std::string(10, 'b'), kFull + 10).status, DecodeStatus::Frame);
  EXPECT_EQ(decode_message(header(kFull, 0), 1u << 20).status, DecodeStatus::Error);
}

TEST(MysqlDecodeMessage, NotAFrameAssemblesNothing) {
  const MessageDecode m = decode_message("\x01\x00", kMax);
  EXPECT_EQ(m.status, DecodeStatus::NeedMore);
  std::string storage;
  EXPECT_TRUE(message_payload("\x01\x00", m, storage).empty());
  EXPECT_TRUE(assemble_payload("\x01\x00", m).empty());
}

// ---------------------------------------------------------------- lenenc integers

struct LenencCase {
  std::uint64_t value;
  std::string wire;
};

class MysqlLenenc : public ::testing::TestWithParam<LenencCase> {};

TEST_P(MysqlLenenc, EncodesDecodesAndSizes) {
  const LenencCase& c = GetParam();
  std::string out;
  put_lenenc_int(out, c.value);
  EXPECT_EQ(out, c.wire);
  EXPECT_EQ(lenenc_int_size(c.value), c.wire.size());
  PayloadReader r(c.wire);
  auto v = r.lenenc_int();
  ASSERT_TRUE(v.has_value()) << v.error().message();
  EXPECT_EQ(*v, c.value);
  EXPECT_TRUE(r.at_end());
  // Every truncation of it is an error, never an out-of-bounds read.
  for (std::size_t n = 0; n < c.wire.size(); ++n) {
    PayloadReader t(std::string_view(c.wire).substr(0, n));
    EXPECT_FALSE(t.lenenc_int().has_value()) << n;
  }
}

INSTANTIATE_TEST_SUITE_P(
    EdgeValues, MysqlLenenc,
    ::testing::Values(LenencCase{0, "\x00"s}, LenencCase{250, "\xfa"s},
                      LenencCase{251, "\xfc\xfb\x00"s}, LenencCase{0xFFFF, "\xfc\xff\xff"s},
                      LenencCase{0x10000, "\xfd\x00\x00\x01"s},
                      LenencCase{0xFFFFFF, "\xfd\xff\xff\xff"s},
                      LenencCase{0x1000000, "\xfe\x00\x00\x00\x01\x00\x00\x00\x00"s},
                      LenencCase{std::numeric_limits<std::uint64_t>::max(),
                                 "\xfe\xff\xff\xff\xff\xff\xff\xff\xff"s}));

TEST(MysqlPayloadReader, LenencNullAndErrorPrefixesAreErrors) {
  PayloadReader null_marker("\xfb"sv);
  EXPECT_FALSE(null_marker.lenenc_int().has_value());
  PayloadReader err_marker("\xff\x00\x00"sv);
  auto v = err_marker.lenenc_int();
  ASSERT_FALSE(v.has_value());
  EXPECT_NE(v.error().message().find("0xFF"), std::string::npos) << v.error().message();
}

TEST(MysqlPayloadReader, LenencStrings) {
  std::string wire;
  put_lenenc_str(wire, "");
  put_lenenc_str(wire, "abc");
  const std::string big(300, 'z');
  put_lenenc_str(wire, big);
  EXPECT_EQ(wire.substr(0, 5),
            "\x00\x03"
            "abc"s);
  EXPECT_EQ(wire.substr(5, 3), "\xfc\x2c\x01"s);
  PayloadReader r(wire);
  EXPECT_EQ(*r.lenenc_str(), "");
  EXPECT_EQ(*r.lenenc_str(), "abc");
  EXPECT_EQ(*r.lenenc_str(), big);
  EXPECT_TRUE(r.at_end());
  EXPECT_TRUE(r.status().has_value());
}

TEST(MysqlPayloadReader, LenencStringLongerThanPacketIsError) {
  PayloadReader short_body(
      "\x05"
      "abc"sv);
  EXPECT_FALSE(short_body.lenenc_str().has_value());
  // A 2^64-1 length must not wrap any bounds arithmetic.
  PayloadReader huge(
      "\xfe\xff\xff\xff\xff\xff\xff\xff\xff"
      "abc"sv);
  EXPECT_FALSE(huge.lenenc_str().has_value());
}

TEST(MysqlPayloadReader, NullableLenencString) {
  PayloadReader r("\xfb\x02hi\xfb"sv);
  auto a = r.lenenc_str_or_null();
  auto b = r.lenenc_str_or_null();
  auto c = r.lenenc_str_or_null();
  ASSERT_TRUE(r.status().has_value());
  EXPECT_FALSE(a->has_value());
  EXPECT_EQ(**b, "hi");
  EXPECT_FALSE(c->has_value());
  EXPECT_FALSE(r.lenenc_str_or_null().has_value());  // at the end
}

// ---------------------------------------------------------------- fixed ints, strings

TEST(MysqlPayloadReader, FixedIntegersAreLittleEndian) {
  std::string wire;
  put_u8(wire, 0xAB);
  put_u16(wire, 0x1234);
  put_u24(wire, 0x56789A);
  put_u32(wire, 0xDEADBEEF);
  put_u64(wire, 0x0102030405060708ull);
  EXPECT_EQ(wire, "\xab\x34\x12\x9a\x78\x56\xef\xbe\xad\xde\x08\x07\x06\x05\x04\x03\x02\x01"s);
  // Read from an odd offset inside a larger buffer: no alignment assumptions.
  const std::string shifted = "!" + wire;
  PayloadReader r(std::string_view(shifted).substr(1));
  EXPECT_EQ(*r.u8(), 0xAB);
  EXPECT_EQ(*r.u16(), 0x1234);
  EXPECT_EQ(*r.u24(), 0x56789Au);
  EXPECT_EQ(*r.u32(), 0xDEADBEEFu);
  EXPECT_EQ(*r.u64(), 0x0102030405060708ull);
  EXPECT_TRUE(r.at_end());
  EXPECT_FALSE(r.u8().has_value());
}

TEST(MysqlPayloadReader, NulTerminatedStrings) {
  std::string wire;
  put_cstr(wire, "root");
  put_cstr(wire, "");
  wire += "tail";
  PayloadReader r(wire);
  EXPECT_EQ(*r.cstr(), "root");
  EXPECT_EQ(*r.cstr(), "");
  EXPECT_EQ(r.remaining(), 4u);
  EXPECT_FALSE(r.cstr().has_value());  // "tail" has no NUL
}

TEST(MysqlPayloadReader, FailureIsSticky) {
  PayloadReader r("\x01\x02\x03"sv);
  EXPECT_FALSE(r.u32().has_value());
  EXPECT_TRUE(r.failed());
  // The bytes are there, but the reader has already failed.
  EXPECT_FALSE(r.u8().has_value());
  EXPECT_FALSE(r.peek().has_value());
  EXPECT_TRUE(r.rest().empty());
  auto s = r.status();
  ASSERT_FALSE(s.has_value());
  EXPECT_NE(s.error().message().find("truncated"), std::string::npos) << s.error().message();
}

TEST(MysqlPayloadReader, PeekSkipRestAndPosition) {
  PayloadReader r("abcdef"sv);
  EXPECT_EQ(r.peek(), std::uint8_t{'a'});
  EXPECT_TRUE(r.skip(2).has_value());
  EXPECT_EQ(r.position(), 2u);
  EXPECT_EQ(*r.bytes(1), "c");
  EXPECT_EQ(r.rest(), "def");
  EXPECT_TRUE(r.at_end());
  EXPECT_FALSE(r.peek().has_value());
  EXPECT_FALSE(r.skip(1).has_value());
}

}  // namespace
}  // namespace shardgate::mysql
