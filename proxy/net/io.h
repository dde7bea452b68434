// Coroutine helpers that move bytes between a stream and a ReadBuffer, for
// any protocol. Errors come back as values (Result); nothing here throws.
#pragma once

#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <chrono>
#include <string>
#include <string_view>

#include "common/result.h"
#include "proxy/net/buffer.h"

namespace shardgate::net {

namespace asio = boost::asio;
inline constexpr auto use_result = asio::as_tuple(asio::use_awaitable);
inline constexpr std::size_t kReadChunk = 16 * 1024;

// Reads more bytes into buf; an error or EOF becomes an Error.
template <class Stream>
asio::awaitable<Result<void>> read_more(Stream& s, ReadBuffer& buf,
                                        std::size_t min_free = kReadChunk) {
  char* p = buf.prepare(min_free);
  auto [ec, n] = co_await s.async_read_some(asio::buffer(p, buf.writable()), use_result);
  if (ec) co_return make_error(ec == asio::error::eof ? "connection closed" : ec.message());
  buf.commit(n);
  co_return Result<void>{};
}

template <class Stream>
asio::awaitable<Result<void>> write_all(Stream& s, std::string_view bytes) {
  auto [ec, n] =
      co_await asio::async_write(s, asio::buffer(bytes.data(), bytes.size()), use_result);
  (void)n;
  if (ec) co_return make_error(ec.message());
  co_return Result<void>{};
}

// Runs `work` (connecting and logging in to a server, say) and gives up at
// `timeout`, closing `socket` so that nothing is left half-open.
template <class Socket>
asio::awaitable<Result<void>> with_deadline(Socket& socket, asio::awaitable<Result<void>> work,
                                            std::chrono::milliseconds timeout,
                                            const std::string& what) {
  using namespace asio::experimental::awaitable_operators;
  asio::steady_timer timer(socket.get_executor(), timeout);
  auto outcome = co_await (std::move(work) || timer.async_wait(use_result));
  if (outcome.index() == 1) {
    boost::system::error_code ignored;
    socket.close(ignored);
    co_return make_error("timed out after " + std::to_string(timeout.count()) + " ms " + what);
  }
  co_return std::get<0>(std::move(outcome));
}

}  // namespace shardgate::net
