// The two-phase coordinator's decisions, table by table: which legs prepare,
// when the decision is written, what rolls back when a shard refuses, and
// what is left for the resolver. The Runner stands in for the servers and
// records every statement each leg was sent.
#include "proxy/txn/two_phase.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <map>

namespace shardgate::txn {
namespace {

struct FakeLegs {
  // statements sent to each leg, in order
  std::map<std::size_t, std::vector<std::string>> sent;
  // answer for a statement that starts with this prefix on this leg
  std::function<LegAnswer(std::size_t leg, const std::string& sql)> answer =
      [](std::size_t, const std::string& sql) {
        LegAnswer a;
        a.ok = true;
        a.tag = sql.starts_with("PREPARE") ? "PREPARE TRANSACTION" : "COMMIT";
        return a;
      };
};

asio::awaitable<std::vector<LegAnswer>> run_fake(FakeLegs& legs, Steps steps) {
  std::vector<LegAnswer> out;
  for (const auto& [leg, sqls] : steps) {
    LegAnswer last;
    last.ok = true;
    for (const auto& sql : sqls) {
      legs.sent[leg].push_back(sql);
      last = legs.answer(leg, sql);
      if (!last.ok) break;
    }
    out.push_back(last);
  }
  co_return out;
}

// A free function, not a capturing coroutine lambda (g++ 12 mishandles those).
asio::awaitable<void> end_into(EndResult& out, const std::vector<Leg>& legs, bool commit,
                               DecisionLog* log, const TwoPhaseSql& sql, FakeLegs& fake) {
  auto run = [&fake](const Steps& steps) { return run_fake(fake, steps); };
  out = co_await end_transaction(legs, commit, log, sql, run, std::nullopt);
}

class TwoPhaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "two-phase-" + std::to_string(::getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    auto opened = DecisionLog::open(dir_);
    ASSERT_TRUE(opened) << opened.error().message();
    log_ = std::move(*opened);
  }
  void TearDown() override {
    log_.reset();
    std::filesystem::remove_all(dir_);
  }

  EndResult end(const std::vector<Leg>& legs, bool commit,
                const TwoPhaseSql& sql = postgres_two_phase()) {
    asio::io_context io;
    EndResult result;
    asio::co_spawn(io, end_into(result, legs, commit, log_.get(), sql, fake_), asio::detached);
    io.run();
    return result;
  }

