// PostgreSQL v3 framing, sans-io. A regular message is one type byte, a
// big-endian int32 length that counts itself, and the body. The startup phase
// has no type byte. decode_* look at a buffer and say: a whole frame, need more
// bytes, or a protocol error; they never consume or copy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace shardgate::pg {

enum class DecodeStatus { Frame, NeedMore, Error };

struct Frame {
  char type = 0;
  std::string_view body;   // without type and length
  std::size_t size = 0;    // bytes of the whole frame in the buffer
};

struct FrameDecode {
  DecodeStatus status = DecodeStatus::NeedMore;
  Frame frame;
  std::string error;  // set when status == Error
};

// Decodes the regular message at the start of buf. max_size bounds the whole
// message; larger lengths (or lengths under 4) are errors.
FrameDecode decode_frame(std::string_view buf, std::uint32_t max_size);

// Startup-phase packets: length + 32-bit code (protocol version or request code).
inline constexpr std::uint32_t kProtocolVersion3 = 196608;  // 3.0
inline constexpr std::uint32_t kSslRequestCode = 80877103;
inline constexpr std::uint32_t kGssEncRequestCode = 80877104;
inline constexpr std::uint32_t kCancelRequestCode = 80877102;
inline constexpr std::uint32_t kMaxStartupPacket = 10000;

struct StartupPacket {
  std::uint32_t code = 0;
  std::string_view body;  // after the code
  std::size_t size = 0;
};

struct StartupDecode {
  DecodeStatus status = DecodeStatus::NeedMore;
  StartupPacket packet;
  std::string error;
};

StartupDecode decode_startup(std::string_view buf);

// Big-endian helpers on raw bytes.
inline std::uint32_t read_u32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (std::uint32_t{u[0]} << 24) | (std::uint32_t{u[1]} << 16) | (std::uint32_t{u[2]} << 8) |
         std::uint32_t{u[3]};
}
inline std::uint16_t read_u16(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<std::uint16_t>((u[0] << 8) | u[1]);
}

}  // namespace shardgate::pg
