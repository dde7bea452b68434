// Coroutine helpers that move PostgreSQL frames between a socket and a
// ReadBuffer. Errors come back as values (Result); nothing here throws.
#pragma once

#include <boost/asio.hpp>
#include <chrono>
#include <string>

#include "common/result.h"
#include "proxy/net/buffer.h"
#include "proxy/protocol/postgres/frame.h"

namespace shardgate::net {

namespace asio = boost::asio;
inline constexpr auto use_result = asio::as_tuple(asio::use_awaitable);
inline constexpr std::size_t kReadChunk = 16 * 1024;

// Reads more bytes into buf; an error or EOF becomes an Error.
template <class Stream>
asio::awaitable<Result<void>> read_more(Stream& s, ReadBuffer& buf, std::size_t min_free = kReadChunk) {
  char* p = buf.prepare(min_free);
  auto [ec, n] = co_await s.async_read_some(asio::buffer(p, buf.writable()), use_result);
  if (ec) co_return make_error(ec == asio::error::eof ? "connection closed" : ec.message());
  buf.commit(n);
  co_return Result<void>{};
}

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

template <class Stream>
asio::awaitable<Result<void>> write_all(Stream& s, std::string_view bytes) {
  auto [ec, n] = co_await asio::async_write(s, asio::buffer(bytes.data(), bytes.size()), use_result);
  (void)n;
  if (ec) co_return make_error(ec.message());
  co_return Result<void>{};
}

}  // namespace shardgate::net
