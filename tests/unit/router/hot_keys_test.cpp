// Hot-key detection against ground truth: exact decayed counts computed
// beside the sketch, on Zipfian and shifting workloads.
#include "router/hot_keys.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <unordered_map>

#include "tests/unit/router/shard_fixture.h"

namespace shardgate::router {
namespace {

using testing::four_shards;

KeyValue int_key(std::int64_t v) {
  KeyValue k;
  k.integer = v;
  return k;
}

// Keys 0..n-1 with Zipf(s) probabilities.
class Zipf {
 public:
  Zipf(std::size_t n, double s) : cdf_(n) {
    double sum = 0;
    for (std::size_t i = 0; i < n; ++i) cdf_[i] = sum += 1.0 / std::pow(double(i + 1), s);
    for (double& c : cdf_) c /= sum;
  }
  std::size_t operator()(std::mt19937_64& rng) {
    const double u = std::uniform_real_distribution<double>(0, 1)(rng);
    return std::min<std::size_t>(std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin(),
                                 cdf_.size() - 1);
  }

 private:
  std::vector<double> cdf_;
};

// Exact decayed counts of a stream, the ground truth the sketch
// approximates: forward decay again (weights exp(t / tau), landmark 0), so a
// share is a ratio of two sums and nothing is rescaled; fine for tests of
// under a minute.
class Truth {
 public:
  explicit Truth(double tau) : tau_(tau) {}
  void add(std::uint64_t id, double now) {
    const double w = std::exp(now / tau_);
    counts_[id] += w;
    total_ += w;
  }
  double share(std::uint64_t id) const {
    auto it = counts_.find(id);
    return it == counts_.end() || total_ == 0 ? 0 : it->second / total_;
  }
  const std::unordered_map<std::uint64_t, double>& counts() const { return counts_; }
  double total() const { return total_; }

 private:
  double tau_;
  double total_ = 0;
  std::unordered_map<std::uint64_t, double> counts_;
};

HotKeyReport evaluate(const HotKeyRecorder& recorder, double now, const HotKeySettings& settings,
                      const HotKeyThresholds& thresholds, const HotKeyReport& previous) {
  std::vector<std::vector<HotKeyRecorder::ShardSample>> samples{recorder.sample(now)};
  return evaluate_hot_keys(samples, settings, thresholds, four_shards(), previous, 20);
}

TEST(DecayingTopK, CountsExactlyWhileThereIsRoom) {
  DecayingTopK top(8, 1e9);  // no decay to speak of
  for (int i = 0; i < 100; ++i) top.add(1, 0, "one", 0);
  for (int i = 0; i < 50; ++i) top.add(2, 0, "two", 0);
  top.add_unkeyed(0);
  const auto items = top.items(0);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].key, "one");
  EXPECT_NEAR(items[0].count, 100, 1e-6);
  EXPECT_EQ(items[0].error, 0);
  EXPECT_NEAR(items[1].count, 50, 1e-6);
  EXPECT_NEAR(top.total(0), 151, 1e-6);
  EXPECT_EQ(top.floor(0), 0) << "not full yet";
}

TEST(DecayingTopK, BoundsHoldForEveryTrackedKeyAndNoHeavyKeyIsMissed) {
  const std::size_t capacity = 32;
  DecayingTopK top(capacity, 1e9);
  std::mt19937_64 rng(7);
  Zipf zipf(5000, 0.9);
  std::map<std::uint64_t, double> truth;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const std::uint64_t id = zipf(rng) * 0x9e3779b97f4a7c15ULL;
    truth[id] += 1;
    top.add(id, 0, std::to_string(id), 0);
  }
  std::set<std::uint64_t> tracked;
  for (const auto& item : top.items(0)) {
    tracked.insert(item.id);
    const double real = truth[item.id];
    EXPECT_GE(item.count + 1e-6, real) << "the count never underestimates";
    EXPECT_LE(item.count - item.error, real + 1e-6) << "the error bounds the overestimate";
  }
  EXPECT_EQ(tracked.size(), capacity);
  for (const auto& [id, count] : truth) {
    if (count > double(n) / capacity) {
      EXPECT_TRUE(tracked.count(id)) << "a heavy key is tracked";
    }
  }
}

