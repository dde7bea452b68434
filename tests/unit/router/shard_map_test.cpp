#include "router/shard_map.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

#include "tests/unit/router/shard_fixture.h"

namespace shardgate::router {
namespace {

using testing::ok;

ShardedTable int_table() {
  ShardedTable t;
  t.name = "users";
  t.column = "id";
  return t;
}

TEST(ParseInt64, AcceptsWhatIntegerInputAccepts) {
  EXPECT_EQ(parse_int64("42"), 42);
  EXPECT_EQ(parse_int64(" -7 "), -7);
  EXPECT_EQ(parse_int64("+7"), 7);
  EXPECT_EQ(parse_int64("007"), 7);
  EXPECT_EQ(parse_int64("9223372036854775807"), INT64_MAX);
  EXPECT_EQ(parse_int64("-9223372036854775808"), INT64_MIN);
  EXPECT_FALSE(parse_int64("9223372036854775808"));
  EXPECT_FALSE(parse_int64(""));
  EXPECT_FALSE(parse_int64("+"));
  EXPECT_FALSE(parse_int64("++1"));
  EXPECT_FALSE(parse_int64("1.5"));
  EXPECT_FALSE(parse_int64("1e3"));
  EXPECT_FALSE(parse_int64("abc"));
  EXPECT_FALSE(parse_int64("1 2"));
}

TEST(KeyFromText, IntegerKeysAreCanonical) {
  const auto t = int_table();
  EXPECT_EQ(key_hash(ok(key_from_text(t, "7"))), key_hash(ok(key_from_text(t, "007"))));
  EXPECT_EQ(key_hash(ok(key_from_text(t, "+7"))), key_hash(ok(key_from_text(t, " 7"))));
  EXPECT_NE(key_hash(ok(key_from_text(t, "7"))), key_hash(ok(key_from_text(t, "8"))));
  auto bad = key_from_text(t, "seven");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("users.id is an integer column"), std::string::npos);
}

TEST(KeyFromText, TextKeysAreBytes) {
  ShardedTable t = int_table();
  t.key_type = KeyType::Text;
  EXPECT_NE(key_hash(ok(key_from_text(t, "7"))), key_hash(ok(key_from_text(t, "007"))));
  EXPECT_EQ(ok(key_from_text(t, "a@b")).text, "a@b");
}

// The hash decides where rows live: these values are a contract with data
// already stored (XXH3-64, seed 0, big-endian int64 / raw text bytes).
TEST(KeyHash, IsStable) {
  KeyValue zero;
  EXPECT_EQ(key_hash(zero), 0xc77b3abb6f87acd9ULL);
  KeyValue one;
  one.integer = 1;
  EXPECT_EQ(key_hash(one), 0xf36b4a1a44f78bf3ULL);
  KeyValue text;
  text.type = KeyType::Text;
  text.text = "";
  EXPECT_EQ(key_hash(text), 0x2d06800538d394c2ULL);
}

TEST(KeyRange, ParsesVitessNotation) {
  auto all = parse_key_range("-");
  ASSERT_TRUE(all);
  EXPECT_EQ(all->start, 0u);
  EXPECT_TRUE(all->end_is_max);
  auto low = parse_key_range("-80");
  ASSERT_TRUE(low);
  EXPECT_EQ(low->end, 0x8000000000000000ULL);
  EXPECT_FALSE(low->end_is_max);
  auto mid = parse_key_range("40-c0");
  ASSERT_TRUE(mid);
  EXPECT_EQ(mid->start, 0x4000000000000000ULL);
  EXPECT_EQ(mid->end, 0xc000000000000000ULL);
  EXPECT_TRUE(mid->contains(0x4000000000000000ULL));
  EXPECT_FALSE(mid->contains(0xc000000000000000ULL));
  auto high = parse_key_range("C0-");
  ASSERT_TRUE(high);
  EXPECT_TRUE(high->contains(UINT64_MAX));
  EXPECT_FALSE(parse_key_range("80"));
  EXPECT_FALSE(parse_key_range("80-40"));
  EXPECT_FALSE(parse_key_range("8g-"));
  EXPECT_FALSE(parse_key_range("-0123456789abcdef0"));
  EXPECT_FALSE(parse_key_range("1-2-3"));
}

TEST(KeyRange, FormatsBack) {
  for (const char* text : {"-", "-80", "40-80", "c0-", "0123-4567"}) {
    auto r = parse_key_range(text);
    ASSERT_TRUE(r) << text;
    EXPECT_EQ(format_key_range(*r), text);
  }
}

TEST(KeyRange, EvenSplitsTile) {
  for (std::uint32_t n = 1; n <= 8; ++n) {
    const auto ranges = even_key_ranges(n);
    ASSERT_EQ(ranges.size(), n);
    EXPECT_TRUE(check_key_ranges_tile(ranges)) << n;
  }
  EXPECT_EQ(format_key_range(even_key_ranges(2)[0]), "-80");
  EXPECT_EQ(format_key_range(even_key_ranges(4)[3]), "c0-");
}

TEST(KeyRange, TilingErrorsSayWhere) {
  std::vector<KeyRange> gap = {ok(parse_key_range("-40")), ok(parse_key_range("80-"))};
  auto r = check_key_ranges_tile(gap);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("gap"), std::string::npos);
  std::vector<KeyRange> overlap = {ok(parse_key_range("-80")), ok(parse_key_range("40-"))};
  r = check_key_ranges_tile(overlap);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("overlaps"), std::string::npos);
  std::vector<KeyRange> short_end = {ok(parse_key_range("-80"))};
  EXPECT_FALSE(check_key_ranges_tile(short_end));
  std::vector<KeyRange> early_end = {ok(parse_key_range("-")), ok(parse_key_range("80-"))};
  EXPECT_FALSE(check_key_ranges_tile(early_end));
}

TEST(ShardOf, HashSpreadsEvenly) {
  const Topology t = testing::four_shards();
  const ShardedTable& users = t.sharding.tables[0];
  std::map<std::uint32_t, int> counts;
  for (int k = 0; k < 40000; ++k) {
    KeyValue key;
    key.integer = k;
    counts[ok(shard_of(users, key, t))]++;
  }
  ASSERT_EQ(counts.size(), 4u);
  for (auto [shard, n] : counts) {
    EXPECT_GT(n, 9400) << shard;
    EXPECT_LT(n, 10600) << shard;
  }
}

TEST(ShardOf, RangeRules) {
  const Topology t = testing::four_shards();
  const ShardedTable& events = t.sharding.tables[3];
  auto at = [&](std::int64_t k) {
    KeyValue key;
    key.integer = k;
    return ok(shard_of(events, key, t));
  };
  EXPECT_EQ(at(INT64_MIN), 0u);
  EXPECT_EQ(at(99), 0u);
  EXPECT_EQ(at(100), 1u);
  EXPECT_EQ(at(199), 1u);
  EXPECT_EQ(at(200), 2u);
  EXPECT_EQ(at(INT64_MAX), 2u);
  ShardedTable holes = events;
  holes.ranges = {{true, 0, true, 10, 1}};
  KeyValue key;
  key.integer = 10;
  auto r = shard_of(holes, key, t);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("no range of events.id holds the key 10"), std::string::npos);
}

}  // namespace
}  // namespace shardgate::router
