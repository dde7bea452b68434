// Sharding through shardgate over four real MariaDB shards: COM_QUERY and
// COM_STMT_EXECUTE go to the shard of their key, rows land where the
// documented hash says (the same mapping as PostgreSQL), a transaction over
// several shards commits on all or none (XA two-phase commit, even when the
// proxy is killed between the phases), and what no shard can answer
// correctly is refused with 1235 while the connection keeps working.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "tests/integration/differential.h"
#include "tests/integration/harness.h"
#include "tests/integration/my_harness.h"
#include "tests/integration/shard_harness.h"

namespace shardgate::it {
namespace {

MyConn proxy() {
  return my_connect(kMyShardProxyPort);
}
MyConn direct(int shard) {
  return my_connect(my_shard_primary_port(shard));
}

void ok(MYSQL* c, const std::string& sql) {
  MyError e;
  ASSERT_TRUE(my_scalar(c, sql, &e).has_value()) << sql << ": " << e.code << " " << e.message;
}

std::vector<int> shards_holding_user(std::int64_t id) {
  std::vector<int> found;
  for (int s = 0; s < kShards; ++s) {
    MyConn c = direct(s);
    if (my_scalar(c.get(), "SELECT count(*) FROM users WHERE id = " + std::to_string(id)) != "0")
      found.push_back(s);
  }
  return found;
}

std::pair<std::int64_t, std::int64_t> ids_on_two_shards(std::int64_t from) {
  std::int64_t b = from + 1;
  while (shard_of_user(b) == shard_of_user(from)) ++b;
  return {from, b};
}

class ShardedMy : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // The schema, through the proxy: DDL of a sharded or reference table runs
    // on every shard; logs (unsharded) lives on the default shard only.
    MyConn c = proxy();
    for (const char* sql :
         {"CREATE TABLE users (id BIGINT PRIMARY KEY, name VARCHAR(64), score INT DEFAULT 0)",
          "CREATE TABLE orders (id BIGINT AUTO_INCREMENT PRIMARY KEY, user_id BIGINT NOT NULL, "
          "total INT)",
          "CREATE TABLE accounts (email VARCHAR(128) PRIMARY KEY, balance INT)",
          "CREATE TABLE countries (code CHAR(2) PRIMARY KEY, name VARCHAR(64))",
          "INSERT INTO countries VALUES ('de', 'Germany'), ('fr', 'France')",
          "CREATE TABLE logs (id INT AUTO_INCREMENT PRIMARY KEY, msg TEXT)"}) {
      ok(c.get(), sql);
    }
    for (int s = 0; s < kShards; ++s) {
      MyConn d = direct(s);
      auto tables = my_rows(d.get(),
                            "SELECT count(*) FROM information_schema.tables WHERE table_schema = "
                            "'app' AND table_name IN ('users', 'orders', 'accounts', 'countries', "
                            "'logs')");
      ASSERT_TRUE(tables);
      EXPECT_EQ(*tables, std::vector<std::string>{s == 0 ? "5" : "4"}) << "shard " << s;
    }
  }
};

TEST_F(ShardedMy, KeyedInsertsLandOnTheShardTheHashNames) {
  MyConn c = proxy();
  for (int id = 1; id <= 120; ++id)
    ok(c.get(), "INSERT INTO users (id, name) VALUES (" + std::to_string(id) + ", 'user" +
                    std::to_string(id) + "')");
  std::map<int, int> per_shard;
  int total = 0;
  for (int s = 0; s < kShards; ++s) {
    MyConn d = direct(s);
    auto rows = my_rows(d.get(), "SELECT id FROM users WHERE id BETWEEN 1 AND 120");
    ASSERT_TRUE(rows);
    for (const auto& id : *rows) {
      EXPECT_EQ(shard_of_user(std::stoll(id)), s) << "user " << id << " is on shard " << s;
      per_shard[s]++;
      ++total;
    }
  }
  EXPECT_EQ(total, 120);
  for (int s = 0; s < kShards; ++s) EXPECT_GE(per_shard[s], 12) << "shard " << s;
}

TEST_F(ShardedMy, KeyedReadsAndPreparedStatementsRouteByParameter) {
  MyConn c = proxy();
  for (int id = 1001; id <= 1030; ++id)
    ok(c.get(), "INSERT INTO users (id, name) VALUES (" + std::to_string(id) + ", 'n" +
                    std::to_string(id) + "')");
  Stmt by_id(c.get(), "SELECT name FROM users WHERE id = ?");
  ASSERT_TRUE(by_id.ok()) << by_id.error();
  Stmt put(c.get(), "INSERT INTO users (id, name) VALUES (?, ?)");
  ASSERT_TRUE(put.ok()) << put.error();
  for (int id = 1001; id <= 1030; ++id) {
    const std::string want = "n" + std::to_string(id);
    EXPECT_EQ(my_scalar(c.get(), "SELECT name FROM users WHERE id = " + std::to_string(id)), want);
    EXPECT_EQ(my_scalar(c.get(), "SELECT name FROM users WHERE id = '" + std::to_string(id) + "'"),
              want);
    auto as_int = by_id.run({static_cast<long long>(id)});
    ASSERT_TRUE(as_int) << by_id.error();
    ASSERT_EQ(as_int->size(), 1u) << id;
    EXPECT_EQ((*as_int)[0][0], want);
    auto as_text = by_id.run({std::to_string(id)});
    ASSERT_TRUE(as_text) << by_id.error();
    ASSERT_EQ(as_text->size(), 1u) << id;
    EXPECT_EQ((*as_text)[0][0], want);
  }
  for (long long id = 2001; id <= 2020; ++id) {
    ASSERT_TRUE(put.run({id, std::string("p")})) << put.error();
    EXPECT_EQ(shards_holding_user(id), std::vector<int>{shard_of_user(id)}) << id;
  }
}

TEST_F(ShardedMy, TextKeys) {
  MyConn c = proxy();
  std::set<int> shards;
  for (int i = 0; i < 24; ++i) {
    const std::string email = "u" + std::to_string(i) + "@example.org";
    ok(c.get(),
       "INSERT INTO accounts (email, balance) VALUES ('" + email + "', " + std::to_string(i) + ")");
    shards.insert(shard_of_account(email));
    MyConn d = direct(shard_of_account(email));
    EXPECT_EQ(my_scalar(d.get(), "SELECT balance FROM accounts WHERE email = '" + email + "'"),
              std::to_string(i));
  }
  EXPECT_GE(shards.size(), 3u);
}

// XA transactions the proxy left prepared on a shard.
int xa_prepared_on(int shard) {
  MyConn c = direct(shard);
  auto rows = my_rows(c.get(), "XA RECOVER");
  return rows ? static_cast<int>(rows->size()) : -1;
}

std::string name_of(MYSQL* c, std::int64_t id) {
  return my_scalar(c, "SELECT name FROM users WHERE id = " + std::to_string(id))
      .value_or("<error>");
}

// users.name on the primary of the user's shard (a replica may lag).
std::string committed_name(std::int64_t id) {
  MyConn d = direct(shard_of_user(id));
  return name_of(d.get(), id);
}

// Runs a statement with no result set; the rows it affected, -1 on error.
long long affected(MYSQL* c, const std::string& sql) {
  if (mysql_query(c, sql.c_str()) != 0) {
    ADD_FAILURE() << sql << ": " << mysql_error(c);
    return -1;
  }
  return static_cast<long long>(mysql_affected_rows(c));
}