TEST(DecayingTopK, MemoryStaysFixedWithTenMillionDistinctKeys) {
  DecayingTopK top(256, 1.0);
  const std::size_t before = top.memory_bytes();
  EXPECT_LE(before, 64u * 1024) << "the per-shard budget of the issue";
  double now = 0;
  for (std::uint64_t i = 0; i < 10'000'000; ++i) {
    now += 1e-5;  // 100k statements a second for 100 s: the weights are rescaled many times
    top.add((i + 1) * 0x9e3779b97f4a7c15ULL, 0, "k", now);
  }
  EXPECT_EQ(top.memory_bytes(), before);
  EXPECT_EQ(top.size(), 256u);
  // Rates survive the rescaling: 100k/s with tau 1 s decays to about 100k.
  EXPECT_NEAR(top.total(now), 100000, 1000);
}

TEST(DecayingTopK, CountsDecayToRates) {
  DecayingTopK top(16, 1.0);
  // 1000 statements a second on one key for 10 s.
  for (int i = 0; i < 10000; ++i) top.add(1, 0, "k", i / 1000.0);
  EXPECT_NEAR(top.items(10.0)[0].count, 1000, 20) << "rate x tau";
  EXPECT_NEAR(top.items(11.0)[0].count, 1000 / std::exp(1.0), 20) << "a second later: /e";
}

// Zipf over 100k keys, 10k statements a second: every key above 1% of the
// traffic is reported hot (recall), and no key reported is far below it.
// Flatter skews spread more traffic over the tail, where the sketch's error
// comes from.
class ZipfianWorkload : public ::testing::TestWithParam<double> {};

TEST_P(ZipfianWorkload, RecallAndPrecisionAgainstExactCounts) {
  HotKeySettings settings;  // 256 keys per shard, tau 1 s
  HotKeyThresholds thresholds;
  thresholds.share = 0.01;
  thresholds.min_rate = 0;
  HotKeyRecorder recorder(settings);
  const Topology topology = four_shards();
  Truth truth(settings.window_seconds);
  std::mt19937_64 rng(11);
  Zipf zipf(100000, GetParam());
  double now = 0;
  HotKeyReport report;
  int relevant = 0, found = 0, reported = 0, wrong = 0;
  for (int i = 0; i < 400000; ++i) {
    now = i / 10000.0;
    const KeyValue key = int_key(static_cast<std::int64_t>(zipf(rng)));
    const std::uint32_t shard = *shard_of(topology.sharding.tables[0], key, topology);
    recorder.record_key(shard, 0, key, now);
    truth.add(hot_key_id(0, key), now);
    if (i % 2500 == 2499) {  // a report every 0.25 s, as the proxy makes them
      report = evaluate(recorder, now, settings, thresholds, report);
      if (now < 5) continue;  // let the window fill
      std::set<std::uint64_t> hot(report.hot.begin(), report.hot.end());
      for (const auto& [id, count] : truth.counts()) {
        if (count / truth.total() >= thresholds.share) {
          ++relevant;
          found += hot.count(id);
        }
      }
      for (std::uint64_t id : report.hot) {
        ++reported;
        // Hysteresis keeps a key hot down to 80% of the threshold; below
        // half of it would be a detection error.
        if (truth.share(id) < thresholds.share * 0.5) ++wrong;
      }
    }
  }
  ASSERT_GT(relevant, 50);
  const double recall = double(found) / relevant;
  EXPECT_GE(recall, 0.95);
  EXPECT_EQ(wrong, 0) << "of " << reported << " reports";
  EXPECT_LE(report.max_shard_memory_bytes, 64u * 1024);
  std::cout << "zipf s=" << GetParam() << ": recall " << recall << " over " << relevant
            << " (key, report) pairs; " << reported << " hot reports, " << wrong << " wrong\n";
}

INSTANTIATE_TEST_SUITE_P(HotKeys, ZipfianWorkload, ::testing::Values(0.8, 1.05, 1.3));

