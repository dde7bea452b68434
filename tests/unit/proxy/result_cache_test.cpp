#include "proxy/cache/result_cache.h"

#include <gtest/gtest.h>

#include "proxy/session/session_cache.h"

namespace shardgate::cache {
namespace {

using namespace std::chrono_literals;
using Clock = ResultCache::Clock;
const std::vector<std::string> kUsers{"users"};

CachedResult result(std::string bytes) {
  return CachedResult{std::move(bytes), 3};
}

TEST(ResultCache, HitUntilTheTimeToLiveEnds) {
  ResultCache c(1 << 20, 1024);
  const auto t0 = Clock::now();
  EXPECT_FALSE(c.lookup("k", kUsers, t0));
  ASSERT_TRUE(c.insert("k", result("rows"), kUsers, c.stamp(kUsers), 100ms, t0));
  auto hit = c.lookup("k", kUsers, t0 + 99ms);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->bytes, "rows");
  EXPECT_EQ(hit->last_seq, 3);
  EXPECT_FALSE(c.lookup("k", kUsers, t0 + 100ms)) << "expired";
  const auto s = c.stats();
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.misses, 2u);
  EXPECT_EQ(s.expired, 1u);
  EXPECT_EQ(s.entries, 0u);
}

TEST(ResultCache, AWriteToATableDropsItsEntriesOnly) {
  ResultCache c(1 << 20, 1024);
  const auto t0 = Clock::now();
  const std::vector<std::string> orders{"orders"}, both{"orders", "users"};
  c.insert("u", result("u"), kUsers, c.stamp(kUsers), 10s, t0);
  c.insert("o", result("o"), orders, c.stamp(orders), 10s, t0);
  c.insert("j", result("j"), both, c.stamp(both), 10s, t0);
  c.invalidate(kUsers);
  EXPECT_FALSE(c.lookup("u", kUsers, t0));
  EXPECT_FALSE(c.lookup("j", both, t0)) << "a join of a written table";
  EXPECT_TRUE(c.lookup("o", orders, t0));
  c.invalidate_all();
  EXPECT_FALSE(c.lookup("o", orders, t0)) << "a write of unknown tables drops everything";
}

TEST(ResultCache, AnAnswerThatRanAcrossAWriteIsNotKept) {
  ResultCache c(1 << 20, 1024);
  const auto before = c.stamp(kUsers);  // the read starts
  c.invalidate(kUsers);                 // a write commits meanwhile
  EXPECT_FALSE(c.insert("k", result("old rows"), kUsers, before, 10s, Clock::now()));
  EXPECT_FALSE(c.lookup("k", kUsers, Clock::now()));
  EXPECT_EQ(c.stats().refused, 1u);
}

TEST(ResultCache, MemoryBoundEvictsTheLeastRecentlyUsed) {
  ResultCache c(3 * (1000 + 200), 2000);  // room for three entries of 1000 bytes
  const auto t0 = Clock::now();
  for (const char* k : {"a", "b", "c"})
    ASSERT_TRUE(c.insert(k, result(std::string(1000, 'x')), kUsers, c.stamp(kUsers), 10s, t0));
  EXPECT_TRUE(c.lookup("a", kUsers, t0));  // a is now the most recent
  ASSERT_TRUE(c.insert("d", result(std::string(1000, 'x')), kUsers, c.stamp(kUsers), 10s, t0));
  EXPECT_FALSE(c.lookup("b", kUsers, t0)) << "the least recently used went";
  EXPECT_TRUE(c.lookup("a", kUsers, t0));
  EXPECT_TRUE(c.lookup("d", kUsers, t0));
  EXPECT_EQ(c.stats().evictions, 1u);
  EXPECT_LE(c.stats().bytes, 3u * 1200);
  EXPECT_FALSE(c.insert("big", result(std::string(2001, 'x')), kUsers, c.stamp(kUsers), 10s, t0))
      << "larger than max_entry_bytes";
}

TEST(SessionCache, KeepsAnAnswerOnlyWhenItEndsAsExpected) {
  ResultCache c(1 << 20, 1024);
  Metrics m;
  session::SessionCache s(&c, m);
  router::CachePlan plan{1000, kUsers};
  s.begin_fill(plan, "k");
  s.capture("rows");
  s.capture("Z");
  s.finish_fill(true, "Z");
  auto hit = s.lookup(plan, "k");
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->bytes, "rows") << "the tail the hit makes anew is dropped";
  s.begin_fill(plan, "e");
  s.capture("error");
  s.finish_fill(false, "");
  EXPECT_FALSE(s.lookup(plan, "e")) << "a failed answer is not kept";
  s.begin_fill(plan, "big");
  s.capture(std::string(1025, 'x'));
  s.finish_fill(true, "");
  EXPECT_FALSE(s.lookup(plan, "big"));
  EXPECT_EQ(m.result_cache_stores_total.load(), 1u);
}

TEST(SessionCache, WritesInvalidateBeforeAndAfterTheirTransaction) {
  ResultCache c(1 << 20, 1024);
  Metrics m;
  session::SessionCache writer(&c, m);
  router::CachePlan plan{1000, kUsers};
  router::Statement update;
  update.kind = router::StatementKind::Write;
  update.tables = {"public.users"};
  writer.note_statement(update);  // the UPDATE is sent in a transaction
  // A read that ran while the transaction was open kept its (old) answer.
  c.insert("k", result("old"), kUsers, c.stamp(kUsers), 10s, Clock::now());
  writer.round_done(true);
  EXPECT_TRUE(c.lookup("k", kUsers, Clock::now()));
  writer.round_done(false);  // COMMIT answered
  EXPECT_FALSE(c.lookup("k", kUsers, Clock::now())) << "dropped once the write is visible";
}

}  // namespace
}  // namespace shardgate::cache