std::string insert_user(std::int64_t id, const std::string& name) {
  return "INSERT INTO users (id, name) VALUES (" + std::to_string(id) + ", '" + name + "')";
}

TEST_F(ShardedMy, TransactionsStayOnTheirFirstKeysShard) {
  MyConn c = proxy();
  const auto [a, b] = ids_on_two_shards(3001);
  (void)b;
  ok(c.get(), "START TRANSACTION");
  ok(c.get(), insert_user(a, "before"));
  ok(c.get(), "UPDATE users SET name = 'after' WHERE id = " + std::to_string(a));
  EXPECT_EQ(my_scalar(c.get(), "SELECT @@in_transaction"), "1");
  EXPECT_EQ(name_of(c.get(), a), "after");
  ok(c.get(), "COMMIT");
  EXPECT_EQ(my_scalar(c.get(), "SELECT @@in_transaction"), "0");
  EXPECT_EQ(shards_holding_user(a), std::vector<int>{shard_of_user(a)});
  // BEGIN ... ROLLBACK on the key's shard; an empty transaction needs no server.
  ok(c.get(), "BEGIN");
  ok(c.get(), "DELETE FROM users WHERE id = " + std::to_string(a));
  ok(c.get(), "ROLLBACK");
  EXPECT_EQ(shards_holding_user(a), std::vector<int>{shard_of_user(a)});
  ok(c.get(), "BEGIN");
  ok(c.get(), "COMMIT");
  // Inside the transaction (XA on the server) a statement that would commit
  // implicitly fails instead of ending it on one shard.
  ok(c.get(), "BEGIN");
  ok(c.get(), "UPDATE users SET name = 'kept' WHERE id = " + std::to_string(a));
  MyError e;
  EXPECT_FALSE(my_scalar(c.get(), "CREATE TABLE ddl_in_txn (x INT)", &e));
  EXPECT_EQ(e.code, 1399u) << e.message;
  ok(c.get(), "COMMIT");
  EXPECT_EQ(name_of(c.get(), a), "kept");
}

TEST_F(ShardedMy, ATransactionOverTwoShardsCommitsOnBothOrNeither) {
  MyConn c = proxy();
  const auto [a, b] = ids_on_two_shards(4001);
  ok(c.get(), "START TRANSACTION");
  ok(c.get(), insert_user(a, "a"));
  ok(c.get(), insert_user(b, "b"));
  EXPECT_EQ(name_of(c.get(), a), "a");
  EXPECT_EQ(name_of(c.get(), b), "b");
  EXPECT_EQ(committed_name(b), "") << "seen before COMMIT";
  ok(c.get(), "COMMIT");
  EXPECT_EQ(shards_holding_user(a), std::vector<int>{shard_of_user(a)});
  EXPECT_EQ(shards_holding_user(b), std::vector<int>{shard_of_user(b)});
  EXPECT_EQ(xa_prepared_on(shard_of_user(a)) + xa_prepared_on(shard_of_user(b)), 0);

  ok(c.get(), "BEGIN");
  ok(c.get(), "UPDATE users SET name = 'a2' WHERE id = " + std::to_string(a));
  ok(c.get(), "UPDATE users SET name = 'b2' WHERE id = " + std::to_string(b));
  ok(c.get(), "ROLLBACK");
  EXPECT_EQ(committed_name(a), "a");
  EXPECT_EQ(committed_name(b), "b");

  // Prepared statements reach both shards of one transaction.
  Stmt put(c.get(), "UPDATE users SET name = ? WHERE id = ?");
  ASSERT_TRUE(put.ok()) << put.error();
  ok(c.get(), "BEGIN");
  ASSERT_TRUE(put.run({std::string("a3"), static_cast<long long>(a)})) << put.error();
  ASSERT_TRUE(put.run({std::string("b3"), static_cast<long long>(b)})) << put.error();
  ok(c.get(), "COMMIT");
  EXPECT_EQ(committed_name(a), "a3");
  EXPECT_EQ(committed_name(b), "b3");

  // A read-only transaction reads several shards without XA, keyed or not.
  ok(c.get(), "START TRANSACTION READ ONLY");
  EXPECT_EQ(name_of(c.get(), a), "a3");
  EXPECT_EQ(name_of(c.get(), b), "b3");
  EXPECT_EQ(my_scalar(c.get(), "SELECT count(*) FROM users WHERE id IN (" + std::to_string(a) +
                                   ", " + std::to_string(b) + ")"),
            "2");
  ok(c.get(), "COMMIT");
  // A read over several shards inside a transaction sees its own writes.
  ok(c.get(), "BEGIN");
  ok(c.get(), insert_user(a + 1000, "x"));
  ok(c.get(), insert_user(b + 1000, "y"));
  EXPECT_EQ(
      my_scalar(c.get(), "SELECT count(*) FROM users WHERE id IN (" + std::to_string(a + 1000) +
                             ", " + std::to_string(b + 1000) + ")"),
      "2");
  ok(c.get(), "ROLLBACK");
  EXPECT_TRUE(shards_holding_user(a + 1000).empty());

  // Savepoints stay on one shard.
  ok(c.get(), "BEGIN");
  ok(c.get(), "UPDATE users SET name = 'x' WHERE id = " + std::to_string(a));
  ok(c.get(), "SAVEPOINT s1");
  MyError e;
  EXPECT_FALSE(
      my_scalar(c.get(), "UPDATE users SET name = 'y' WHERE id = " + std::to_string(b), &e));
  EXPECT_EQ(e.code, 1235u);
  EXPECT_NE(e.message.find("savepoint"), std::string::npos) << e.message;
  ok(c.get(), "ROLLBACK");
  EXPECT_EQ(committed_name(a), "a3");
  EXPECT_EQ(xa_prepared_on(shard_of_user(a)) + xa_prepared_on(shard_of_user(b)), 0);
}

// A statement prepared after BEGIN attaches a connection before the
// transaction has begun anywhere; the statement executed next on that
// shard begins it there, so ROLLBACK takes it back.
TEST_F(ShardedMy, APreparedStatementAfterBeginRunsInsideTheTransaction) {
  MyConn c = proxy();
  std::int64_t id = 4501;
  while (shard_of_user(id) != 0) ++id;  // the default shard, where the prepare goes
  ok(c.get(), insert_user(id, "before"));
  ok(c.get(), "BEGIN");
  {
    Stmt rename(c.get(), "UPDATE users SET name = ? WHERE id = ?");
    ASSERT_TRUE(rename.ok()) << rename.error();
    ASSERT_TRUE(rename.run({std::string("inside"), static_cast<long long>(id)})) << rename.error();
    EXPECT_EQ(name_of(c.get(), id), "inside");
    EXPECT_EQ(committed_name(id), "before") << "committed before COMMIT";
  }
  ok(c.get(), "ROLLBACK");
  EXPECT_EQ(committed_name(id), "before");
  EXPECT_EQ(xa_prepared_on(0), 0);
  ok(c.get(), "DELETE FROM users WHERE id = " + std::to_string(id));
}

