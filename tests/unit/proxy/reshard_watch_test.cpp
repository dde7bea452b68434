// The data path's side of resharding: keys written into the moving slice
// reach the job only when the writer's transaction ends, and the cutover's
// drain waits for every session that still holds some.
#include "proxy/reshard/reshard_watch.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

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
  ASSERT_TRUE(rs.note_moved(watch, keys({"7"})));
  rs.round_done(false, now, /*transaction_open=*/true);
  EXPECT_EQ(watch.dirty_keys(), 0u) << "not before the commit";
  EXPECT_EQ(watch.holding(), 1);
  EXPECT_FALSE(watch.wait_drained(std::chrono::milliseconds(5)));
  ASSERT_TRUE(rs.note_moved(watch, keys({"8"})));
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
    ASSERT_TRUE(rs.note_moved(watch, w));
    rs.round_done(false, std::chrono::steady_clock::now(), true);
    EXPECT_EQ(watch.holding(), 1);
  }
  EXPECT_EQ(watch.holding(), 0);
  EXPECT_TRUE(watch.is_dirty(3, "anything")) << "the whole table is dirty";
}

TEST(ReshardWatch, DrainWakesWhenTheLastHolderLeaves) {
  ReshardWatch watch;
  watch.start({});
  ASSERT_TRUE(watch.try_enter());
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

// The cutover pauses, then waits for the holders to drain: a session that
// routed by the old topology but had not entered yet must not write to the
// source behind the drain. It is refused and routes again after the pause;
// a session already holding writes goes on (the drain waits for it).
TEST(ReshardWatch, APauseRefusesNewHoldersButNotCurrentOnes) {
  ReshardWatch watch;
  watch.start({});
  session::RoutingState holder, late;
  const auto now = std::chrono::steady_clock::now();
  ASSERT_TRUE(holder.note_moved(watch, keys({"1"})));
  holder.round_done(false, now, /*transaction_open=*/true);
  watch.set_paused(true);
  EXPECT_FALSE(late.note_moved(watch, keys({"2"}))) << "entering after the pause";
  EXPECT_TRUE(late.note_moved(watch, {})) << "a round that moves nothing is not held";
  EXPECT_TRUE(holder.note_moved(watch, keys({"3"}))) << "its transaction goes on";
  EXPECT_EQ(watch.holding(), 1);
  holder.round_done(false, now, /*transaction_open=*/false);
  EXPECT_TRUE(watch.wait_drained(std::chrono::milliseconds(5)));
  EXPECT_FALSE(watch.is_dirty(0, "2"));
  watch.set_paused(false);
  EXPECT_TRUE(late.note_moved(watch, keys({"2"})));
  late.round_done(false, now);
  EXPECT_TRUE(watch.is_dirty(0, "2"));
}

// Many sessions entering while the cutover pauses and drains: every entry
// is either counted by the drain or refused, never in between.
TEST(ReshardWatch, NoEntrySlipsPastTheDrain) {
  ReshardWatch watch;
  watch.start({});
  std::atomic<bool> stop{false};
  std::atomic<int> slipped{0};
  std::atomic<bool> drained{false};
  std::vector<std::thread> sessions;
  for (int t = 0; t < 4; ++t)
    sessions.emplace_back([&] {
      while (!stop) {
        if (!watch.try_enter()) continue;
        if (drained) ++slipped;  // entered after the drain returned
        watch.leave(keys({"k"}));
      }
    });
  for (int round = 0; round < 200; ++round) {
    watch.set_paused(true);
    ASSERT_TRUE(watch.wait_drained(std::chrono::seconds(5)));
    drained = true;
    std::this_thread::sleep_for(std::chrono::microseconds(50));
    drained = false;
    watch.set_paused(false);
  }
  stop = true;
  for (auto& t : sessions) t.join();
  EXPECT_EQ(slipped.load(), 0);
}

// A round routed while no job watched holds the next job's snapshot back
// until its answer is in: its write may still be on the way to the source.
TEST(ReshardWatch, ARoundRoutedBeforeTheJobHoldsItUntilItsAnswer) {
  ReshardWatch watch;
  session::RoutingState before;
  EXPECT_EQ(before.watch_slice(watch), nullptr);
  EXPECT_EQ(before.watch_slice(watch), nullptr) << "routed again in the same round";
  watch.start({});
  std::int64_t left = 0;
  EXPECT_FALSE(watch.wait_unwatched_rounds(std::chrono::milliseconds(5), left));
  EXPECT_EQ(left, 1) << "one count for the round, however often it was routed";
  session::RoutingState after;
  EXPECT_NE(after.watch_slice(watch), nullptr);
  after.round_done(false, std::chrono::steady_clock::now());
  EXPECT_FALSE(watch.wait_unwatched_rounds(std::chrono::milliseconds(5), left));
  before.round_done(false, std::chrono::steady_clock::now(), true);
  EXPECT_TRUE(watch.wait_unwatched_rounds(std::chrono::milliseconds(5), left));
  EXPECT_EQ(left, 0);
}

// A refused round (the proxy answered) and a closed session count no more.
TEST(ReshardWatch, ARoundEndedWithoutAnAnswerStopsCounting) {
  ReshardWatch watch;
  std::int64_t left = 0;
  {
    session::RoutingState closed;
    EXPECT_EQ(closed.watch_slice(watch), nullptr);
    session::RoutingState refused;
    EXPECT_EQ(refused.watch_slice(watch), nullptr);
    refused.round_over();
    EXPECT_FALSE(watch.wait_unwatched_rounds(std::chrono::milliseconds(1), left));
    EXPECT_EQ(left, 1);
  }
  EXPECT_TRUE(watch.wait_unwatched_rounds(std::chrono::milliseconds(1), left));
}

// Sessions on several threads routing while a job starts: when the wait
// returns, no round that saw no slice is still running.
TEST(ReshardWatch, NoUnwatchedRoundOutlivesTheWait) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    ReshardWatch watch;
    std::atomic<bool> stop{false};
    std::atomic<int> unwatched_running{0};
    std::vector<std::thread> sessions;
    for (int t = 0; t < 4; ++t)
      sessions.emplace_back([&] {
        while (!stop) {
          session::RoutingState rs;
          if (!rs.watch_slice(watch)) {
            ++unwatched_running;
            std::this_thread::yield();
            --unwatched_running;
          }
          rs.round_done(false, std::chrono::steady_clock::now());
        }
      });
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    watch.start({});
    std::int64_t left = 0;
    ASSERT_TRUE(watch.wait_unwatched_rounds(std::chrono::seconds(5), left));
    const int running = unwatched_running.load();
    stop = true;
    for (auto& t : sessions) t.join();
    ASSERT_EQ(running, 0) << "attempt " << attempt;
  }
}

TEST(ReshardWatch, NothingMovedHoldsNothing) {
  ReshardWatch watch;
  session::RoutingState rs;
  EXPECT_TRUE(rs.note_moved(watch, MovedWrites{}));
  rs.round_done(false, std::chrono::steady_clock::now(), true);
  EXPECT_EQ(watch.holding(), 0);
}

}  // namespace
}  // namespace shardgate
