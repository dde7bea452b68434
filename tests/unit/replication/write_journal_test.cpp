// The write journal on a real RocksDB in a temporary directory: entries come
// back per shard in commit order, trimming and dropping touch only the
// shard and the range asked for, and it survives a reopen.
#include "replication/write_journal.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

namespace shardgate::replication {
namespace {

journal::Entry entry(std::uint32_t shard, std::uint64_t seq) {
  journal::Entry e;
  e.set_shard(shard);
  e.set_seq(seq);
  e.set_gtid("0-100-" + std::to_string(seq));
  e.add_statements()->set_sql("INSERT INTO t VALUES (" + std::to_string(seq) + ")");
  return e;
}

std::vector<std::uint64_t> seqs(const Result<std::vector<journal::Entry>>& r) {
  std::vector<std::uint64_t> out;
  if (r)
    for (const auto& e : *r) out.push_back(e.seq());
  return out;
}

class WriteJournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/shardgate-journal-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(WriteJournalTest, EntriesComeBackPerShardInCommitOrder) {
  auto j = WriteJournal::open(dir_);
  ASSERT_TRUE(j) << j.error().message();
  // Appended out of order across sessions; 256 and 255 differ in the low
  // byte only, so byte order must be numeric order.
  for (std::uint64_t seq : {3u, 256u, 1u, 255u, 2u}) ASSERT_TRUE((*j)->append(entry(0, seq)));
  ASSERT_TRUE((*j)->append(entry(1, 2)));
  EXPECT_EQ(seqs((*j)->after(0, 0)), (std::vector<std::uint64_t>{1, 2, 3, 255, 256}));
  EXPECT_EQ(seqs((*j)->after(0, 3)), (std::vector<std::uint64_t>{255, 256}));
  EXPECT_EQ(seqs((*j)->after(1, 0)), (std::vector<std::uint64_t>{2}));
  EXPECT_EQ((*j)->appended(), 6u);
  auto back = (*j)->after(0, 254);
  ASSERT_TRUE(back);
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ(back->front().statements(0).sql(), "INSERT INTO t VALUES (255)");
}

TEST_F(WriteJournalTest, ForgettingTouchesOnlyTheShardAndRangeAsked) {
  auto j = WriteJournal::open(dir_);
  ASSERT_TRUE(j);
  for (std::uint64_t seq = 1; seq <= 6; ++seq) {
    ASSERT_TRUE((*j)->append(entry(0, seq)));
    ASSERT_TRUE((*j)->append(entry(1, seq)));
  }
  ASSERT_TRUE((*j)->forget_through(0, 2));
  EXPECT_EQ(seqs((*j)->after(0, 0)), (std::vector<std::uint64_t>{3, 4, 5, 6}));
  ASSERT_TRUE((*j)->forget_after(0, 4));
  EXPECT_EQ(seqs((*j)->after(0, 0)), (std::vector<std::uint64_t>{3, 4}));
  EXPECT_EQ(seqs((*j)->after(1, 0)), (std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6}));
  ASSERT_TRUE((*j)->forget_through(1, UINT64_MAX));
  EXPECT_TRUE(seqs((*j)->after(1, 0)).empty());
}

TEST_F(WriteJournalTest, SurvivesAReopenAndRefusesASecondOpener) {
  {
    auto j = WriteJournal::open(dir_);
    ASSERT_TRUE(j);
    ASSERT_TRUE((*j)->append(entry(0, 9)));
    auto second = WriteJournal::open(dir_);
    ASSERT_FALSE(second) << "two proxies shared one journal";
    EXPECT_NE(second.error().message().find("each proxy needs its own data_dir"),
              std::string::npos);
  }
  auto j = WriteJournal::open(dir_);
  ASSERT_TRUE(j);
  EXPECT_EQ(seqs((*j)->after(0, 0)), (std::vector<std::uint64_t>{9}));
}

TEST(ReplayMayDiffer, FlagsPerCallAndPerServerValues) {
  EXPECT_TRUE(replay_may_differ("INSERT INTO t VALUES (rand())"));
  EXPECT_TRUE(replay_may_differ("insert into t (id) values (UUID())"));
  EXPECT_TRUE(replay_may_differ("UPDATE t SET at = SYSDATE()"));
  EXPECT_TRUE(replay_may_differ("INSERT INTO t VALUES (@@server_id)"));
  EXPECT_FALSE(replay_may_differ("INSERT INTO t VALUES (1, NOW())"))
      << "NOW() is replayed at the original TIMESTAMP";
  EXPECT_FALSE(replay_may_differ("UPDATE t SET n = n + 1 WHERE id = 7"));
}

}  // namespace
}  // namespace shardgate::replication