TEST_F(ShardedMy, ALegLostBeforeCommitRollsBackEveryShard) {
  MyConn c = proxy();
  const auto [a, b] = ids_on_two_shards(4101);
  ok(c.get(), "BEGIN");
  ok(c.get(), insert_user(a, "a"));
  ok(c.get(), insert_user(b, "b"));
  {
    // b's shard loses the proxy's connections (its leg among them).
    MyConn d = direct(shard_of_user(b));
    auto ids = my_rows(d.get(),
                       "SELECT id FROM information_schema.processlist WHERE user = 'app' AND "
                       "id <> connection_id()");
    ASSERT_TRUE(ids);
    for (const auto& id : *ids) my_scalar(d.get(), "KILL " + id);
  }
  MyError e;
  EXPECT_FALSE(my_scalar(c.get(), "COMMIT", &e));
  EXPECT_EQ(e.code, 1180u) << e.message;
  EXPECT_NE(e.message.find("rolled back on every shard"), std::string::npos) << e.message;
  EXPECT_TRUE(shards_holding_user(a).empty()) << "committed on one shard only";
  EXPECT_TRUE(shards_holding_user(b).empty());
  EXPECT_EQ(xa_prepared_on(shard_of_user(a)) + xa_prepared_on(shard_of_user(b)), 0);
  // The session goes on.
  EXPECT_EQ(my_scalar(c.get(), "SELECT 1"), "1");
}

// Kills the proxy while it waits at `pause` with an XA transaction over two
// shards prepared, restarts it, and returns how many of the rows exist.
int rows_after_crash_at(const std::string& pause, std::int64_t a, std::int64_t b,
                        const std::string& recovery) {
  const std::string ports = "s/port: 24336/port: 24342/; s/port: 24337/port: 24343/";
  const std::string cfg = write_config_variant("crash2pc", ports, my_shard_config());
  ::setenv("SHARDGATE_TEST_PAUSE_2PC", (pause + ":20000").c_str(), 1);
  pid_t pid = start_proxy(cfg, 24342);
  ::unsetenv("SHARDGATE_TEST_PAUSE_2PC");
  EXPECT_GT(pid, 0);
  if (pid <= 0) return -1;
  {
    MyConn c = my_connect(24342);
    ok(c.get(), "BEGIN");
    ok(c.get(), insert_user(a, "a"));
    ok(c.get(), insert_user(b, "b"));
    const std::string commit = "COMMIT";
    EXPECT_EQ(mysql_send_query(c.get(), commit.c_str(), commit.size()), 0);
    const bool in_doubt = wait_until(
        [&] {
          return xa_prepared_on(shard_of_user(a)) == 1 && xa_prepared_on(shard_of_user(b)) == 1;
        },
        10000);
    EXPECT_TRUE(in_doubt) << "the transaction was never prepared on both shards";
    ::usleep(200 * 1000);
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    EXPECT_NE(mysql_read_query_result(c.get()), 0) << "COMMIT answered by a killed proxy";
  }
  EXPECT_EQ(xa_prepared_on(shard_of_user(a)), 1) << "in doubt until the proxy is back";
  pid = start_proxy(cfg, 24342);
  EXPECT_GT(pid, 0);
  EXPECT_EQ(xa_prepared_on(shard_of_user(a)) + xa_prepared_on(shard_of_user(b)), 0)
      << "a transaction left in doubt after the restart";
  std::string log;
  run("cat " + cfg + ".24342.log", &log);
  EXPECT_NE(log.find("two-phase commit recovery: " + recovery), std::string::npos) << log;
  if (pid > 0) stop_proxy(pid);
  return static_cast<int>(shards_holding_user(a).size() + shards_holding_user(b).size());
}

TEST_F(ShardedMy, ProxyKilledBetweenPrepareAndDecisionRollsBackOnRestart) {
  const auto [a, b] = ids_on_two_shards(4201);
  EXPECT_EQ(rows_after_crash_at("after_prepare", a, b, "0 committed, 2 rolled back"), 0);
}

TEST_F(ShardedMy, ProxyKilledAfterTheDecisionCommitsEveryShardOnRestart) {
  const auto [a, b] = ids_on_two_shards(4301);
  EXPECT_EQ(rows_after_crash_at("after_decision", a, b, "2 committed, 0 rolled back"), 2);
}

TEST_F(ShardedMy, StatementsNoShardCanAnswerAreRefusedClearly) {
  MyConn c = proxy();
  ok(c.get(), "INSERT INTO users (id, name) VALUES (5001, 'k')");
  const std::pair<const char*, const char*> cases[] = {
      {"UPDATE users SET id = 5002 WHERE id = 5001", "changes the sharding key users.id"},
      {"DELETE FROM users WHERE name = 'k'",
       "writes sharded table users without its sharding key id"},
      {"INSERT INTO users SET name = 'x'", "must set its sharding key id"},
      {"SELECT * FROM users u JOIN orders o ON o.total = u.score WHERE u.id = 5001",
       "without equating their sharding keys"},
  };
  for (const auto& [sql, words] : cases) {
    MyError e;
    EXPECT_FALSE(my_scalar(c.get(), sql, &e)) << sql;
    EXPECT_EQ(e.code, 1235u) << sql;
    EXPECT_NE(e.message.find(words), std::string::npos) << sql << " -> " << e.message;
    EXPECT_EQ(my_scalar(c.get(), "SELECT name FROM users WHERE id = 5001"), "k") << sql;
  }
  Stmt by_name(c.get(), "SELECT id FROM users WHERE name = ?");
  ASSERT_TRUE(by_name.ok()) << by_name.error();  // preparing needs no shard
  // Without its key it reads every shard, as the same COM_QUERY would.
  auto named_k = by_name.run({std::string("k")});
  ASSERT_TRUE(named_k) << by_name.error();
  EXPECT_NE(std::find(named_k->begin(), named_k->end(), std::vector<Value>{Value("5001")}),
            named_k->end());
  EXPECT_EQ(shards_holding_user(5001), std::vector<int>{shard_of_user(5001)});
}

