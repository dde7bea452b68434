#include "router/route.h"

#include <gtest/gtest.h>

#include <ostream>
#include <string>

#include "router/classify.h"

namespace shardgate::router {
namespace {

using K = StatementKind;
constexpr TargetRole P = TargetRole::Primary;
constexpr TargetRole R = TargetRole::Replica;

enum Flag : unsigned { kNone = 0, kLock = 1, kFn = 2, kRo = 4, kMulti = 8 };

Statement stmt(StatementKind kind, bool needs_primary, unsigned flags = kNone,
               HintRole hint = HintRole::None) {
  Statement s;
  s.kind = kind;
  s.needs_primary = needs_primary;
  s.locking_read = (flags & kLock) != 0;
  s.writes_in_function = (flags & kFn) != 0;
  s.read_only_txn = (flags & kRo) != 0;
  s.multi_statement = (flags & kMulti) != 0;
  s.hints.role = hint;
  return s;
}

const SessionView kIdle{};
const SessionView kTxn{.in_transaction = true};
const SessionView kRoTxn{.in_transaction = true, .transaction_read_only = true};
const SessionView kRyw{.read_your_writes_pending = true};
const SessionView kOnPrimary{.reads_on_primary = true};
const SessionView kRoTxnRyw{
    .in_transaction = true, .transaction_read_only = true, .read_your_writes_pending = true};
const SessionView kRoTxnOnPrimary{
    .in_transaction = true, .transaction_read_only = true, .reads_on_primary = true};
const SessionView kTxnRyw{.in_transaction = true, .read_your_writes_pending = true};
const SessionView kHot{.hot_key_read = true};
const SessionView kHotOnPrimary{.reads_on_primary = true, .hot_key_read = true};
const SessionView kHotRyw{.read_your_writes_pending = true, .hot_key_read = true};
const SessionView kHotTxn{.in_transaction = true, .reads_on_primary = true, .hot_key_read = true};

constexpr HintRole kHintP = HintRole::Primary;
constexpr HintRole kHintR = HintRole::Replica;

struct RouteRow {
  const char* name;
  Statement statement;
  SessionView session;
  TargetRole role;
  const char* reason;
};

void PrintTo(const RouteRow& row, std::ostream* os) {
  *os << row.name;
}

const char* role_name(TargetRole role) {
  return role == R ? "replica" : "primary";
}

// clang-format off
const RouteRow kRoutes[] = {
    // Outside a transaction.
    {"plain read", stmt(K::Read, false), kIdle, R, "read"},
    {"read needing primary", stmt(K::Read, true), kIdle, P, "needs-primary"},
    {"locking read", stmt(K::Read, true, kLock), kIdle, P, "locking-read"},
    {"writing function", stmt(K::Read, true, kFn), kIdle, P, "writing-function"},
    {"write", stmt(K::Write, true), kIdle, P, "write"},
    {"ddl", stmt(K::Ddl, true), kIdle, P, "ddl"},
    {"multi read with non-read", stmt(K::Read, true, kMulti), kIdle, P, "needs-primary"},
    {"multi of reads", stmt(K::Read, false, kMulti), kIdle, R, "read"},
    {"session set", stmt(K::SessionSet, true), kIdle, P, "session-state"},
    {"session set calling get_lock", stmt(K::SessionSet, true, kFn), kIdle, P, "writing-function"},
    {"utility", stmt(K::Utility, true), kIdle, P, "utility"},
    {"empty", stmt(K::Empty, true), kIdle, P, "empty"},
    {"listen", stmt(K::Listen, true), kIdle, P, "listen"},
    {"prepare of a read", stmt(K::Prepare, false), kIdle, P, "prepared-statement"},
    {"execute", stmt(K::Execute, true), kIdle, P, "prepared-statement"},
    {"deallocate", stmt(K::Deallocate, true), kIdle, P, "prepared-statement"},
    {"commit outside txn", stmt(K::Commit, true), kIdle, P, "transaction-control"},
    {"rollback outside txn", stmt(K::Rollback, true), kIdle, P, "transaction-control"},
    {"savepoint outside txn", stmt(K::Savepoint, true), kIdle, P, "transaction-control"},
    // Session state.
    {"read with pending writes", stmt(K::Read, false), kRyw, P, "read-your-writes"},
    {"read, reads on primary", stmt(K::Read, false), kOnPrimary, P, "reads-on-primary"},
    {"hot-key read", stmt(K::Read, false), kHot, R, "hot-key"},
    {"hot-key read beats reads-on-primary", stmt(K::Read, false), kHotOnPrimary, R, "hot-key"},
    {"hot-key read keeps read-your-writes", stmt(K::Read, false), kHotRyw, P, "read-your-writes"},
    {"hot-key read in a transaction", stmt(K::Read, false), kHotTxn, P, "transaction"},
    {"hot-key locking read", stmt(K::Read, false, kLock), kHotOnPrimary, P, "locking-read"},
    {"hot-key session-bound read", stmt(K::Read, true), kHot, P, "needs-primary"},
    {"cache fill", stmt(K::Read, false), SessionView{.cache_fill = true}, P, "cache-fill"},
    {"cache fill of a hot key", stmt(K::Read, false),
     SessionView{.hot_key_read = true, .cache_fill = true}, P, "cache-fill"},
    {"write with pending writes", stmt(K::Write, true), kRyw, P, "write"},
    {"session-bound read, reads on primary", stmt(K::Read, true), kOnPrimary, P, "reads-on-primary"},
    // Hints.
    {"primary hint on read", stmt(K::Read, false, kNone, kHintP), kIdle, P, "hint"},
    {"primary hint on write", stmt(K::Write, true, kNone, kHintP), kIdle, P, "hint"},
    {"replica hint on read", stmt(K::Read, false, kNone, kHintR), kIdle, R, "hint"},
    {"replica hint on session-bound read", stmt(K::Read, true, kNone, kHintR), kIdle, R, "hint"},
    {"replica hint beats read-your-writes", stmt(K::Read, false, kNone, kHintR), kRyw, R, "hint"},
    {"replica hint beats reads-on-primary", stmt(K::Read, false, kNone, kHintR), kOnPrimary, R, "hint"},
    {"replica hint inside txn", stmt(K::Read, false, kNone, kHintR), kTxn, R, "hint"},
    {"replica hint on write", stmt(K::Write, true, kNone, kHintR), kIdle, P, "write-ignores-hint"},
    {"replica hint on ddl", stmt(K::Ddl, true, kNone, kHintR), kIdle, P, "write-ignores-hint"},
    {"replica hint on locking read", stmt(K::Read, true, kLock, kHintR), kIdle, P, "write-ignores-hint"},
    {"replica hint on writing function", stmt(K::Read, true, kFn, kHintR), kIdle, P, "write-ignores-hint"},
    {"replica hint on write in RO txn", stmt(K::Write, true, kNone, kHintR), kRoTxn, P, "write-ignores-hint"},
    {"replica hint on multi with non-read", stmt(K::Read, true, kMulti, kHintR), kIdle, P, "needs-primary"},
    {"replica hint on session set", stmt(K::SessionSet, true, kNone, kHintR), kIdle, P, "session-state"},
    {"replica hint on utility", stmt(K::Utility, true, kNone, kHintR), kIdle, P, "utility"},
    {"replica hint on execute", stmt(K::Execute, true, kNone, kHintR), kIdle, P, "prepared-statement"},
    {"replica hint on begin read only", stmt(K::Begin, false, kRo, kHintR), kIdle, R, "read-only-transaction"},
    // BEGIN.
    {"begin", stmt(K::Begin, true), kIdle, P, "transaction-control"},
    {"begin read only", stmt(K::Begin, false, kRo), kIdle, R, "read-only-transaction"},
    {"begin read only, pending writes", stmt(K::Begin, false, kRo), kRyw, P, "read-your-writes"},
    {"begin read only, reads on primary", stmt(K::Begin, false, kRo), kOnPrimary, P, "reads-on-primary"},
    {"begin read only in multi", stmt(K::Begin, true, kRo | kMulti), kIdle, P, "transaction-control"},
    {"begin inside txn", stmt(K::Begin, true), kTxn, P, "transaction"},
    // Read-write transaction: everything on the primary.
    {"read in txn", stmt(K::Read, false), kTxn, P, "transaction"},
    {"write in txn", stmt(K::Write, true), kTxn, P, "write"},
    {"commit in txn", stmt(K::Commit, true), kTxn, P, "transaction"},
    {"rollback in txn", stmt(K::Rollback, true), kTxn, P, "transaction"},
    {"savepoint in txn", stmt(K::Savepoint, true), kTxn, P, "transaction"},
    {"set local in txn", stmt(K::Utility, true), kTxn, P, "transaction"},
    {"read in txn with pending writes", stmt(K::Read, false), kTxnRyw, P, "transaction"},
    // Read-only transaction: follows the transaction to the replica.
    {"read in RO txn", stmt(K::Read, false), kRoTxn, R, "read-only-transaction"},
    {"session-bound read in RO txn", stmt(K::Read, true), kRoTxn, R, "read-only-transaction"},
    {"commit in RO txn", stmt(K::Commit, true), kRoTxn, R, "read-only-transaction"},
    {"rollback in RO txn", stmt(K::Rollback, true), kRoTxn, R, "read-only-transaction"},
    {"savepoint in RO txn", stmt(K::Savepoint, true), kRoTxn, R, "read-only-transaction"},
    {"set in RO txn", stmt(K::SessionSet, true), kRoTxn, R, "read-only-transaction"},
    {"begin in RO txn", stmt(K::Begin, true), kRoTxn, R, "read-only-transaction"},
    {"write in RO txn", stmt(K::Write, true), kRoTxn, P, "write"},
    {"ddl in RO txn", stmt(K::Ddl, true), kRoTxn, P, "ddl"},
    {"locking read in RO txn", stmt(K::Read, true, kLock), kRoTxn, P, "locking-read"},
    {"writing function in RO txn", stmt(K::Read, true, kFn), kRoTxn, P, "writing-function"},
    {"utility in RO txn", stmt(K::Utility, true), kRoTxn, P, "utility"},
    {"execute in RO txn", stmt(K::Execute, true), kRoTxn, P, "prepared-statement"},
    {"multi with non-read in RO txn", stmt(K::Read, true, kMulti), kRoTxn, P, "needs-primary"},
    {"read in RO txn, pending writes", stmt(K::Read, false), kRoTxnRyw, P, "read-your-writes"},
    {"read in RO txn, reads on primary", stmt(K::Read, false), kRoTxnOnPrimary, P, "reads-on-primary"},
    {"commit in RO txn, reads on primary", stmt(K::Commit, true), kRoTxnOnPrimary, P, "reads-on-primary"},
};
// clang-format on

class RouteTable : public ::testing::TestWithParam<RouteRow> {};

TEST_P(RouteTable, RoleAndReason) {
  const RouteRow& row = GetParam();
  const RouteDecision d = route(row.statement, row.session);
  EXPECT_STREQ(role_name(d.role), role_name(row.role));
  EXPECT_STREQ(d.reason, row.reason);
}

INSTANTIATE_TEST_SUITE_P(Rules, RouteTable, ::testing::ValuesIn(kRoutes));

// A BEGIN READ ONLY and the statements of its transaction must agree on the
// server, for every combination of session flags.
TEST(Route, ReadOnlyTransactionStaysWhereItBegan) {
  const Statement begin_ro = stmt(K::Begin, false, kRo);
  for (int bits = 0; bits < 4; ++bits) {
    SessionView outside{.read_your_writes_pending = (bits & 1) != 0,
                        .reads_on_primary = (bits & 2) != 0};
    SessionView inside = outside;
    inside.in_transaction = true;
    inside.transaction_read_only = true;
    const TargetRole where = route(begin_ro, outside).role;
    for (K kind : {K::Read, K::Commit, K::Rollback, K::Savepoint}) {
      EXPECT_EQ(route(stmt(kind, kind != K::Read), inside).role, where) << bits;
    }
  }
}

// End to end: text in, decision out. Whatever the hint and the session, no
// write reaches a replica.
TEST(Route, WritesNeverReachAReplica) {
  const char* const kWrites[] = {
      "/* shardgate:replica */ DELETE FROM t",
      "/* shardgate:replica */ SELECT * FROM t FOR UPDATE",
      "/* shardgate:replica */ SELECT nextval('s')",
      "/* shardgate:replica */ WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
      "/* shardgate:replica */ SELECT 1; DELETE FROM t",
      "/* shardgate:replica */ EXPLAIN ANALYZE DELETE FROM t",
      "/* shardgate:replica */ SELECT * INTO t2 FROM t",
      R"(/* shardgate:replica */ SELECT 'a\', ' ; DELETE FROM t; -- ')",
      "/* shardgate:replica */ SELECT 'unterminated",
      "/* shardgate:replica */ CREATE TABLE t (a int)",
      "/* shardgate:replica */ SELECT 1; SET search_path = x",
  };
  const SessionView sessions[] = {kIdle, kTxn, kRoTxn, kRyw, kOnPrimary};
  for (const char* sql : kWrites) {
    const Statement s = analyze(sql, Dialect::Postgres, AnalyzeOptions{});
    for (const SessionView& session : sessions) {
      EXPECT_EQ(route(s, session).role, P) << sql;
    }
  }
}

TEST(Route, EndToEndExamples) {
  const AnalyzeOptions options;
  const auto decide = [&](const char* sql, Dialect dialect, const SessionView& session) {
    return route(analyze(sql, dialect, options), session);
  };
  EXPECT_EQ(decide("SELECT * FROM t WHERE id = $1", Dialect::Postgres, kIdle).role, R);
  EXPECT_EQ(decide("/* shardgate:primary */ SELECT 1", Dialect::Postgres, kIdle).role, P);
  EXPECT_EQ(decide("/* shardgate:replica */ SELECT 1", Dialect::Postgres, kTxn).role, R);
  EXPECT_EQ(decide("SELECT LAST_INSERT_ID()", Dialect::Mysql, kIdle).role, P);
  EXPECT_EQ(decide("SELECT * FROM t LOCK IN SHARE MODE", Dialect::Mysql, kIdle).role, P);
  EXPECT_EQ(decide("START TRANSACTION READ ONLY", Dialect::Mysql, kIdle).role, R);
  EXPECT_EQ(decide("SELECT 1", Dialect::Mysql, kRyw).role, P);
  EXPECT_STREQ(decide("/* shardgate:replica */ UPDATE t SET a = 1", Dialect::Mysql, kIdle).reason,
               "write-ignores-hint");
}

}  // namespace
}  // namespace shardgate::router