  std::string dir_;
  std::unique_ptr<DecisionLog> log_;
  FakeLegs fake_;
};

TEST_F(TwoPhaseTest, OneWriterCommitsInOnePhase) {
  const EndResult r = end({{"s0", false}, {"s1", true}, {"s2", false}}, true);
  EXPECT_EQ(r.outcome, Outcome::Committed);
  EXPECT_FALSE(r.two_phase);
  for (std::size_t leg = 0; leg < 3; ++leg)
    EXPECT_EQ(fake_.sent[leg], std::vector<std::string>{"COMMIT"}) << leg;
  EXPECT_TRUE(log_->decisions()->empty());
}

TEST_F(TwoPhaseTest, TwoWritersPrepareDecideThenCommitPrepared) {
  bool decided_before_commit = false;
  fake_.answer = [&](std::size_t, const std::string& sql) {
    if (sql.starts_with("COMMIT PREPARED")) {
      auto all = log_->decisions();
      decided_before_commit = all && all->size() == 1;
    }
    LegAnswer a;
    a.ok = true;
    a.tag = sql.starts_with("PREPARE") ? "PREPARE TRANSACTION" : "COMMIT";
    return a;
  };
  const EndResult r = end({{"s0", true}, {"s1", false}, {"s3", true}}, true);
  EXPECT_EQ(r.outcome, Outcome::Committed);
  EXPECT_TRUE(r.two_phase);
  EXPECT_TRUE(decided_before_commit) << "phase two began before the decision was durable";
  const std::string q = "'" + r.gid + "'";
  EXPECT_EQ(fake_.sent[0],
            (std::vector<std::string>{"PREPARE TRANSACTION " + q, "COMMIT PREPARED " + q}));
  EXPECT_EQ(fake_.sent[1], std::vector<std::string>{"COMMIT"});  // a reader: one phase
  EXPECT_EQ(fake_.sent[2],
            (std::vector<std::string>{"PREPARE TRANSACTION " + q, "COMMIT PREPARED " + q}));
  EXPECT_TRUE(log_->decisions()->empty()) << "a finished decision is forgotten";
  EXPECT_EQ(r.gid.rfind(log_->live_prefix(), 0), 0u);
}

TEST_F(TwoPhaseTest, ARefusedPrepareRollsBackThePreparedAndDecidesNothing) {
  fake_.answer = [](std::size_t leg, const std::string& sql) {
    LegAnswer a;
    a.ok = !(leg == 1 && sql.starts_with("PREPARE"));
    a.error = a.ok ? "" : "could not serialize access";
    a.tag = sql.starts_with("PREPARE") ? "PREPARE TRANSACTION" : "ROLLBACK";
    return a;
  };
  const EndResult r = end({{"s0", true}, {"s1", true}, {"s2", true}}, true);
  EXPECT_EQ(r.outcome, Outcome::Failed);
  EXPECT_EQ(r.failed_shard, "s1");
  EXPECT_EQ(r.failure.error, "could not serialize access");
  const std::string q = "'" + r.gid + "'";
  EXPECT_EQ(fake_.sent[0],
            (std::vector<std::string>{"PREPARE TRANSACTION " + q, "ROLLBACK PREPARED " + q}));
  EXPECT_EQ(fake_.sent[1], std::vector<std::string>{"PREPARE TRANSACTION " + q});
  EXPECT_EQ(fake_.sent[2],
            (std::vector<std::string>{"PREPARE TRANSACTION " + q, "ROLLBACK PREPARED " + q}));
  EXPECT_TRUE(log_->decisions()->empty());
}

TEST_F(TwoPhaseTest, PrepareOfAnAbortedTransactionCountsAsRefused) {
  // PostgreSQL answers PREPARE TRANSACTION of a failed transaction with ROLLBACK.
  fake_.answer = [](std::size_t leg, const std::string& sql) {
    LegAnswer a;
    a.ok = true;
    a.tag = leg == 0 && sql.starts_with("PREPARE") ? "ROLLBACK" : "PREPARE TRANSACTION";
    return a;
  };
  const EndResult r = end({{"s0", true}, {"s1", true}}, true);
  EXPECT_EQ(r.outcome, Outcome::Failed);
  EXPECT_EQ(r.failed_shard, "s0");
  EXPECT_EQ(fake_.sent[1].back(), "ROLLBACK PREPARED '" + r.gid + "'");
}

TEST_F(TwoPhaseTest, AFailedSecondPhaseKeepsTheDecisionForTheResolver) {
  fake_.answer = [](std::size_t leg, const std::string& sql) {
    LegAnswer a;
    a.ok = !(leg == 1 && sql.starts_with("COMMIT PREPARED"));
    a.lost = !a.ok;
    a.tag = "PREPARE TRANSACTION";
    return a;
  };
  const EndResult r = end({{"s0", true}, {"s1", true}}, true);
  EXPECT_EQ(r.outcome, Outcome::Committed) << "the decision stands";
  EXPECT_TRUE(r.decision_pending);
  EXPECT_TRUE(log_->decided_commit(r.gid));
}

TEST_F(TwoPhaseTest, RollbackEndsEveryLegAndMySqlUsesXa) {
  const EndResult r = end({{"s0", true}, {"s1", true}}, false, mysql_two_phase());
  EXPECT_EQ(r.outcome, Outcome::RolledBack);
  const std::string q = "'" + r.gid + "'";
  for (std::size_t leg = 0; leg < 2; ++leg)
    EXPECT_EQ(fake_.sent[leg], (std::vector<std::string>{"XA END " + q, "XA ROLLBACK " + q}));
  fake_.sent.clear();
  const EndResult c = end({{"s0", true}, {"s1", true}, {"s2", false}}, true, mysql_two_phase());
  EXPECT_EQ(c.outcome, Outcome::Committed);
  const std::string g = "'" + c.gid + "'";
  EXPECT_EQ(fake_.sent[0],
            (std::vector<std::string>{"XA END " + g, "XA PREPARE " + g, "XA COMMIT " + g}));
  EXPECT_EQ(fake_.sent[2],
            (std::vector<std::string>{"XA END " + g, "XA COMMIT " + g + " ONE PHASE"}));
}

TEST_F(TwoPhaseTest, ReadOnlyTransactionsNeverPrepare) {
  const EndResult r = end({{"s0", true}, {"s1", true}}, true, one_phase_only());
  EXPECT_EQ(r.outcome, Outcome::Committed);
  EXPECT_FALSE(r.two_phase);
  EXPECT_EQ(fake_.sent[0], std::vector<std::string>{"COMMIT"});
}

}  // namespace
}  // namespace shardgate::txn