TEST_F(ShardedMy, WritesOverSeveralShardsLandOnEachShardOrNone) {
  MyConn c = proxy();
  std::vector<std::int64_t> ids;
  std::string values, list;
  for (std::int64_t id = 6001; id <= 6008; ++id) {
    ids.push_back(id);
    values += std::string(values.empty() ? "" : ", ") + "(" + std::to_string(id) + ", 'n')";
    list += std::string(list.empty() ? "" : ", ") + std::to_string(id);
  }
  EXPECT_EQ(affected(c.get(), "INSERT INTO users (id, name) VALUES " + values), 8);
  for (auto id : ids) EXPECT_EQ(shards_holding_user(id), std::vector<int>{shard_of_user(id)});
  EXPECT_EQ(affected(c.get(), "UPDATE users SET score = 3 WHERE id IN (" + list + ")"), 8);
  EXPECT_EQ(my_scalar(c.get(), "SELECT sum(score) FROM users WHERE id IN (" + list + ")"), "24");

  // One shard refuses its rows: no shard keeps any.
  {
    MyConn d = direct(shard_of_user(6012));
    ok(d.get(), "INSERT INTO users (id, name) VALUES (6012, 'there')");
  }
  MyError e;
  EXPECT_FALSE(my_scalar(c.get(),
                         "INSERT INTO users (id, name) VALUES (6009, 'x'), (6010, 'x'), (6011, "
                         "'x'), (6012, 'x'), (6013, 'x'), (6014, 'x')",
                         &e));
  EXPECT_EQ(e.code, 1062u) << e.message;
  for (std::int64_t id : {6009, 6010, 6011, 6013, 6014})
    EXPECT_TRUE(shards_holding_user(id).empty()) << id << " was committed alone";
  EXPECT_EQ(committed_name(6012), "there");

  // Inside a transaction the parts join its legs; a failing part undoes the
  // whole statement (savepoints) and the transaction goes on.
  ok(c.get(), "BEGIN");
  EXPECT_EQ(affected(c.get(), "DELETE FROM users WHERE id IN (" + list + ")"), 8);
  EXPECT_EQ(my_scalar(c.get(), "SELECT count(*) FROM users WHERE id = 6001"), "0");
  EXPECT_FALSE(my_scalar(c.get(),
                         "INSERT INTO users (id, name) VALUES (6016, 'y'), (6012, 'y'), (6017, "
                         "'y'), (6018, 'y')",
                         &e));
  EXPECT_EQ(e.code, 1062u) << e.message;
  EXPECT_EQ(my_scalar(c.get(), "SELECT count(*) FROM users WHERE id IN (6016, 6017, 6018)"), "0");
  ok(c.get(), "INSERT INTO users (id, name) VALUES (6015, 'after')");
  EXPECT_EQ(my_scalar(c.get(), "SELECT @@in_transaction"), "1");
  ok(c.get(), "COMMIT");
  for (auto id : ids) EXPECT_TRUE(shards_holding_user(id).empty()) << id;
  EXPECT_EQ(committed_name(6015), "after");
  EXPECT_TRUE(shards_holding_user(6016).empty());
  for (int s = 0; s < kShards; ++s) EXPECT_EQ(xa_prepared_on(s), 0) << s;

  // A reference table changes on every shard; the client hears one count.
  EXPECT_EQ(affected(c.get(), "INSERT INTO countries (code, name) VALUES ('it', 'Italy')"), 1);
  ok(c.get(), "UPDATE countries SET name = 'Italia' WHERE code = 'it'");
  for (int s = 0; s < kShards; ++s) {
    MyConn d = direct(s);
    EXPECT_EQ(my_scalar(d.get(), "SELECT name FROM countries WHERE code = 'it'"), "Italia") << s;
  }
  ok(c.get(), "DELETE FROM countries WHERE code = 'it'");
  // With RETURNING: refused with what to do instead, prepared or not.
  EXPECT_FALSE(my_scalar(c.get(), "DELETE FROM users WHERE id IN (" + list + ") RETURNING id", &e));
  EXPECT_EQ(e.code, 1235u);
  EXPECT_NE(e.message.find("RETURNING"), std::string::npos) << e.message;
  std::int64_t other = 6021;
  while (shard_of_user(other) == shard_of_user(6020)) ++other;
  ok(c.get(), insert_user(6020, "p"));
  ok(c.get(), insert_user(other, "q"));
  Stmt del_returning(c.get(), "DELETE FROM users WHERE id IN (?, ?) RETURNING id");
  ASSERT_TRUE(del_returning.ok()) << del_returning.error();
  EXPECT_FALSE(del_returning.run({6020LL, static_cast<long long>(other)}));
  EXPECT_NE(del_returning.error().find("RETURNING"), std::string::npos) << del_returning.error();
  EXPECT_EQ(shards_holding_user(6020), std::vector<int>{shard_of_user(6020)});
  // Prepared, it runs as the COM_QUERY would: on both shards, in one commit.
  Stmt del(c.get(), "DELETE FROM users WHERE id IN (?, ?)");
  ASSERT_TRUE(del.ok()) << del.error();
  EXPECT_TRUE(del.run({6020LL, static_cast<long long>(other)})) << del.error();
  EXPECT_TRUE(shards_holding_user(6020).empty());
  EXPECT_TRUE(shards_holding_user(other).empty());
}

// DDL through the proxy runs on every shard. MariaDB commits DDL at once and
// refuses it inside XA, so a change that some shards refuse is reported with
// the shards that applied it; refused everywhere, the client gets the
// server's own error; inside a transaction it is refused.
TEST_F(ShardedMy, SchemaChangesRunOnEveryShardAndAPartialOneIsNamed) {
  MyConn c = proxy();
  auto on_each_shard = [](const std::string& count_sql) {
    std::vector<std::string> counts;
    for (int s = 0; s < kShards; ++s) {
      MyConn d = direct(s);
      counts.push_back(my_scalar(d.get(), count_sql).value_or("error"));
    }
    return counts;
  };
  const std::string nick =
      "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'app' AND "
      "table_name = 'users' AND column_name = 'nick'";
  using V = std::vector<std::string>;
  {
    MyConn d = direct(2);
    ok(d.get(), "ALTER TABLE users ADD COLUMN nick VARCHAR(16)");
  }
  MyError e;
  EXPECT_FALSE(my_scalar(c.get(), "ALTER TABLE users ADD COLUMN nick VARCHAR(16)", &e));
  EXPECT_NE(e.message.find("applied on shards s0, s1, s3 but failed on s2"), std::string::npos)
      << e.code << " " << e.message;
  EXPECT_EQ(on_each_shard(nick), (V{"1", "1", "1", "1"}));
  e = {};
  EXPECT_FALSE(my_scalar(c.get(), "ALTER TABLE users ADD COLUMN nick VARCHAR(16)", &e));
  EXPECT_EQ(e.code, 1060u) << "refused everywhere: the server's duplicate-column error: "
                           << e.message;

  const std::string index =
      "SELECT count(*) FROM information_schema.statistics WHERE table_schema = 'app' AND "
      "index_name = 'users_nick'";
  ok(c.get(), "CREATE INDEX users_nick ON users (nick)");
  EXPECT_EQ(on_each_shard(index), (V{"1", "1", "1", "1"}));
  ok(c.get(), "DROP INDEX users_nick ON users");
  EXPECT_EQ(on_each_shard(index), (V{"0", "0", "0", "0"}));

  ok(c.get(), "START TRANSACTION");
  e = {};
  EXPECT_FALSE(my_scalar(c.get(), "ALTER TABLE users DROP COLUMN nick", &e));
  EXPECT_NE(e.message.find("outside a transaction"), std::string::npos) << e.message;
  ok(c.get(), "ROLLBACK");
  EXPECT_EQ(on_each_shard(nick), (V{"1", "1", "1", "1"}));
  ok(c.get(), "ALTER TABLE users DROP COLUMN nick");
  EXPECT_EQ(on_each_shard(nick), (V{"0", "0", "0", "0"}));
}

TEST_F(ShardedMy, ReferenceAndUnshardedTables) {
  MyConn c = proxy();
  for (int i = 0; i < 8; ++i)
    EXPECT_EQ(my_scalar(c.get(), "SELECT name FROM countries WHERE code = 'fr'"), "France");
  ok(c.get(), "INSERT INTO logs (msg) VALUES ('on the default shard')");
  EXPECT_EQ(my_scalar(c.get(), "SELECT count(*) FROM logs"), "1");
  MyConn s0 = direct(0);
  EXPECT_EQ(my_scalar(s0.get(), "SELECT msg FROM logs"), "on the default shard");
  // LAST_INSERT_ID() follows the client across shards' connections.
  EXPECT_NE(my_scalar(c.get(), "SELECT LAST_INSERT_ID()"), "0");
}

