// Reads whole MySQL messages (one packet, or a run of 16 MB packets and the
// shorter one that ends it) from a stream into a ReadBuffer.
#pragma once

#include "proxy/net/io.h"
#include "proxy/protocol/mysql/packet.h"

namespace shardgate::net {

// Waits until a whole logical message is at the head of buf and returns where
// it is; mysql::message_payload() gives its payload. The caller consumes it.
template <class Stream>
asio::awaitable<Result<mysql::MessageDecode>> read_message(Stream& s, ReadBuffer& buf,
                                                           std::uint32_t max_size) {
  for (;;) {
    auto d = mysql::decode_message(buf.readable(), max_size);
    if (d.status == mysql::DecodeStatus::Frame) co_return d;
    if (d.status == mysql::DecodeStatus::Error) co_return make_error(d.error);
    auto r = co_await read_more(s, buf);
    if (!r) co_return r.error();
  }
}

}  // namespace shardgate::net
