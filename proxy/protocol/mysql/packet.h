// MySQL/MariaDB packet framing and payload primitives, sans-io.
//
// A packet is a 3-byte little-endian payload length, a 1-byte sequence id and
// the payload. A payload of 0xFFFFFF bytes means "the message continues in the
// next packet", so a logical message over 16 MB is several packets, the last one
// shorter than 0xFFFFFF (possibly empty). decode_* look at a buffer and say: a
// whole packet/message, need more bytes, or a protocol error; they never consume
// and copy only when asked to join a multi-packet payload.
//
// Inside a payload the protocol uses fixed little-endian integers, length-encoded
// integers and strings, and NUL-terminated strings: PayloadReader reads them with
// bounds checks, the put_* helpers write them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace shardgate::mysql {

inline constexpr std::size_t kPacketHeaderSize = 4;
// Largest payload of one packet; a packet this long is followed by a continuation.
inline constexpr std::uint32_t kMaxPacketPayload = 0xFFFFFF;

enum class DecodeStatus { Frame, NeedMore, Error };

struct PacketDecode {
  DecodeStatus status = DecodeStatus::NeedMore;
  std::uint8_t seq = 0;
  std::string_view payload;  // a view into the buffer
  std::size_t size = 0;      // header + payload: the bytes this packet takes in the buffer
  std::string error;         // set when status == Error
};

// Decodes the single packet at the start of buf. A payload longer than max_size
// is an error as soon as the header is seen, before the payload arrives.
PacketDecode decode_packet(std::string_view buf, std::uint32_t max_size);

struct MessageDecode {
  DecodeStatus status = DecodeStatus::NeedMore;
  std::uint8_t seq = 0;          // sequence id of the first packet
  std::uint8_t last_seq = 0;     // of the last packet: the peer's reply continues at last_seq + 1
  std::size_t packets = 0;       // 1 unless the payload reaches 0xFFFFFF bytes
  std::size_t payload_size = 0;  // length of the logical payload
  std::size_t size = 0;          // bytes of all its packets in the buffer
  std::string error;
};

// Decodes the logical message at the start of buf: one packet, or a run of
// 0xFFFFFF-byte packets closed by a shorter one. max_size bounds the logical
// payload (the server's max_allowed_packet works the same way) and is checked
// as each header arrives. Continuation packets must have consecutive sequence
// ids (mod 256); anything else is a desync and an error.
MessageDecode decode_message(std::string_view buf, std::uint32_t max_size);

// The payload of a message decode_message found in buf: for one packet a view
// into buf (no copy); for several, the pieces joined into storage and a view of it.
std::string_view message_payload(std::string_view buf, const MessageDecode& message,
                                 std::string& storage);
// The same payload, always copied.
std::string assemble_payload(std::string_view buf, const MessageDecode& message);

// Appends payload as packets to out, splitting at 0xFFFFFF bytes. A payload whose
// length is a multiple of 0xFFFFFF (including 0) ends with an empty packet, as
// the receiver needs it to know the message is over. seq is the id of the first
// packet and on return the id the next packet of the exchange should use.
void append_packets(std::string& out, std::string_view payload, std::uint8_t& seq);
// One message as packets, starting at sequence id seq.
std::string packetize(std::string_view payload, std::uint8_t seq);

// Little-endian loads from raw bytes, assembled byte by byte (no alignment needs).
inline std::uint64_t load_le(const char* p, std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    v |= std::uint64_t{static_cast<unsigned char>(p[i])} << (8 * i);
  }
  return v;
}

// Reads the fields of one payload. Every read is bounds-checked and returns an
// error instead of reading past the end. Failure is sticky: after the first
// failed read every later read fails with the same error, so a parser may read a
// run of fields and check status() once before using any of them.
class PayloadReader {
 public:
  explicit PayloadReader(std::string_view payload) : payload_(payload) {}

  Result<std::uint8_t> u8();
  Result<std::uint16_t> u16();
  Result<std::uint32_t> u24();
  Result<std::uint32_t> u32();
  Result<std::uint64_t> u64();
  // Length-encoded integer. 0xFB (NULL in a text row) and 0xFF (never a valid
  // prefix) are errors here.
  Result<std::uint64_t> lenenc_int();
  Result<std::string_view> lenenc_str();
  // A text-resultset cell: 0xFB is SQL NULL (nullopt), anything else a lenenc string.
  Result<std::optional<std::string_view>> lenenc_str_or_null();
  // NUL-terminated; the NUL is consumed and not returned.
  Result<std::string_view> cstr();
  Result<std::string_view> bytes(std::size_t n);
  Result<void> skip(std::size_t n);
  // Everything left (string<EOF> in the protocol docs); never fails.
  std::string_view rest();

  std::optional<std::uint8_t> peek() const;
  bool at_end() const { return pos_ == payload_.size(); }
  std::size_t remaining() const { return payload_.size() - pos_; }
  std::size_t position() const { return pos_; }
  // The first error, or success if every read so far succeeded.
  Result<void> status() const;
  bool failed() const { return error_.has_value(); }

 private:
  Error fail(std::string message);
  Result<std::uint64_t> fixed(std::size_t n);

  std::string_view payload_;
  std::size_t pos_ = 0;
  std::optional<Error> error_;
};

// Writers: append to out.
void put_u8(std::string& out, std::uint8_t v);
void put_u16(std::string& out, std::uint16_t v);
void put_u24(std::string& out, std::uint32_t v);
void put_u32(std::string& out, std::uint32_t v);
void put_u64(std::string& out, std::uint64_t v);
void put_lenenc_int(std::string& out, std::uint64_t v);
void put_lenenc_str(std::string& out, std::string_view s);
void put_cstr(std::string& out, std::string_view s);  // s must not contain NUL
// Bytes put_lenenc_int writes for v: 1, 3, 4 or 9.
std::size_t lenenc_int_size(std::uint64_t v);

}  // namespace shardgate::mysql