// Rows as cells (my_rows joins them with tabs).
std::optional<Table> table_of(MYSQL* c, const std::string& sql, std::string* error) {
  MyError e;
  auto rows = my_rows(c, sql, &e);
  if (!rows) {
    *error = std::to_string(e.code) + " " + e.message;
    return std::nullopt;
  }
  Table t;
  for (const auto& line : *rows) {
    std::vector<std::string> cells;
    std::stringstream in(line);
    std::string cell;
    while (std::getline(in, cell, '\t')) cells.push_back(cell);
    if (!line.empty() && line.back() == '\t') cells.emplace_back();
    t.push_back(std::move(cells));
  }
  return t;
}

DifferentialSide side(MYSQL* c) {
  DifferentialSide d;
  d.exec = [c](const std::string& sql, std::string* error) {
    MyError e;
    const bool ok = my_scalar(c, sql, &e).has_value();
    if (!ok) *error = std::to_string(e.code) + " " + e.message;
    return ok;
  };
  d.rows = [c](const std::string& sql, std::string* error) { return table_of(c, sql, error); };
  return d;
}

// One seeded random workload through shardgate over four MariaDB shards and
// directly against one unsharded database: every read answers the same rows.
TEST_F(ShardedMy, DifferentialAgainstOneUnshardedDatabase) {
  {
    MyConn admin = direct(0);
    ok(admin.get(), "CREATE DATABASE oracle CHARACTER SET utf8mb4");
  }
  MyError e;
  MyConn one = my_try_connect(my_shard_primary_port(0), "app", "app", "oracle", &e);
  ASSERT_TRUE(one) << e.message;
  ok(one.get(),
     "CREATE TABLE orders (id BIGINT PRIMARY KEY, user_id BIGINT NOT NULL, total INT, note "
     "VARCHAR(16))");
  MyConn sg = proxy();
  ok(sg.get(), "ALTER TABLE orders ADD COLUMN note VARCHAR(16)");  // on every shard
  DifferentialDialect dialect;
  dialect.begin = "START TRANSACTION";
  dialect.limit = [](int offset, int count) {
    return "LIMIT " + std::to_string(offset) + ", " + std::to_string(count);
  };
  // utf8mb4_general_ci ignores case: mixed case tests the merge's folding.
  dialect.notes = {"alpha", "Beta", "gamma", "delta"};
  const int compared =
      run_differential_workload(side(sg.get()), side(one.get()), dialect, 20261123);
  EXPECT_GT(compared, 150);
}

TEST_F(ShardedMy, ScatterGatherErrorsAndRefusals) {
  MyConn c = proxy();
  for (int s = 0; s < kShards; ++s) {
    MyConn d = direct(s);
    ok(d.get(), "INSERT INTO accounts SELECT CONCAT('bulk', " + std::to_string(s) +
                    ", '-', seq), seq FROM seq_1_to_3000");
  }
  // Written directly on the primaries: wait until their replicas have it too.
  for (int s = 0; s < kShards; ++s) {
    MyConn replica = my_connect(my_shard_primary_port(s) + 1);
    EXPECT_TRUE(wait_until(
        [&] {
          return my_scalar(replica.get(),
                           "SELECT count(*) FROM accounts WHERE email LIKE 'bulk%'") == "3000";
        },
        15000))
        << "replica of shard " << s << " did not catch up";
  }
  EXPECT_EQ(my_scalar(c.get(), "SELECT count(*) FROM accounts WHERE email LIKE 'bulk%'"), "12000");
  auto all = my_rows(c.get(), "SELECT email FROM accounts WHERE email LIKE 'bulk%'");
  ASSERT_TRUE(all);
  EXPECT_EQ(all->size(), 12000u);
  EXPECT_EQ(my_scalar(c.get(),
                      "SELECT balance FROM accounts WHERE email LIKE 'bulk%' ORDER BY balance DESC "
                      "LIMIT 1"),
            "3000");
  MyError e;
  EXPECT_FALSE(my_scalar(c.get(), "SELECT no_such_column FROM accounts", &e));
  EXPECT_EQ(e.code, 1054u) << e.message;  // the server's own error, once
  EXPECT_EQ(my_scalar(c.get(), "SELECT 1"), "1");
  EXPECT_FALSE(my_scalar(
      c.get(), "SELECT email, count(*) FROM accounts GROUP BY email HAVING count(*) > 1", &e));
  EXPECT_EQ(e.code, 1235u);
  EXPECT_NE(e.message.find("HAVING"), std::string::npos) << e.message;
  // Inside a transaction begun with BEGIN, or opened with autocommit=0, the
  // read runs on its legs.
  const std::string bulk = "SELECT count(*) FROM accounts WHERE email LIKE 'bulk%'";
  const std::string bulk_rows = my_scalar(c.get(), bulk).value_or("?");
  ok(c.get(), "BEGIN");
  EXPECT_EQ(my_scalar(c.get(), bulk), bulk_rows);
  EXPECT_EQ(my_scalar(c.get(), "SELECT @@in_transaction"), "1");
  ok(c.get(), "ROLLBACK");
  ok(c.get(), "SET autocommit = 0");
  ok(c.get(), "SELECT 1");
  EXPECT_EQ(my_scalar(c.get(), bulk), bulk_rows);
  EXPECT_EQ(my_scalar(c.get(), "SELECT @@in_transaction"), "1");
  ok(c.get(), "ROLLBACK");
  ok(c.get(), "SET autocommit = 1");
  for (int s = 0; s < kShards; ++s) {
    MyConn d = direct(s);
    ok(d.get(), "DELETE FROM accounts WHERE email LIKE 'bulk%'");
  }
}

