#include "proxy/protocol/mysql/packet.h"

#include <algorithm>
#include <utility>

namespace shardgate::mysql {
namespace {

std::uint32_t header_length(std::string_view buf, std::size_t at) {
  return static_cast<std::uint32_t>(load_le(buf.data() + at, 3));
}

std::string too_large(std::uint64_t size, std::uint32_t max_size) {
  return "packet payload of " + std::to_string(size) + " bytes is over max_packet_size (" +
         std::to_string(max_size) + ")";
}

}  // namespace

PacketDecode decode_packet(std::string_view buf, std::uint32_t max_size) {
  PacketDecode out;
  if (buf.size() < kPacketHeaderSize) return out;
  const std::uint32_t len = header_length(buf, 0);
  if (len > max_size) {
    out.status = DecodeStatus::Error;
    out.error = too_large(len, max_size);
    return out;
  }
  if (buf.size() - kPacketHeaderSize < len) return out;
  out.status = DecodeStatus::Frame;
  out.seq = static_cast<std::uint8_t>(buf[3]);
  out.payload = buf.substr(kPacketHeaderSize, len);
  out.size = kPacketHeaderSize + len;
  return out;
}

MessageDecode decode_message(std::string_view buf, std::uint32_t max_size) {
  MessageDecode out;
  std::size_t pos = 0;
  std::uint64_t total = 0;
  for (std::size_t n = 0;; ++n) {
    if (buf.size() - pos < kPacketHeaderSize) return out;
    const std::uint32_t len = header_length(buf, pos);
    const auto seq = static_cast<std::uint8_t>(buf[pos + 3]);
    if (n == 0) {
      out.seq = seq;
    } else if (seq != static_cast<std::uint8_t>(out.last_seq + 1)) {
      out.status = DecodeStatus::Error;
      out.error = "continuation packet has sequence id " + std::to_string(seq) + ", expected " +
                  std::to_string(static_cast<std::uint8_t>(out.last_seq + 1));
      return out;
    }
    out.last_seq = seq;
    total += len;
    if (total > max_size) {
      out.status = DecodeStatus::Error;
      out.error = too_large(total, max_size);
      return out;
    }
    if (buf.size() - pos - kPacketHeaderSize < len) return out;
    pos += kPacketHeaderSize + len;
    if (len < kMaxPacketPayload) {
      out.status = DecodeStatus::Frame;
      out.packets = n + 1;
      out.payload_size = static_cast<std::size_t>(total);
      out.size = pos;
      return out;
    }
  }
}

std::string_view message_payload(std::string_view buf, const MessageDecode& message,
                                 std::string& storage) {
  if (message.status != DecodeStatus::Frame) return {};
  if (message.packets == 1) return buf.substr(kPacketHeaderSize, message.payload_size);
  storage = assemble_payload(buf, message);
  return storage;
}

std::string assemble_payload(std::string_view buf, const MessageDecode& message) {
  std::string out;
  if (message.status != DecodeStatus::Frame || buf.size() < message.size) return out;
  out.reserve(message.payload_size);
  std::size_t pos = 0;
  while (pos < message.size && buf.size() - pos >= kPacketHeaderSize) {
    const std::uint32_t len = header_length(buf, pos);
    out.append(buf.substr(pos + kPacketHeaderSize, len));
    pos += kPacketHeaderSize + len;
  }
  return out;
}

void append_packets(std::string& out, std::string_view payload, std::uint8_t& seq) {
  std::size_t offset = 0;
  for (;;) {
    const std::size_t chunk = std::min<std::size_t>(payload.size() - offset, kMaxPacketPayload);
    put_u24(out, static_cast<std::uint32_t>(chunk));
    put_u8(out, seq++);
    out.append(payload.substr(offset, chunk));
    offset += chunk;
    // A full packet promises a continuation, so it is followed by another one
    // even when nothing is left (an empty packet closes the message).
    if (chunk < kMaxPacketPayload) return;
  }
}

std::string packetize(std::string_view payload, std::uint8_t seq) {
  std::string out;
  out.reserve(payload.size() + kPacketHeaderSize);
  append_packets(out, payload, seq);
  return out;
}

// ---------------------------------------------------------------- PayloadReader

Error PayloadReader::fail(std::string message) {
  if (!error_) error_ = make_error(std::move(message));
  return *error_;
}

Result<void> PayloadReader::status() const {
  if (error_) return *error_;
  return {};
}

Result<std::string_view> PayloadReader::bytes(std::size_t n) {
  if (error_) return *error_;
  if (remaining() < n) {
    return fail("packet truncated: need " + std::to_string(n) + " bytes at offset " +
                std::to_string(pos_) + ", have " + std::to_string(remaining()));
  }
  auto s = payload_.substr(pos_, n);
  pos_ += n;
  return s;
}

Result<void> PayloadReader::skip(std::size_t n) {
  auto b = bytes(n);
  if (!b) return b.error();
  return {};
}

Result<std::uint64_t> PayloadReader::fixed(std::size_t n) {
  auto b = bytes(n);
  if (!b) return b.error();
  return load_le(b->data(), n);
}

Result<std::uint8_t> PayloadReader::u8() {
  auto v = fixed(1);
  if (!v) return v.error();
  return static_cast<std::uint8_t>(*v);
}

Result<std::uint16_t> PayloadReader::u16() {
  auto v = fixed(2);
  if (!v) return v.error();
  return static_cast<std::uint16_t>(*v);
}

Result<std::uint32_t> PayloadReader::u24() {
  auto v = fixed(3);
  if (!v) return v.error();
  return static_cast<std::uint32_t>(*v);
}

Result<std::uint32_t> PayloadReader::u32() {
  auto v = fixed(4);
  if (!v) return v.error();
  return static_cast<std::uint32_t>(*v);
}

Result<std::uint64_t> PayloadReader::u64() {
  return fixed(8);
}

Result<std::uint64_t> PayloadReader::lenenc_int() {
  const std::size_t at = pos_;
  auto first = u8();
  if (!first) return first.error();
  switch (*first) {
    case 0xFB:
      return fail("unexpected NULL marker (0xFB) for a length-encoded integer at offset " +
                  std::to_string(at));
    case 0xFC:
      return fixed(2);
    case 0xFD:
      return fixed(3);
    case 0xFE:
      return fixed(8);
    case 0xFF:
      return fail("invalid length-encoded integer prefix 0xFF at offset " + std::to_string(at));
    default:
      return std::uint64_t{*first};
  }
}

Result<std::string_view> PayloadReader::lenenc_str() {
  auto len = lenenc_int();
  if (!len) return len.error();
  // Compare before narrowing: on a 32-bit size_t a 64-bit length must not wrap.
  if (*len > remaining()) {
    return fail("length-encoded string of " + std::to_string(*len) + " bytes at offset " +
                std::to_string(pos_) + " runs past the end of the packet (" +
                std::to_string(remaining()) + " bytes left)");
  }
  return bytes(static_cast<std::size_t>(*len));
}

Result<std::optional<std::string_view>> PayloadReader::lenenc_str_or_null() {
  if (error_) return *error_;
  if (peek() == std::uint8_t{0xFB}) {
    ++pos_;
    return std::optional<std::string_view>{};
  }
  auto s = lenenc_str();
  if (!s) return s.error();
  return std::optional<std::string_view>{*s};
}

Result<std::string_view> PayloadReader::cstr() {
  if (error_) return *error_;
  const auto nul = payload_.find('\0', pos_);
  if (nul == std::string_view::npos) {
    return fail("NUL-terminated string at offset " + std::to_string(pos_) + " has no terminator");
  }
  auto s = payload_.substr(pos_, nul - pos_);
  pos_ = nul + 1;
  return s;
}

std::string_view PayloadReader::rest() {
  if (error_) return {};
  auto s = payload_.substr(pos_);
  pos_ = payload_.size();
  return s;
}

std::optional<std::uint8_t> PayloadReader::peek() const {
  if (error_ || at_end()) return std::nullopt;
  return static_cast<std::uint8_t>(payload_[pos_]);
}

// ---------------------------------------------------------------- writers

namespace {
void put_le(std::string& out, std::uint64_t v, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
}  // namespace

void put_u8(std::string& out, std::uint8_t v) {
  out.push_back(static_cast<char>(v));
}
void put_u16(std::string& out, std::uint16_t v) {
  put_le(out, v, 2);
}
void put_u24(std::string& out, std::uint32_t v) {
  put_le(out, v, 3);
}
void put_u32(std::string& out, std::uint32_t v) {
  put_le(out, v, 4);
}
void put_u64(std::string& out, std::uint64_t v) {
  put_le(out, v, 8);
}

std::size_t lenenc_int_size(std::uint64_t v) {
  if (v < 251) return 1;
  if (v < (1u << 16)) return 3;
  if (v < (1u << 24)) return 4;
  return 9;
}

void put_lenenc_int(std::string& out, std::uint64_t v) {
  switch (lenenc_int_size(v)) {
    case 1:
      put_u8(out, static_cast<std::uint8_t>(v));
      break;
    case 3:
      put_u8(out, 0xFC);
      put_le(out, v, 2);
      break;
    case 4:
      put_u8(out, 0xFD);
      put_le(out, v, 3);
      break;
    default:
      put_u8(out, 0xFE);
      put_le(out, v, 8);
      break;
  }
}

void put_lenenc_str(std::string& out, std::string_view s) {
  put_lenenc_int(out, s.size());
  out.append(s);
}

void put_cstr(std::string& out, std::string_view s) {
  out.append(s);
  out.push_back('\0');
}

}  // namespace shardgate::mysql
