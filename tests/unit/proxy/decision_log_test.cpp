// The coordinator's decision log: names unique across restarts and scoped to
// one data_dir, decisions durable until forgotten.
#include "proxy/txn/decision_log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <set>

namespace shardgate::txn {
namespace {

class DecisionLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "decision-log-" + std::to_string(::getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

bool plain_name(const std::string& gid) {
  for (char c : gid)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

TEST_F(DecisionLogTest, NamesAreUniquePlainAndCarryTheNodePrefix) {
  std::set<std::string> seen;
  std::string prefix;
  {
    auto log = DecisionLog::open(dir_);
    ASSERT_TRUE(log) << log.error().message();
    prefix = (*log)->gid_prefix();
    EXPECT_EQ(prefix.rfind("sg_", 0), 0u);
    for (int i = 0; i < 1000; ++i) {
      const std::string gid = (*log)->next_gid();
      EXPECT_EQ(gid.rfind(prefix, 0), 0u) << gid;
      EXPECT_LE(gid.size(), 48u) << gid;
      EXPECT_TRUE(plain_name(gid)) << gid;
      EXPECT_TRUE(seen.insert(gid).second) << gid;
    }
  }
  ::usleep(2000);  // a later start: another incarnation in the names
  auto again = DecisionLog::open(dir_);
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ((*again)->gid_prefix(), prefix) << "the node id belongs to the data_dir";
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(seen.insert((*again)->next_gid()).second);
}

TEST_F(DecisionLogTest, AnotherDataDirIsAnotherNode) {
  auto a = DecisionLog::open(dir_ + "/a");
  auto b = DecisionLog::open(dir_ + "/b");
  ASSERT_TRUE(a && b);
  EXPECT_NE((*a)->gid_prefix(), (*b)->gid_prefix());
}

TEST_F(DecisionLogTest, DecisionsSurviveReopenUntilForgotten) {
  std::string kept;
  std::string gone;
  {
    auto log = DecisionLog::open(dir_);
    ASSERT_TRUE(log) << log.error().message();
    kept = (*log)->next_gid();
    gone = (*log)->next_gid();
    ASSERT_TRUE((*log)->record_commit(kept, {"s0", "s2"}));
    ASSERT_TRUE((*log)->record_commit(gone, {"s1", "s3"}));
    ASSERT_TRUE((*log)->forget(gone));
    EXPECT_FALSE((*log)->decided_commit((*log)->next_gid()));
  }
  auto log = DecisionLog::open(dir_);
  ASSERT_TRUE(log) << log.error().message();
  EXPECT_TRUE((*log)->decided_commit(kept));
  EXPECT_FALSE((*log)->decided_commit(gone));
  auto all = (*log)->decisions();
  ASSERT_TRUE(all) << all.error().message();
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].gid, kept);
  ASSERT_EQ((*all)[0].record.shards_size(), 2);
  EXPECT_EQ((*all)[0].record.shards(1), "s2");
  EXPECT_GT((*all)[0].record.decided_unix_ms(), 0);
}

}  // namespace
}  // namespace shardgate::txn