// The hot-key test of ShardedPg, with the load as prepared statements
// (COM_STMT_EXECUTE with a binary BIGINT key): the key shows as hot, its
// reads go to the shard's replica under reads_on_primary, and it cools down.
TEST_F(ShardedMy, HotKeyFromPreparedStatementsIsReportedSpreadAndCoolsDown) {
  const std::string cfg = hot_key_config("hotkeys", my_shard_config(), kMyShardProxyPort,
                                         kMyShardAdminPort, 24346, 24347);
  const pid_t pid = start_proxy(cfg, 24346);
  ASSERT_GT(pid, 0);
  const std::int64_t first = 900001, hot = 900007;
  {
    MyConn c = my_connect(24346);
    for (std::int64_t id = first; id < first + 200; ++id)
      ok(c.get(), "INSERT INTO users (id, name) VALUES (" + std::to_string(id) + ", 'u')");
  }
  std::atomic<bool> stop{false}, shifted{false};
  std::atomic<long> reads{0}, errors{0};
  std::thread load([&] {
    MyConn c = my_connect(24346);
    MYSQL_STMT* st = mysql_stmt_init(c.get());
    const std::string sql = "SELECT name FROM users WHERE id = ?";
    if (mysql_stmt_prepare(st, sql.data(), sql.size()) != 0) {
      ++errors;
      mysql_stmt_close(st);
      return;
    }
    std::mt19937 rng(1);
    long long id = 0;
    MYSQL_BIND bind{};
    bind.buffer_type = MYSQL_TYPE_LONGLONG;
    bind.buffer = &id;
    while (!stop) {
      id = first + static_cast<long long>(rng() % 200);
      if (id == hot || (!shifted && rng() % 2 == 0)) id = shifted ? id + 1 : hot;
      const bool good = mysql_stmt_bind_param(st, &bind) == 0 && mysql_stmt_execute(st) == 0 &&
                        mysql_stmt_store_result(st) == 0;
      mysql_stmt_free_result(st);
      ++(good ? reads : errors);
    }
    mysql_stmt_close(st);
  });
  std::optional<HotKeyRow> row;
  const bool detected = wait_for_hot_key(24347, std::to_string(hot), true, &row);
  EXPECT_TRUE(detected);
  const int shard = shard_of_user(hot);
  if (detected) {
    EXPECT_EQ(row->shard, "s" + std::to_string(shard));
    MyConn r = my_connect(24346);
    std::int64_t cold = first;
    while (shard_of_user(cold) != shard || cold == hot) ++cold;
    EXPECT_EQ(my_scalar(r.get(), "SELECT @@port FROM users WHERE id = " + std::to_string(hot)),
              std::to_string(my_shard_primary_port(shard) + 1))
        << "the hot key is read on the replica";
    EXPECT_EQ(my_scalar(r.get(), "SELECT @@port FROM users WHERE id = " + std::to_string(cold)),
              std::to_string(my_shard_primary_port(shard)))
        << "a cold key stays on the primary";
    // Reads of the hot key, and only of it, are answered from the cache.
    const std::string hot_read = "SELECT name FROM users WHERE id = " + std::to_string(hot);
    const std::string cold_read = "SELECT name FROM users WHERE id = " + std::to_string(cold);
    EXPECT_EQ(my_scalar(r.get(), hot_read), "u");
    {
      MyConn d = direct(shard);
      ok(d.get(), "UPDATE users SET name = 'direct' WHERE id IN (" + std::to_string(hot) + ", " +
                      std::to_string(cold) + ")");
    }
    EXPECT_EQ(my_scalar(r.get(), hot_read), "u") << "the hot key's read came from the cache";
    EXPECT_EQ(my_scalar(r.get(), cold_read), "direct") << "a cold key is not cached";
    ok(r.get(), "UPDATE users SET score = score + 1 WHERE id = " + std::to_string(hot));
    EXPECT_EQ(my_scalar(r.get(), hot_read), "direct") << "a write drops the hot key's entry";
  }
  shifted = true;
  const bool cooled = wait_for_hot_key(24347, std::to_string(hot), false, &row);
  stop = true;
  load.join();
  EXPECT_TRUE(cooled);
  EXPECT_GT(reads.load(), 1000);
  EXPECT_EQ(errors.load(), 0);
  stop_proxy(pid);
  for (int s = 0; s < kShards; ++s) {
    MyConn d = direct(s);
    ok(d.get(), "DELETE FROM users WHERE id >= 900001 AND id < 900201");
  }
}

// The result-cache test of ShardedPg over MariaDB: a repeated read is
// answered without the database, and no read after a write through the
// proxy (autocommit, explicit transaction, prepared statement, 300 raced
// writes against a reader keeping the entry warm) is stale.
TEST_F(ShardedMy, ResultCacheAnswersRepeatedReadsAndIsNeverStaleAfterAWrite) {
  const std::string cfg =
      cache_config("cache", my_shard_config(), kMyShardProxyPort, kMyShardAdminPort, 24348, 24349);
  const pid_t pid = start_proxy(cfg, 24348);
  ASSERT_GT(pid, 0);
  const std::int64_t id = 910001, raced = 910002;
  const std::string where = " WHERE id = " + std::to_string(id);
  MyConn w = my_connect(24348);
  ok(w.get(), "INSERT INTO users (id, name, score) VALUES (910001, 'a', 0), (910002, 'r', 0)");
  MyConn r = my_connect(24348);
  const std::string read = "SELECT name FROM users" + where;
  EXPECT_EQ(my_scalar(r.get(), read), "a");
  const auto hits = metric(24349, "shardgate_result_cache_hits_total");
  EXPECT_EQ(my_scalar(r.get(), read), "a");
  EXPECT_EQ(metric(24349, "shardgate_result_cache_hits_total"), hits + 1);
  {
    MyConn d = direct(shard_of_user(id));
    ok(d.get(), "UPDATE users SET name = 'behind the proxy'" + where);
  }
  EXPECT_EQ(my_scalar(r.get(), read), "a") << "a hit does not reach the database";
  ok(w.get(), "UPDATE users SET name = 'b'" + where);
  EXPECT_EQ(my_scalar(r.get(), read), "b") << "a write through the proxy drops the entry";
  ok(w.get(), "BEGIN");
  ok(w.get(), "UPDATE users SET name = 'c'" + where);
  EXPECT_EQ(my_scalar(r.get(), read), "b") << "not committed yet";
  ok(w.get(), "COMMIT");
  EXPECT_EQ(my_scalar(r.get(), read), "c") << "the commit drops what was read meanwhile";
  {
    MYSQL_STMT* st = mysql_stmt_init(w.get());
    const std::string sql = "UPDATE users SET name = 'd' WHERE id = ?";
    long long key = id;
    MYSQL_BIND bind{};
    bind.buffer_type = MYSQL_TYPE_LONGLONG;
    bind.buffer = &key;
    EXPECT_EQ(mysql_stmt_prepare(st, sql.data(), sql.size()), 0) << mysql_stmt_error(st);
    EXPECT_EQ(mysql_stmt_bind_param(st, &bind), 0);
    EXPECT_EQ(mysql_stmt_execute(st), 0) << mysql_stmt_error(st);
    mysql_stmt_close(st);
  }
  EXPECT_EQ(my_scalar(r.get(), read), "d") << "a prepared write";
  // A prepared read (COM_STMT_EXECUTE) is cached by its parameters.
  MYSQL_STMT* by_id = mysql_stmt_init(r.get());
  const std::string by_id_sql = "SELECT name FROM users WHERE id = ?";
  ASSERT_EQ(mysql_stmt_prepare(by_id, by_id_sql.data(), by_id_sql.size()), 0)
      << mysql_stmt_error(by_id);
  auto prepared_name = [&](long long key) {
    MYSQL_BIND param{};
    param.buffer_type = MYSQL_TYPE_LONGLONG;
    param.buffer = &key;
    char name[65] = {};
    unsigned long length = 0;
    MYSQL_BIND result{};
    result.buffer_type = MYSQL_TYPE_STRING;
    result.buffer = name;
    result.buffer_length = sizeof name - 1;
    result.length = &length;
    if (mysql_stmt_bind_param(by_id, &param) != 0 || mysql_stmt_execute(by_id) != 0 ||
        mysql_stmt_bind_result(by_id, &result) != 0 || mysql_stmt_store_result(by_id) != 0)
      return std::string("error: ") + mysql_stmt_error(by_id);
    const int fetched = mysql_stmt_fetch(by_id);
    mysql_stmt_free_result(by_id);
    return fetched == 0 ? std::string(name, length) : std::string("no row");
  };
  EXPECT_EQ(prepared_name(id), "d");
  EXPECT_EQ(prepared_name(raced), "r") << "other parameters, another entry";
  {
    MyConn d = direct(shard_of_user(id));
    ok(d.get(), "UPDATE users SET name = 'behind again'" + where);
  }
  EXPECT_EQ(prepared_name(id), "d") << "a prepared hit does not reach the database";
  ok(w.get(), "UPDATE users SET name = 'e'" + where);
  EXPECT_EQ(prepared_name(id), "e");
  mysql_stmt_close(by_id);

  std::atomic<bool> stop{false};
  std::atomic<long> warm_reads{0};
  std::thread warm([&] {
    MyConn c = my_connect(24348);
    while (!stop) {
      my_scalar(c.get(), "SELECT score FROM users WHERE id = " + std::to_string(raced));
      ++warm_reads;
    }
  });
  const auto hits_before = metric(24349, "shardgate_result_cache_hits_total");
  int stale = 0;
  for (int i = 1; i <= 300; ++i) {
    ok(w.get(),
       "UPDATE users SET score = " + std::to_string(i) + " WHERE id = " + std::to_string(raced));
    for (int twice = 0; twice < 2; ++twice) {
      if (my_scalar(r.get(), "SELECT score FROM users WHERE id = " + std::to_string(raced)) !=
          std::to_string(i))
        ++stale;
    }
  }
  stop = true;
  warm.join();
  EXPECT_EQ(stale, 0) << "reads after an acknowledged write saw an older value";
  // Each iteration's second read had no write before it: a hit for sure
  // (the warm reader's, however many, come on top).
  EXPECT_GE(metric(24349, "shardgate_result_cache_hits_total"), hits_before + 300)
      << "the warm reader read " << warm_reads << " times";
  EXPECT_GT(metric(24349, "shardgate_result_cache_entries"), 0u);
  EXPECT_GT(metric(24349, "shardgate_result_cache_invalidations_total"), 300u);
  stop_proxy(pid);
  for (int s = 0; s < kShards; ++s) {
    MyConn d = direct(s);
    ok(d.get(), "DELETE FROM users WHERE id IN (910001, 910002)");
  }
}

