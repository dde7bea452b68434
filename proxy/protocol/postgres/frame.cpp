#include "proxy/protocol/postgres/frame.h"

namespace shardgate::pg {

FrameDecode decode_frame(std::string_view buf, std::uint32_t max_size) {
  FrameDecode out;
  if (buf.size() < 5) return out;
  const std::uint32_t len = read_u32(buf.data() + 1);
  if (len < 4) {
    out.status = DecodeStatus::Error;
    out.error = "invalid message length " + std::to_string(len);
    return out;
  }
  if (std::uint64_t{len} + 1 > max_size) {  // no wrap-around when max_size is 0
    out.status = DecodeStatus::Error;
    out.error = "message of " + std::to_string(len) + " bytes is over max_message_size (" +
                std::to_string(max_size) + ")";
    return out;
  }
  if (buf.size() < std::size_t{len} + 1) return out;
  out.status = DecodeStatus::Frame;
  out.frame.type = buf[0];
  out.frame.body = buf.substr(5, len - 4);
  out.frame.size = std::size_t{len} + 1;
  return out;
}

StartupDecode decode_startup(std::string_view buf) {
  StartupDecode out;
  if (buf.size() < 8) return out;
  const std::uint32_t len = read_u32(buf.data());
  if (len < 8 || len > kMaxStartupPacket) {
    out.status = DecodeStatus::Error;
    out.error = "invalid startup packet length " + std::to_string(len);
    return out;
  }
  if (buf.size() < len) return out;
  out.status = DecodeStatus::Frame;
  out.packet.code = read_u32(buf.data() + 4);
  out.packet.body = buf.substr(8, len - 8);
  out.packet.size = len;
  return out;
}

}  // namespace shardgate::pg
