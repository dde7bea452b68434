// Reads whole PostgreSQL frames from a socket into a ReadBuffer.
#pragma once

#include <boost/asio.hpp>
#include <chrono>
#include <string>

#include "common/result.h"
#include "proxy/net/buffer.h"
#include "proxy/net/io.h"
#include "proxy/protocol/postgres/frame.h"

namespace shardgate::net {

// Waits until a whole regular message is at the head of buf; returns a view of
// it (valid until buf is consumed or read into again). The caller consumes it.
template <class Stream>
asio::awaitable<Result<pg::Frame>> read_frame(Stream& s, ReadBuffer& buf, std::uint32_t max_size) {
  for (;;) {
    auto d = pg::decode_frame(buf.readable(), max_size);
    if (d.status == pg::DecodeStatus::Frame) co_return d.frame;
    if (d.status == pg::DecodeStatus::Error) co_return make_error(d.error);
    std::size_t want = kReadChunk;
    if (buf.size() >= 5) {
      const std::size_t total = std::size_t{pg::read_u32(buf.readable().data() + 1)} + 1;
      if (total > buf.size() && total - buf.size() > want) want = total - buf.size();
    }
    auto r = co_await read_more(s, buf, want);
    if (!r) co_return r.error();
  }
}

}  // namespace shardgate::net