// Prepared statements whose execution needs several shards run like the
// same COM_QUERY would (merged reads, split writes under two-phase commit):
// each is compared with the same prepared statement run directly on one
// unsharded database with the same rows, so the rows the proxy converts to
// the binary format must read back as the server's own.
TEST_F(ShardedMy, PreparedStatementsOverSeveralShardsAnswerAsOneDatabase) {
  {
    MyConn admin = direct(0);
    ok(admin.get(), "CREATE DATABASE IF NOT EXISTS prepared_oracle CHARACTER SET utf8mb4");
  }
  MyError e;
  MyConn one = my_try_connect(my_shard_primary_port(0), "app", "app", "prepared_oracle", &e);
  ASSERT_TRUE(one) << e.message;
  ok(one.get(), "DROP TABLE IF EXISTS users");
  ok(one.get(),
     "CREATE TABLE users (id BIGINT PRIMARY KEY, name VARCHAR(64), score INT DEFAULT 0)");
  MyConn sg = proxy();
  const std::string odd = "O'Brien \\ \"x\"";
  for (long long id = 7001; id <= 7060; ++id) {
    std::vector<Param> row{id, id % 9 == 0 ? Param(nullptr) : Param("n" + std::to_string(id % 23)),
                           id % 17};
    if (id == 7033) row[1] = odd;
    for (MYSQL* c : {sg.get(), one.get()}) {
      Stmt put(c, "INSERT INTO users (id, name, score) VALUES (?, ?, ?)");
      ASSERT_TRUE(put.ok()) << put.error();
      ASSERT_TRUE(put.run(row)) << put.error();
    }
  }
  auto same = [&](const std::string& sql, const std::vector<Param>& params, bool ordered) {
    Stmt through(sg.get(), sql), oracle(one.get(), sql);
    ASSERT_TRUE(through.ok()) << sql << ": " << through.error();
    ASSERT_TRUE(oracle.ok()) << sql << ": " << oracle.error();
    auto got = through.run(params);
    ASSERT_TRUE(got) << sql << ": " << through.error();
    auto want = oracle.run(params);
    ASSERT_TRUE(want) << sql << ": " << oracle.error();
    if (!ordered) {
      std::sort(got->begin(), got->end());
      std::sort(want->begin(), want->end());
    }
    EXPECT_EQ(*got, *want) << sql;
    EXPECT_FALSE(got->empty()) << sql;
  };
  same("SELECT id, name, score FROM users WHERE id IN (?, ?, ?, ?) ORDER BY id",
       {7001LL, 7002LL, 7003LL, 7010LL}, true);
  same(
      "SELECT id, name, score FROM users WHERE id BETWEEN ? AND ? AND score > ? ORDER BY score "
      "DESC, id "
      "LIMIT ?",
      {7001LL, 7060LL, 5LL, 7LL}, true);
  same(
      "SELECT count(*), sum(score), min(name), max(id), avg(score) FROM users WHERE id BETWEEN ? "
      "AND ?",
      {7001LL, 7060LL}, true);
  same("SELECT score, count(*) FROM users WHERE id BETWEEN ? AND ? GROUP BY score ORDER BY score",
       {7001LL, 7060LL}, true);
  same("SELECT DISTINCT name FROM users WHERE id BETWEEN ? AND ?", {7001LL, 7060LL}, false);
  // One column of each binary encoding the proxy writes: integers of
  // several widths and signs, DOUBLE, DECIMAL, DATE, DATETIME with a
  // fraction, TIME, strings and NULL.
  same(
      "SELECT id, -id, CAST(score AS UNSIGNED), CAST(id % 100 AS SIGNED) * 1, CAST(id AS DOUBLE) "
      "/ ?, CAST(score AS DECIMAL(10,2)), DATE(CAST(? AS DATETIME) + INTERVAL id - 7000 DAY), "
      "CAST(? AS DATETIME(2)) + INTERVAL id - 7000 SECOND, SEC_TO_TIME(id * 97), name, NULL "
      "FROM users WHERE id BETWEEN ? AND ? ORDER BY id",
      {3.0, std::string("2026-11-24 10:00:00"), std::string("2026-01-01 23:59:00.25"), 7001LL,
       7060LL},
      true);
  same("SELECT count(*) FROM users WHERE id BETWEEN ? AND ? AND name <=> ?",
       {7001LL, 7060LL, nullptr}, true);
  same("SELECT id FROM users WHERE name = ?", {odd}, true);
  same("SELECT id, name FROM users WHERE score = ? ORDER BY id", {3.0}, true);

  // Writes with keys of several shards: each shard runs its part, in one
  // two-phase commit; the rows land where their keys' hash says.
  const auto [a, b] = ids_on_two_shards(7101);
  for (MYSQL* c : {sg.get(), one.get()}) {
    Stmt put(c, "INSERT INTO users (id, name, score) VALUES (?, ?, ?), (?, ?, ?)");
    ASSERT_TRUE(put.ok()) << put.error();
    ASSERT_TRUE(put.run(
        {static_cast<long long>(a), odd, 1LL, static_cast<long long>(b), std::string("b"), 2LL}))
        << put.error();
    Stmt bump_scores(c, "UPDATE users SET score = score + ? WHERE id IN (?, ?, ?)");
    ASSERT_TRUE(bump_scores.ok()) << bump_scores.error();
    ASSERT_TRUE(
        bump_scores.run({10LL, static_cast<long long>(a), static_cast<long long>(b), 7002LL}))
        << bump_scores.error();
    Stmt drop(c, "DELETE FROM users WHERE id IN (?, ?)");
    ASSERT_TRUE(drop.ok()) << drop.error();
    ASSERT_TRUE(drop.run({7003LL, 7004LL})) << drop.error();
  }
  EXPECT_EQ(shards_holding_user(a), std::vector<int>{shard_of_user(a)});
  EXPECT_EQ(shards_holding_user(b), std::vector<int>{shard_of_user(b)});
  EXPECT_EQ(committed_name(a), odd);
  same("SELECT id, name, score FROM users WHERE id BETWEEN ? AND ? ORDER BY id", {7001LL, 7200LL},
       true);
  EXPECT_EQ(xa_prepared_on(shard_of_user(a)) + xa_prepared_on(shard_of_user(b)), 0);

  // In a transaction the write joins it, and ROLLBACK takes it back on
  // every shard.
  ok(sg.get(), "BEGIN");
  {
    Stmt rename(sg.get(), "UPDATE users SET name = ? WHERE id IN (?, ?)");
    ASSERT_TRUE(rename.ok()) << rename.error();
    ASSERT_TRUE(
        rename.run({std::string("gone"), static_cast<long long>(a), static_cast<long long>(b)}))
        << rename.error();
    Stmt count(sg.get(), "SELECT count(*) FROM users WHERE name = ?");
    auto seen = count.run({std::string("gone")});
    ASSERT_TRUE(seen) << count.error();
    EXPECT_EQ((*seen)[0][0], "2");  // its own writes, read over both shards
  }
  ok(sg.get(), "ROLLBACK");
  EXPECT_EQ(committed_name(a), odd);
  EXPECT_EQ(committed_name(b), "b");

  // Text keys with quotes: the rows still land by their keys.
  {
    Stmt put(sg.get(),
             "INSERT INTO accounts (email, balance) VALUES (?, 1), (?, 2), (?, 3), (?, 4), (?, 5)");
    ASSERT_TRUE(put.ok()) << put.error();
    std::vector<Param> emails;
    for (int i = 0; i < 5; ++i) emails.emplace_back("o'neil" + std::to_string(i) + "@x");
    ASSERT_TRUE(put.run(emails)) << put.error();
    Stmt sum(sg.get(), "SELECT count(*), sum(balance) FROM accounts WHERE email LIKE ?");
    auto got = sum.run({std::string("o'neil%")});
    ASSERT_TRUE(got) << sum.error();
    EXPECT_EQ(*got, (std::vector<std::vector<Value>>{{Value("5"), Value("15")}}));
    for (int i = 0; i < 5; ++i) {
      auto one = my_scalar(sg.get(), "SELECT balance FROM accounts WHERE email = 'o''neil" +
                                         std::to_string(i) + "@x'");
      EXPECT_EQ(one, std::to_string(i + 1)) << "key o'neil" << i << "@x";
    }
    ok(sg.get(),
       "DELETE FROM accounts WHERE email IN ('o''neil0@x', 'o''neil1@x', "
       "'o''neil2@x', 'o''neil3@x', 'o''neil4@x')");
  }

  // A reference table: every shard gets the row.
  {
    Stmt country(sg.get(), "INSERT INTO countries (code, name) VALUES (?, ?)");
    ASSERT_TRUE(country.ok()) << country.error();
    ASSERT_TRUE(country.run({std::string("pt"), std::string("Portugal")})) << country.error();
  }
  for (int s = 0; s < kShards; ++s) {
    MyConn d = direct(s);
    EXPECT_EQ(my_scalar(d.get(), "SELECT name FROM countries WHERE code = 'pt'"), "Portugal")
        << "shard " << s;
  }
  ok(sg.get(), "DELETE FROM countries WHERE code = 'pt'");
  for (int s = 0; s < kShards; ++s) {
    MyConn d = direct(s);
    ok(d.get(), "DELETE FROM users WHERE id BETWEEN 7001 AND 7200");
  }
  MyConn admin = direct(0);
  ok(admin.get(), "DROP DATABASE prepared_oracle");
}

