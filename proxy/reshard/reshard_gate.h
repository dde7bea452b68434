// Where a session waits during a resharding cutover: a round that would
// write into the moving slice, and holds no such writes yet, is refused by
// ReshardWatch::try_enter; it waits here and is routed again, by the topology
// the cutover published. Every other round goes on during the pause: reads
// (the source still holds the rows), writes to other slices and shards, and
// transactions that already hold writes into the slice (the cutover waits for
// them to end).
#pragma once

#include <boost/asio.hpp>
#include <chrono>

#include "proxy/reshard/reshard_watch.h"

namespace shardgate {

inline boost::asio::awaitable<void> wait_out_cutover(const ReshardWatch& watch) {
  namespace asio = boost::asio;
  asio::steady_timer timer(co_await asio::this_coro::executor);
  // The job lifts the pause within its own bound; this one only guards
  // against a job thread that died holding it.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (watch.paused() && std::chrono::steady_clock::now() < give_up) {
    timer.expires_after(std::chrono::milliseconds(1));
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

}  // namespace shardgate
