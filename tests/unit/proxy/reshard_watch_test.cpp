// The data path's side of resharding: keys written into the moving slice
// reach the job only when the writer's transaction ends, and the cutover's
// drain waits for every session that still holds some.
#include "proxy/reshard/reshard_watch.h"

#include <gtest/gtest.h>

#include <thread>

#include "proxy/session/routing_state.h"

namespace shardgate {
namespace {

MovedWrites keys(std::initializer_list<const char*> values) {
  MovedWrites w;
  for (const char* v : values) w.keys.push_back({0, v});
  return w;
}

TEST(ReshardWatch, KeysArriveWhenTheTransactionEnds) {
  ReshardWatch watch;
  watch.start({});
  session::RoutingState rs;
  const auto now = std::chrono::steady_clock::now();
  rs.note_moved(watch, keys({"7"}));
  rs.round_done(false, now, /*transaction_open=*/true);
  EXPECT_EQ(watch.dirty_keys(), 0u) << "not before the commit";
  EXPECT_EQ(watch.holding(), 1);
  EXPECT_FALSE(watch.wait_drained(std::chrono::milliseconds(5)));
  rs.note_moved(watch, keys({"8"}));
  rs.round_done(false, now, /*transaction_open=*/false);
  EXPECT_EQ(watch.holding(), 0);
  EXPECT_TRUE(watch.wait_drained(std::chrono::milliseconds(5)));
  EXPECT_TRUE(watch.is_dirty(0, "7"));
  EXPECT_TRUE(watch.is_dirty(0, "8"));
  EXPECT_FALSE(watch.is_dirty(1, "7"));
  auto taken = watch.take();
  EXPECT_EQ(taken.keys.size(), 2u);
  EXPECT_EQ(watch.dirty_keys(), 0u);
}

TEST(ReshardWatch, AClosedSessionHandsOverWhatItHeld) {
  ReshardWatch watch;
  watch.start({});
  {
    session::RoutingState rs;
    MovedWrites w;
    w.tables.push_back(3);  // a write without a key
    rs.note_moved(watch, w);
    rs.round_done(false, std::chrono::steady_clock::now(), true);
    EXPECT_EQ(watch.holding(), 1);
  }
  EXPECT_EQ(watch.holding(), 0);
  EXPECT_TRUE(watch.is_dirty(3, "anything")) << "the whole table is dirty";
}

TEST(ReshardWatch, DrainWakesWhenTheLastHolderLeaves) {
  ReshardWatch watch;
  watch.start({});
  watch.enter();
  watch.set_paused(true);
  EXPECT_TRUE(watch.paused());
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    watch.leave(keys({"1"}));
  });
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(watch.wait_drained(std::chrono::seconds(5)));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  writer.join();
  watch.stop();
  EXPECT_FALSE(watch.paused()) << "stopping lifts the pause";
  EXPECT_EQ(watch.slice(), nullptr);
  EXPECT_EQ(watch.dirty_keys(), 0u);
}

TEST(ReshardWatch, NothingMovedHoldsNothing) {
  ReshardWatch watch;
  session::RoutingState rs;
  rs.note_moved(watch, MovedWrites{});
  rs.round_done(false, std::chrono::steady_clock::now(), true);
  EXPECT_EQ(watch.holding(), 0);
}

}  // namespace
}  // namespace shardgate