// With autocommit=0 the proxy opens the transaction at the first statement
// that touches a table, as BEGIN would, so it may span shards: nothing is
// seen before COMMIT, ROLLBACK undoes every shard, reads over several shards
// see the transaction's writes, and SET autocommit=1 commits.
TEST_F(ShardedMy, AutocommitOffTransactionsSpanShards) {
  MyConn c = proxy();
  const auto [a, b] = ids_on_two_shards(7301);
  const std::string both = "(" + std::to_string(a) + ", " + std::to_string(b) + ")";
  ok(c.get(), "SET autocommit = 0");
  ok(c.get(), "SELECT 1");
  ok(c.get(), insert_user(a, "a"));
  ok(c.get(), insert_user(b, "b"));
  EXPECT_EQ(my_scalar(c.get(), "SELECT count(*) FROM users WHERE id IN " + both), "2");
  EXPECT_EQ(my_scalar(c.get(), "SELECT @@in_transaction"), "1");
  EXPECT_EQ(committed_name(a), "") << "seen before COMMIT";
  EXPECT_EQ(committed_name(b), "") << "seen before COMMIT";
  ok(c.get(), "COMMIT");
  EXPECT_EQ(committed_name(a), "a");
  EXPECT_EQ(committed_name(b), "b");
  EXPECT_EQ(xa_prepared_on(shard_of_user(a)) + xa_prepared_on(shard_of_user(b)), 0);

  // The next statement opens the next transaction.
  EXPECT_EQ(affected(c.get(), "UPDATE users SET name = 'x' WHERE id IN " + both), 2);
  ok(c.get(), "ROLLBACK");
  EXPECT_EQ(committed_name(a), "a");
  EXPECT_EQ(committed_name(b), "b");

  // Prepared statements open it too.
  {
    Stmt rename(c.get(), "UPDATE users SET name = ? WHERE id = ?");
    ASSERT_TRUE(rename.ok()) << rename.error();
    ASSERT_TRUE(rename.run({std::string("a2"), static_cast<long long>(a)})) << rename.error();
    ASSERT_TRUE(rename.run({std::string("b2"), static_cast<long long>(b)})) << rename.error();
  }
  EXPECT_EQ(committed_name(a), "a");
  ok(c.get(), "COMMIT");
  EXPECT_EQ(committed_name(a), "a2");
  EXPECT_EQ(committed_name(b), "b2");

  // Turning autocommit back on commits what is open.
  ok(c.get(), "UPDATE users SET name = 'a3' WHERE id = " + std::to_string(a));
  ok(c.get(), "UPDATE users SET name = 'b3' WHERE id = " + std::to_string(b));
  ok(c.get(), "SET autocommit = 1");
  EXPECT_EQ(committed_name(a), "a3");
  EXPECT_EQ(committed_name(b), "b3");
  EXPECT_EQ(my_scalar(c.get(), "SELECT @@autocommit"), "1");
  EXPECT_EQ(my_scalar(c.get(), "SELECT @@in_transaction"), "0");
  EXPECT_EQ(xa_prepared_on(shard_of_user(a)) + xa_prepared_on(shard_of_user(b)), 0);
  ok(c.get(), "DELETE FROM users WHERE id IN " + both);
  EXPECT_TRUE(shards_holding_user(a).empty());
  EXPECT_TRUE(shards_holding_user(b).empty());
}

}  // namespace
}  // namespace shardgate::it