// A key that becomes hot is reported within 2 s, the one it replaces cools
// down, and each change is reported once.
TEST(HotKeys, ShiftingWorkloadReportsTheNewKeyWithinTwoSeconds) {
  HotKeySettings settings;
  HotKeyThresholds thresholds;  // 5% of traffic, at least 50/s
  HotKeyRecorder recorder(settings);
  const Topology topology = four_shards();
  std::mt19937_64 rng(3);
  std::uniform_int_distribution<std::int64_t> cold(1000, 1000000);
  std::uniform_real_distribution<double> coin(0, 1);
  const KeyValue first = int_key(7), second = int_key(8);
  HotKeyReport report;
  std::optional<double> first_hot, first_cooled, second_hot;
  int became = 0;
  for (int i = 0; i < 30 * 5000; ++i) {  // 5000 statements a second for 30 s
    const double now = i / 5000.0;
    const bool shifted = now >= 15;
    KeyValue key = int_key(cold(rng));
    if (coin(rng) < 0.2) key = shifted ? second : first;  // 20% of statements
    recorder.record_key(*shard_of(topology.sharding.tables[0], key, topology), 0, key, now);
    if (i % 1250 != 1249) continue;
    report = evaluate(recorder, now, settings, thresholds, report);
    for (const HotKey& k : report.became_hot) {
      ++became;
      if (k.key == "7" && !first_hot) first_hot = now;
      if (k.key == "8" && !second_hot) second_hot = now;
      EXPECT_EQ(k.table, "users");
    }
    for (const HotKey& k : report.cooled)
      if (k.key == "7") first_cooled = now;
  }
  ASSERT_TRUE(first_hot && second_hot && first_cooled);
  EXPECT_LE(*first_hot, 2.0);
  EXPECT_LE(*second_hot - 15, 2.0) << "reported " << *second_hot - 15 << " s after it got hot";
  EXPECT_LE(*first_cooled - 15, 5.0);
  EXPECT_EQ(became, 2) << "no key flaps";
  ASSERT_EQ(report.hot.size(), 1u);
  EXPECT_EQ(report.hot[0], hot_key_id(0, second));
}

TEST(HotKeys, MergesWorkersAndMeasuresShardSkew) {
  HotKeySettings settings;
  settings.window_seconds = 1e6;  // counts, not rates, for exact figures
  HotKeyRecorder a(settings), b(settings);
  for (int i = 0; i < 300; ++i) a.record_key(0, 0, int_key(1), 0);
  for (int i = 0; i < 300; ++i) b.record_key(0, 0, int_key(1), 0);
  for (int i = 0; i < 400; ++i) b.record_unkeyed(1, 0);
  std::vector<std::vector<HotKeyRecorder::ShardSample>> samples{a.sample(0), b.sample(0)};
  HotKeyThresholds thresholds;
  thresholds.min_rate = 0;
  const auto report = evaluate_hot_keys(samples, settings, thresholds, four_shards(), {}, 10);
  ASSERT_EQ(report.keys.size(), 1u);
  EXPECT_NEAR(report.keys[0].share, 0.6, 1e-9);
  EXPECT_NEAR(report.keys[0].shard_share, 1.0, 1e-9);
  EXPECT_EQ(report.keys[0].table, "users");
  EXPECT_EQ(report.keys[0].key, "1");
  ASSERT_EQ(report.shards.size(), 4u);
  EXPECT_NEAR(report.shards[1].share, 0.4, 1e-9);
  EXPECT_NEAR(report.skew, 0.6 * 4, 1e-9) << "busiest shard over the mean of four";
  EXPECT_EQ(report.hot.size(), 1u);
}

TEST(HotKeys, RateThresholdAndMinimumRate) {
  HotKeySettings settings;
  settings.window_seconds = 1.0;
  HotKeyRecorder recorder(settings);
  // One key, 100% share, but only 10 statements a second.
  for (int i = 0; i < 100; ++i) recorder.record_key(0, 0, int_key(5), i / 10.0);
  HotKeyThresholds thresholds;  // min_rate 50
  EXPECT_TRUE(evaluate(recorder, 9.9, settings, thresholds, {}).hot.empty())
      << "share alone is not enough at a trickle";
  thresholds.rate = 5;
  EXPECT_EQ(evaluate(recorder, 9.9, settings, thresholds, {}).hot.size(), 1u);
}

TEST(HotKeys, KeyIdentity) {
  KeyValue text;
  text.type = KeyType::Text;
  text.text = "7";
  EXPECT_EQ(hot_key_id(0, int_key(7)), hot_key_id(0, int_key(7)));
  EXPECT_NE(hot_key_id(0, int_key(7)), hot_key_id(1, int_key(7))) << "tables differ";
  EXPECT_NE(hot_key_id(0, int_key(7)), hot_key_id(0, text)) << "integer 7 is not text '7'";
  EXPECT_EQ(key_label(int_key(-42)), "-42");
  DecayingTopK top(4, 1.0);
  top.add(1, 0, std::string(100, 'x'), 0);
  EXPECT_EQ(top.items(0)[0].key, std::string(DecayingTopK::kKeyBytes, 'x') + "...");
}

}  // namespace
}  // namespace shardgate::router
