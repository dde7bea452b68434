// Sharding through shardgate over four real PostgreSQL shards: statements go
// to the shard of their key (literal, text or binary parameter), rows land
// where the documented hash says, a transaction over several shards commits
// on all of them or none (two-phase commit, even when the proxy is killed
// between the phases), and what no shard can answer correctly is refused
// with 0A000 while the connection keeps working.
#include <endian.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "tests/integration/differential.h"
#include "tests/integration/harness.h"
#include "tests/integration/shard_harness.h"

namespace shardgate::it {
namespace {

std::string proxy() {
  return "host=127.0.0.1 port=" + std::to_string(kPgShardProxyPort) +
         " user=app password=app dbname=app connect_timeout=10";
}
std::string shard_direct(int shard) {
  return "host=127.0.0.1 port=" + std::to_string(pg_shard_primary_port(shard)) +
         " user=app password=app dbname=app connect_timeout=10";
}

struct Outcome {
  bool ok = false;
  std::string sqlstate, message, tag;
  std::vector<std::string> rows;  // first column
};

Outcome exec(PGconn* c, const std::string& sql) {
  Res r(PQexec(c, sql.c_str()));
  Outcome o;
  const auto st = PQresultStatus(r.get());
  o.ok = st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK;
  if (!o.ok) {
    const char* state = PQresultErrorField(r.get(), PG_DIAG_SQLSTATE);
    o.sqlstate = state ? state : "";
    o.message = PQresultErrorMessage(r.get());
    return o;
  }
  o.tag = PQcmdStatus(r.get());
  for (int i = 0; i < PQntuples(r.get()); ++i) o.rows.emplace_back(PQgetvalue(r.get(), i, 0));
  return o;
}

void exec_ok(PGconn* c, const std::string& sql) {
  const Outcome o = exec(c, sql);
  ASSERT_TRUE(o.ok) << sql << ": " << o.message;
}

// Two user ids whose rows live on different shards.
std::pair<std::int64_t, std::int64_t> ids_on_two_shards(std::int64_t from) {
  std::int64_t b = from + 1;
  while (shard_of_user(b) == shard_of_user(from)) ++b;
  return {from, b};
}

// Which shards hold users.id = id (read on each primary directly).
std::vector<int> shards_holding_user(std::int64_t id) {
  std::vector<int> found;
  for (int s = 0; s < kShards; ++s) {
    Conn c = connect(shard_direct(s));
    const Outcome o = exec(c.get(), "SELECT count(*) FROM users WHERE id = " + std::to_string(id));
    if (o.ok && !o.rows.empty() && o.rows[0] != "0") found.push_back(s);
  }
  return found;
}

class ShardedPg : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // The schema, through the proxy: DDL of a sharded or reference table runs
    // on every shard; logs (unsharded) lives on the default shard only.
    Conn c = connect(proxy());
    for (const char* sql :
         {"CREATE TABLE users (id bigint PRIMARY KEY, name text, score int DEFAULT 0)",
          "CREATE TABLE orders (id bigserial PRIMARY KEY, user_id bigint NOT NULL, total int)",
          "CREATE TABLE accounts (email text PRIMARY KEY, balance int)",
          "CREATE TABLE countries (code text PRIMARY KEY, name text)",
          "INSERT INTO countries VALUES ('de', 'Germany'), ('fr', 'France')",
          "CREATE TABLE logs (id serial PRIMARY KEY, msg text)"}) {
      const Outcome o = exec(c.get(), sql);
      ASSERT_TRUE(o.ok) << sql << ": " << o.message;
      if (std::string_view(sql).starts_with("CREATE")) {
        EXPECT_EQ(o.tag, "CREATE TABLE") << sql;
      }
    }
    for (int s = 0; s < kShards; ++s) {
      Conn d = connect(shard_direct(s));
      const Outcome tables = exec(d.get(),
                                  "SELECT count(*) FROM pg_tables WHERE tablename IN ('users', "
                                  "'orders', 'accounts', 'countries', 'logs')");
      ASSERT_TRUE(tables.ok) << tables.message;
      EXPECT_EQ(tables.rows, std::vector<std::string>{s == 0 ? "5" : "4"}) << "shard " << s;
    }
  }
};

TEST_F(ShardedPg, KeyedInsertsLandOnTheShardTheHashNames) {
  Conn c = connect(proxy());
  for (int id = 1; id <= 200; ++id)
    exec_ok(c.get(), "INSERT INTO users (id, name) VALUES (" + std::to_string(id) + ", 'user" +
                         std::to_string(id) + "')");
  std::map<int, int> per_shard;
  for (int s = 0; s < kShards; ++s) {
    Conn d = connect(shard_direct(s));
    const Outcome o = exec(d.get(), "SELECT id FROM users WHERE id BETWEEN 1 AND 200");
    ASSERT_TRUE(o.ok) << o.message;
    for (const auto& id : o.rows) {
      EXPECT_EQ(shard_of_user(std::stoll(id)), s) << "user " << id << " is on shard " << s;
      per_shard[s]++;
    }
  }
  int total = 0;
  for (int s = 0; s < kShards; ++s) {
    EXPECT_GE(per_shard[s], 25) << "shard " << s << " got too few of 200 keys";
    total += per_shard[s];
  }
  EXPECT_EQ(total, 200);  // each row on exactly one shard
}

TEST_F(ShardedPg, KeyedReadsFindEveryRowWithLiteralsAndParameters) {
  Conn c = connect(proxy());
  for (int id = 1001; id <= 1040; ++id)
    exec_ok(c.get(), "INSERT INTO users (id, name) VALUES (" + std::to_string(id) + ", 'n" +
                         std::to_string(id) + "')");
  Res prep(PQprepare(c.get(), "by_id", "SELECT name FROM users WHERE id = $1", 1, nullptr));
  ASSERT_EQ(PQresultStatus(prep.get()), PGRES_COMMAND_OK) << PQerrorMessage(c.get());
  for (int id = 1001; id <= 1040; ++id) {
    const std::string want = "n" + std::to_string(id);
    EXPECT_EQ(exec(c.get(), "SELECT name FROM users WHERE id = " + std::to_string(id)).rows,
              std::vector<std::string>{want});
    EXPECT_EQ(exec(c.get(), "SELECT name FROM users WHERE id = '" + std::to_string(id) + "'").rows,
              std::vector<std::string>{want});
    // Text parameter, unnamed statement.
    const std::string text = std::to_string(id);
    const char* values[] = {text.c_str()};
    Res r1(PQexecParams(c.get(), "SELECT name FROM users WHERE id = $1", 1, nullptr, values,
                        nullptr, nullptr, 0));
    ASSERT_EQ(PQresultStatus(r1.get()), PGRES_TUPLES_OK) << PQerrorMessage(c.get());
    ASSERT_EQ(PQntuples(r1.get()), 1) << id;
    EXPECT_EQ(PQgetvalue(r1.get(), 0, 0), want);
    // Binary int8 parameter, named statement.
    std::string be(8, '\0');
    for (int i = 0; i < 8; ++i)
      be[i] = static_cast<char>((static_cast<std::uint64_t>(id) >> (56 - 8 * i)) & 0xff);
    const Oid int8_oid = 20;
    Res typed(PQexecParams(c.get(), "SELECT name FROM users WHERE id = $1::bigint", 1, &int8_oid,
                           std::array<const char*, 1>{be.data()}.data(),
                           std::array<int, 1>{8}.data(), std::array<int, 1>{1}.data(), 0));
    ASSERT_EQ(PQresultStatus(typed.get()), PGRES_TUPLES_OK) << PQerrorMessage(c.get());
    ASSERT_EQ(PQntuples(typed.get()), 1) << id;
    EXPECT_EQ(PQgetvalue(typed.get(), 0, 0), want);
    Res r2(PQexecPrepared(c.get(), "by_id", 1, values, nullptr, nullptr, 0));
    ASSERT_EQ(PQntuples(r2.get()), 1) << id;
    EXPECT_EQ(PQgetvalue(r2.get(), 0, 0), want);
  }
  // IN lists whose keys share a shard are one statement on that shard.
  std::vector<int> same;
  for (int id = 1001; id <= 1040 && same.size() < 3; ++id)
    if (shard_of_user(id) == shard_of_user(1001)) same.push_back(id);
  const Outcome in =
      exec(c.get(), "SELECT count(*) FROM users WHERE id IN (" + std::to_string(same[0]) + "," +
                        std::to_string(same[1]) + "," + std::to_string(same[2]) + ")");
  ASSERT_TRUE(in.ok) << in.message;
  EXPECT_EQ(in.rows, std::vector<std::string>{"3"});
}

TEST_F(ShardedPg, ParameterizedWritesLandWhereLiteralsDo) {
  Conn c = connect(proxy());
  for (int id = 2001; id <= 2030; ++id) {
    const std::string text = std::to_string(id);
    const char* values[] = {text.c_str(), "p"};
    Res r(PQexecParams(c.get(), "INSERT INTO users (id, name) VALUES ($1, $2)", 2, nullptr, values,
                       nullptr, nullptr, 0));
    ASSERT_EQ(PQresultStatus(r.get()), PGRES_COMMAND_OK) << PQerrorMessage(c.get());
    EXPECT_EQ(shards_holding_user(id), std::vector<int>{shard_of_user(id)}) << id;
  }
}

TEST_F(ShardedPg, TextKeys) {
  Conn c = connect(proxy());
  std::set<int> shards;
  for (int i = 0; i < 24; ++i) {
    const std::string email = "u" + std::to_string(i) + "@example.org";
    exec_ok(c.get(), "INSERT INTO accounts (email, balance) VALUES ('" + email + "', " +
                         std::to_string(i) + ")");
    shards.insert(shard_of_account(email));
    Conn d = connect(shard_direct(shard_of_account(email)));
    EXPECT_EQ(exec(d.get(), "SELECT balance FROM accounts WHERE email = '" + email + "'").rows,
              std::vector<std::string>{std::to_string(i)});
    EXPECT_EQ(exec(c.get(), "SELECT balance FROM accounts WHERE email = '" + email + "'").rows,
              std::vector<std::string>{std::to_string(i)});
  }
  EXPECT_GE(shards.size(), 3u);
}

TEST_F(ShardedPg, ATransactionRunsOnItsFirstKeysShard) {
  Conn c = connect(proxy());
  const auto [a, b] = ids_on_two_shards(3001);
  (void)b;
  exec_ok(c.get(), "BEGIN");
  exec_ok(c.get(), "INSERT INTO users (id, name) VALUES (" + std::to_string(a) + ", 'before')");
  exec_ok(c.get(), "UPDATE users SET name = 'after' WHERE id = " + std::to_string(a));
  EXPECT_EQ(exec(c.get(), "SELECT name FROM users WHERE id = " + std::to_string(a)).rows,
            std::vector<std::string>{"after"});
  EXPECT_EQ(exec(c.get(), "SELECT 1").rows, std::vector<std::string>{"1"});  // no key: same shard
  EXPECT_EQ(exec(c.get(), "COMMIT").tag, "COMMIT");
  EXPECT_EQ(shards_holding_user(a), std::vector<int>{shard_of_user(a)});
  // A transaction that never ran a statement needs no server.
  EXPECT_EQ(exec(c.get(), "BEGIN").tag, "BEGIN");
  EXPECT_EQ(PQtransactionStatus(c.get()), PQTRANS_INTRANS);
  EXPECT_EQ(exec(c.get(), "COMMIT").tag, "COMMIT");
  EXPECT_EQ(PQtransactionStatus(c.get()), PQTRANS_IDLE);
  // ROLLBACK undoes on the shard it ran on.
  exec_ok(c.get(), "BEGIN ISOLATION LEVEL REPEATABLE READ");
  exec_ok(c.get(), "DELETE FROM users WHERE id = " + std::to_string(a));
  EXPECT_EQ(exec(c.get(), "SHOW transaction_isolation").rows,
            std::vector<std::string>{"repeatable read"});
  EXPECT_EQ(exec(c.get(), "ROLLBACK").tag, "ROLLBACK");
  EXPECT_EQ(shards_holding_user(a), std::vector<int>{shard_of_user(a)});
}

// Prepared transactions the proxy left on a shard (two-phase commit).
int prepared_on(int shard) {
  Conn c = connect(shard_direct(shard));
  const Outcome o = exec(c.get(), "SELECT count(*) FROM pg_prepared_xacts WHERE gid LIKE 'sg\\_%'");
  return o.ok && !o.rows.empty() ? std::stoi(o.rows[0]) : -1;
}

std::string name_of_user(PGconn* c, std::int64_t id) {
  const Outcome o = exec(c, "SELECT name FROM users WHERE id = " + std::to_string(id));
  return o.ok && !o.rows.empty() ? o.rows[0] : "<none>";
}

// users.name on the primary of the user's shard (a replica may lag).
std::string committed_name(std::int64_t id) {
  Conn d = connect(shard_direct(shard_of_user(id)));
  return name_of_user(d.get(), id);
}

std::string insert_user(std::int64_t id, const std::string& name) {
  return "INSERT INTO users (id, name) VALUES (" + std::to_string(id) + ", '" + name + "')";
}

TEST_F(ShardedPg, ATransactionOverTwoShardsCommitsOnBothOrNeither) {
  Conn c = connect(proxy());
  const auto [a, b] = ids_on_two_shards(4001);
  exec_ok(c.get(), "BEGIN");
  exec_ok(c.get(), insert_user(a, "a"));
  exec_ok(c.get(), insert_user(b, "b"));
  // Each shard's leg sees its own writes; nobody else sees them before COMMIT.
  EXPECT_EQ(name_of_user(c.get(), a), "a");
  EXPECT_EQ(name_of_user(c.get(), b), "b");
  EXPECT_EQ(committed_name(a), "<none>");
  EXPECT_EQ(committed_name(b), "<none>");
  EXPECT_EQ(PQtransactionStatus(c.get()), PQTRANS_INTRANS);
  EXPECT_EQ(exec(c.get(), "COMMIT").tag, "COMMIT");
  EXPECT_EQ(PQtransactionStatus(c.get()), PQTRANS_IDLE);
  EXPECT_EQ(shards_holding_user(a), std::vector<int>{shard_of_user(a)});
  EXPECT_EQ(shards_holding_user(b), std::vector<int>{shard_of_user(b)});
  EXPECT_EQ(prepared_on(shard_of_user(a)) + prepared_on(shard_of_user(b)), 0);

  // ROLLBACK ends every leg.
  exec_ok(c.get(), "BEGIN");
  exec_ok(c.get(), "UPDATE users SET name = 'a2' WHERE id = " + std::to_string(a));
  exec_ok(c.get(), "UPDATE users SET name = 'b2' WHERE id = " + std::to_string(b));
  EXPECT_EQ(exec(c.get(), "ROLLBACK").tag, "ROLLBACK");
  EXPECT_EQ(committed_name(a), "a");
  EXPECT_EQ(committed_name(b), "b");

  // The extended protocol, COMMIT included, as JDBC sends it.
  exec_ok(c.get(), "BEGIN");
  for (const auto& [id, name] : {std::pair{a, "a3"}, std::pair{b, "b3"}}) {
    const std::string key = std::to_string(id);
    const char* values[] = {name, key.c_str()};
    Res r(PQexecParams(c.get(), "UPDATE users SET name = $1 WHERE id = $2", 2, nullptr, values,
                       nullptr, nullptr, 0));
    EXPECT_EQ(PQresultStatus(r.get()), PGRES_COMMAND_OK) << PQresultErrorMessage(r.get());
  }
  Res prepared(PQprepare(c.get(), "commit_it", "COMMIT", 0, nullptr));
  EXPECT_EQ(PQresultStatus(prepared.get()), PGRES_COMMAND_OK);
  Res committed(PQexecPrepared(c.get(), "commit_it", 0, nullptr, nullptr, nullptr, 0));
  EXPECT_EQ(PQresultStatus(committed.get()), PGRES_COMMAND_OK)
      << PQresultErrorMessage(committed.get());
  EXPECT_STREQ(PQcmdStatus(committed.get()), "COMMIT");
  EXPECT_EQ(PQtransactionStatus(c.get()), PQTRANS_IDLE);
  EXPECT_EQ(committed_name(a), "a3");
  EXPECT_EQ(committed_name(b), "b3");
  // The statement prepared inside it still works in a one-shard transaction.
  exec_ok(c.get(), "BEGIN");
  exec_ok(c.get(), "UPDATE users SET name = 'a4' WHERE id = " + std::to_string(a));
  Res again(PQexecPrepared(c.get(), "commit_it", 0, nullptr, nullptr, nullptr, 0));
  EXPECT_EQ(PQresultStatus(again.get()), PGRES_COMMAND_OK) << PQresultErrorMessage(again.get());
  EXPECT_EQ(committed_name(a), "a4");
  EXPECT_EQ(prepared_on(shard_of_user(a)) + prepared_on(shard_of_user(b)), 0);
  const std::string metrics = [] {
    std::string out;
    run("curl -s http://127.0.0.1:" + std::to_string(kPgShardAdminPort) + "/metrics", &out);
    return out;
  }();
  EXPECT_NE(metrics.find("shardgate_two_phase_commits_total"), std::string::npos);
}

TEST_F(ShardedPg, AShardThatCannotCommitRollsBackEveryShard) {
  Conn c = connect(proxy());
  const auto [a, b] = ids_on_two_shards(4101);
  // A temporary table makes PREPARE TRANSACTION fail on a's shard.
  exec_ok(c.get(), "BEGIN");
  exec_ok(c.get(), insert_user(a, "a"));
  exec_ok(c.get(), "CREATE TEMP TABLE scratch (x int) ON COMMIT DROP");
  exec_ok(c.get(), insert_user(b, "b"));
  const Outcome commit = exec(c.get(), "COMMIT");
  EXPECT_FALSE(commit.ok);
  EXPECT_EQ(commit.sqlstate, "0A000") << commit.message;
  EXPECT_NE(commit.message.find("temporary"), std::string::npos) << commit.message;
  EXPECT_EQ(PQtransactionStatus(c.get()), PQTRANS_IDLE);
  EXPECT_TRUE(shards_holding_user(a).empty());
  EXPECT_TRUE(shards_holding_user(b).empty()) << "committed on one shard only";
  EXPECT_EQ(prepared_on(shard_of_user(a)) + prepared_on(shard_of_user(b)), 0);

  // A leg whose server connection dies before COMMIT: nothing commits.
  exec_ok(c.get(), "BEGIN");
  exec_ok(c.get(), insert_user(a, "a"));
  exec_ok(c.get(), insert_user(b, "b"));
  {
    Conn d = connect(shard_direct(shard_of_user(b)));
    exec_ok(d.get(),
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'app' AND "
            "state = 'idle in transaction'");
  }
  const Outcome lost = exec(c.get(), "COMMIT");
  EXPECT_FALSE(lost.ok);
  EXPECT_EQ(lost.sqlstate, "40000") << lost.message;
  EXPECT_NE(lost.message.find("rolled back on every shard"), std::string::npos) << lost.message;
  EXPECT_EQ(PQtransactionStatus(c.get()), PQTRANS_IDLE);
  EXPECT_TRUE(shards_holding_user(a).empty()) << "committed on one shard only";
  EXPECT_TRUE(shards_holding_user(b).empty());
  EXPECT_EQ(prepared_on(shard_of_user(a)) + prepared_on(shard_of_user(b)), 0);

  // A statement failing on one leg fails the whole transaction, as on one server.
  exec_ok(c.get(), insert_user(b, "exists"));
  exec_ok(c.get(), "BEGIN");
  exec_ok(c.get(), insert_user(a, "a"));
  EXPECT_EQ(exec(c.get(), insert_user(b, "dup")).sqlstate, "23505");
  EXPECT_EQ(PQtransactionStatus(c.get()), PQTRANS_INERROR);
  EXPECT_EQ(exec(c.get(), "SELECT name FROM users WHERE id = " + std::to_string(a)).sqlstate,
            "25P02");
  EXPECT_EQ(exec(c.get(), "COMMIT").tag, "ROLLBACK");
  EXPECT_TRUE(shards_holding_user(a).empty());
  EXPECT_EQ(committed_name(b), "exists");

  // What could end one leg alone is refused while several are open.
  exec_ok(c.get(), "BEGIN");
  exec_ok(c.get(), insert_user(a, "a"));
  exec_ok(c.get(), "UPDATE users SET name = 'x' WHERE id = " + std::to_string(b));
  const Outcome multi = exec(c.get(), "SELECT 1; COMMIT");
  EXPECT_EQ(multi.sqlstate, "0A000");
  EXPECT_NE(multi.message.find("one per query"), std::string::npos) << multi.message;
  EXPECT_EQ(exec(c.get(), "COMMIT").tag, "ROLLBACK");
  EXPECT_TRUE(shards_holding_user(a).empty());
  exec_ok(c.get(), "BEGIN");
  exec_ok(c.get(), insert_user(a, "a"));
  exec_ok(c.get(), "SAVEPOINT s1");
  const Outcome across =
      exec(c.get(), "UPDATE users SET name = 'y' WHERE id = " + std::to_string(b));
  EXPECT_EQ(across.sqlstate, "0A000");
  EXPECT_NE(across.message.find("savepoint"), std::string::npos) << across.message;
  EXPECT_EQ(exec(c.get(), "ROLLBACK").tag, "ROLLBACK");
  EXPECT_EQ(committed_name(b), "exists");
  exec_ok(c.get(), "DELETE FROM users WHERE id = " + std::to_string(b));

  // A read over several shards inside a transaction runs on its legs and
  // sees its writes; as its first statement it opens them.
  const std::string both_ids = "SELECT name FROM users WHERE id IN (" + std::to_string(a) + ", " +
                               std::to_string(b) + ") ORDER BY name";
  exec_ok(c.get(), "BEGIN");
  EXPECT_EQ(exec(c.get(), both_ids).rows, std::vector<std::string>{});
  exec_ok(c.get(), insert_user(a, "ra"));
  exec_ok(c.get(), insert_user(b, "rb"));
  EXPECT_EQ(exec(c.get(), both_ids).rows, (std::vector<std::string>{"ra", "rb"}));
  EXPECT_EQ(exec(c.get(), "SELECT count(*) FROM users WHERE name IN ('ra', 'rb')").rows,
            std::vector<std::string>{"2"});
  EXPECT_EQ(PQtransactionStatus(c.get()), PQTRANS_INTRANS);
  EXPECT_EQ(exec(c.get(), "ROLLBACK").tag, "ROLLBACK");
  EXPECT_TRUE(shards_holding_user(a).empty());
  // Rows the proxy cannot merge correctly: refused, and the transaction fails.
  exec_ok(c.get(), "BEGIN");
  exec_ok(c.get(), insert_user(a, "ra"));
  EXPECT_EQ(exec(c.get(), "SELECT name FROM users WHERE id IN (" + std::to_string(a) + ", " +
                              std::to_string(b) + ") ORDER BY id")
                .sqlstate,
            "0A000");
  EXPECT_EQ(PQtransactionStatus(c.get()), PQTRANS_INERROR);
  EXPECT_EQ(exec(c.get(), "COMMIT").tag, "ROLLBACK");
  EXPECT_TRUE(shards_holding_user(a).empty());
  // A read that fails on a shard fails the transaction.
  exec_ok(c.get(), "BEGIN");
  exec_ok(c.get(), insert_user(a, "ra"));
  EXPECT_EQ(exec(c.get(), "SELECT 1 / (score - score) FROM users").sqlstate, "22012");
  EXPECT_EQ(PQtransactionStatus(c.get()), PQTRANS_INERROR);
  EXPECT_EQ(exec(c.get(), "SELECT 1").sqlstate, "25P02");
  EXPECT_EQ(exec(c.get(), "COMMIT").tag, "ROLLBACK");
  EXPECT_TRUE(shards_holding_user(a).empty());
  EXPECT_EQ(exec(c.get(), "SELECT 1").rows, std::vector<std::string>{"1"});
}

// Kills the proxy (SIGKILL) while it waits at `pause` with a transaction
// over two shards prepared, restarts it, and returns how many of the two
// rows exist afterwards.
int rows_after_crash_at(const std::string& pause, std::int64_t a, std::int64_t b,
                        const std::string& recovery) {
  const std::string ports = "s/port: 23532/port: 23542/; s/port: 23533/port: 23543/";
  const std::string cfg = write_config_variant("crash2pc", ports, pg_shard_config());
  ::setenv("SHARDGATE_TEST_PAUSE_2PC", (pause + ":20000").c_str(), 1);
  pid_t pid = start_proxy(cfg, 23542);
  ::unsetenv("SHARDGATE_TEST_PAUSE_2PC");
  EXPECT_GT(pid, 0);
  if (pid <= 0) return -1;
  {
    Conn c = connect("host=127.0.0.1 port=23542 user=app password=app dbname=app");
    exec_ok(c.get(), "BEGIN");
    exec_ok(c.get(), insert_user(a, "a"));
    exec_ok(c.get(), insert_user(b, "b"));
    EXPECT_EQ(PQsendQuery(c.get(), "COMMIT"), 1);
    const bool in_doubt = wait_until(
        [&] { return prepared_on(shard_of_user(a)) == 1 && prepared_on(shard_of_user(b)) == 1; },
        10000);
    EXPECT_TRUE(in_doubt) << "the transaction was never prepared on both shards";
    ::usleep(200 * 1000);  // into the pause (after_decision: past the fsync)
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    // The client learns the connection is gone, not a COMMIT.
    Res r(PQgetResult(c.get()));
    EXPECT_NE(PQresultStatus(r.get()), PGRES_COMMAND_OK);
  }
  EXPECT_EQ(prepared_on(shard_of_user(a)), 1) << "in doubt until the proxy is back";
  pid = start_proxy(cfg, 23542);
  EXPECT_GT(pid, 0);
  EXPECT_EQ(prepared_on(shard_of_user(a)) + prepared_on(shard_of_user(b)), 0)
      << "a transaction left in doubt after the restart";
  std::string log;
  run("cat " + cfg + ".23542.log", &log);
  EXPECT_NE(log.find("two-phase commit recovery: " + recovery), std::string::npos) << log;
  if (pid > 0) stop_proxy(pid);
  return static_cast<int>(shards_holding_user(a).size() + shards_holding_user(b).size());
}

TEST_F(ShardedPg, ProxyKilledBetweenPrepareAndDecisionRollsBackOnRestart) {
  const auto [a, b] = ids_on_two_shards(4201);
  EXPECT_EQ(rows_after_crash_at("after_prepare", a, b, "0 committed, 2 rolled back"), 0);
}

TEST_F(ShardedPg, ProxyKilledAfterTheDecisionCommitsEveryShardOnRestart) {
  const auto [a, b] = ids_on_two_shards(4301);
  EXPECT_EQ(rows_after_crash_at("after_decision", a, b, "2 committed, 0 rolled back"), 2);
}

TEST_F(ShardedPg, StatementsNoShardCanAnswerAreRefusedClearly) {
  Conn c = connect(proxy());
  exec_ok(c.get(), "INSERT INTO users (id, name) VALUES (5001, 'k')");
  const std::pair<const char*, const char*> cases[] = {
      {"UPDATE users SET id = 5002 WHERE id = 5001", "changes the sharding key users.id"},
      {"DELETE FROM users WHERE name = 'k'",
       "writes sharded table users without its sharding key id"},
      {"SELECT * FROM users u JOIN orders o ON o.total = u.score WHERE u.id = 5001",
       "without equating their sharding keys"},
      {"INSERT INTO users VALUES (5003, 'k')", "must list its columns"},
      {"WITH x AS (SELECT 1) INSERT INTO users (id, name) VALUES (5004, 'a'), (5005, 'b'), "
       "(5006, 'c'), (5007, 'd')",
       "must be a plain INSERT ... VALUES"},
  };
  for (const auto& [sql, words] : cases) {
    const Outcome o = exec(c.get(), sql);
    EXPECT_FALSE(o.ok) << sql;
    EXPECT_EQ(o.sqlstate, "0A000") << sql;
    EXPECT_NE(o.message.find(words), std::string::npos) << sql << " -> " << o.message;
    EXPECT_EQ(exec(c.get(), "SELECT name FROM users WHERE id = 5001").rows,
              std::vector<std::string>{"k"})
        << "the connection must keep working after: " << sql;
  }
  // Prepared, a read over several shards with results in binary is refused.
  const char* values[] = {"k"};
  Res r(PQexecParams(c.get(), "SELECT id FROM users WHERE name = $1", 1, nullptr, values, nullptr,
                     nullptr, 1));
  EXPECT_STREQ(PQresultErrorField(r.get(), PG_DIAG_SQLSTATE), "0A000");
  EXPECT_NE(std::string(PQresultErrorMessage(r.get())).find("as text"), std::string::npos)
      << PQresultErrorMessage(r.get());
  EXPECT_EQ(PQtransactionStatus(c.get()), PQTRANS_IDLE);
  EXPECT_EQ(shards_holding_user(5001), std::vector<int>{shard_of_user(5001)});
}

TEST_F(ShardedPg, WritesOverSeveralShardsLandOnEachShardOrNone) {
  Conn c = connect(proxy());
  std::vector<std::int64_t> ids;
  std::string values, list;
  for (std::int64_t id = 6001; id <= 6008; ++id) {
    ids.push_back(id);
    values += std::string(values.empty() ? "" : ", ") + "(" + std::to_string(id) + ", 'n')";
    list += std::string(list.empty() ? "" : ", ") + std::to_string(id);
  }
  std::set<int> shards;
  for (auto id : ids) shards.insert(shard_of_user(id));
  ASSERT_GT(shards.size(), 1u);
  const Outcome inserted =
      exec(c.get(), "INSERT INTO users (id, name) VALUES " + values + " RETURNING id");
  ASSERT_TRUE(inserted.ok) << inserted.message;
  EXPECT_EQ(inserted.tag, "INSERT 0 8");
  EXPECT_EQ(std::set<std::string>(inserted.rows.begin(), inserted.rows.end()).size(), 8u);
  for (auto id : ids) EXPECT_EQ(shards_holding_user(id), std::vector<int>{shard_of_user(id)});
  EXPECT_EQ(exec(c.get(), "UPDATE users SET score = 3 WHERE id IN (" + list + ")").tag, "UPDATE 8");
  EXPECT_EQ(committed_name(ids[3]), "n");
  EXPECT_EQ(exec(c.get(), "SELECT sum(score) FROM users WHERE id IN (" + list + ")").rows,
            std::vector<std::string>{"24"});

  // One shard refuses its rows: no shard keeps any.
  Conn d = connect(shard_direct(shard_of_user(6012)));
  exec_ok(d.get(), "INSERT INTO users (id, name) VALUES (6012, 'there')");
  const Outcome dup = exec(c.get(),
                           "INSERT INTO users (id, name) VALUES (6009, 'x'), (6010, 'x'), (6011, "
                           "'x'), (6012, 'x'), (6013, 'x'), (6014, 'x')");
  EXPECT_FALSE(dup.ok);
  EXPECT_EQ(dup.sqlstate, "23505") << dup.message;
  EXPECT_EQ(PQtransactionStatus(c.get()), PQTRANS_IDLE);
  for (std::int64_t id : {6009, 6010, 6011, 6013, 6014})
    EXPECT_TRUE(shards_holding_user(id).empty()) << id << " was committed alone";
  EXPECT_EQ(committed_name(6012), "there");

  // Inside a transaction the parts join its legs and commit with it.
  exec_ok(c.get(), "BEGIN");
  EXPECT_EQ(exec(c.get(), "DELETE FROM users WHERE id IN (" + list + ")").tag, "DELETE 8");
  EXPECT_EQ(exec(c.get(), "SELECT count(*) FROM users WHERE id = " + std::to_string(ids[0])).rows,
            std::vector<std::string>{"0"});
  EXPECT_EQ(exec(c.get(), "ROLLBACK").tag, "ROLLBACK");
  for (auto id : ids) EXPECT_EQ(shards_holding_user(id).size(), 1u) << id;
  exec_ok(c.get(), "BEGIN");
  EXPECT_EQ(exec(c.get(), "DELETE FROM users WHERE id IN (" + list + ")").tag, "DELETE 8");
  exec_ok(c.get(), "INSERT INTO users (id, name) VALUES (6015, 'after')");
  EXPECT_EQ(exec(c.get(), "BEGIN").tag, "BEGIN");  // a warning: already in one
  EXPECT_EQ(PQtransactionStatus(c.get()), PQTRANS_INTRANS);
  EXPECT_EQ(exec(c.get(), "COMMIT").tag, "COMMIT");
  for (auto id : ids) EXPECT_TRUE(shards_holding_user(id).empty()) << id;
  EXPECT_EQ(committed_name(6015), "after");
  // A failing part fails the transaction as a server error would.
  exec_ok(c.get(), "BEGIN");
  EXPECT_EQ(exec(c.get(),
                 "INSERT INTO users (id, name) VALUES (6016, 'y'), (6012, 'y'), (6017, "
                 "'y'), (6018, 'y')")
                .sqlstate,
            "23505");
  EXPECT_EQ(PQtransactionStatus(c.get()), PQTRANS_INERROR);
  EXPECT_EQ(exec(c.get(), "SELECT 1").sqlstate, "25P02");
  EXPECT_EQ(exec(c.get(), "COMMIT").tag, "ROLLBACK");
  EXPECT_TRUE(shards_holding_user(6016).empty());

  // A reference table changes on every shard; the client hears one answer.
  EXPECT_EQ(exec(c.get(), "INSERT INTO countries (code, name) VALUES ('it', 'Italy')").tag,
            "INSERT 0 1");
  EXPECT_EQ(exec(c.get(), "UPDATE countries SET name = 'Italia' WHERE code = 'it'").tag,
            "UPDATE 1");
  for (int s = 0; s < kShards; ++s) {
    Conn direct = connect(shard_direct(s));
    EXPECT_EQ(exec(direct.get(), "SELECT name FROM countries WHERE code = 'it'").rows,
              std::vector<std::string>{"Italia"})
        << "shard " << s;
  }
  EXPECT_EQ(exec(c.get(), "DELETE FROM countries WHERE code = 'it'").tag, "DELETE 1");
  std::string metrics;
  run("curl -s http://127.0.0.1:" + std::to_string(kPgShardAdminPort) + "/metrics", &metrics);
  EXPECT_NE(metrics.find("shardgate_fanout_writes_total "), std::string::npos);
}

// Extended-protocol writes whose keys live on several shards run as the
// same simple query would: their values written into the text, split per
// shard, committed on every shard or none; the client hears the extended
// protocol's answers and one summed tag.
TEST_F(ShardedPg, PreparedWritesOverSeveralShardsLandOnEachShardOrNone) {
  Conn c = connect(proxy());
  const auto [a, b] = ids_on_two_shards(7401);
  const std::string sa = std::to_string(a), sb = std::to_string(b);
  const std::string odd = "O'Brien \\ \"x\" $1";
  {
    // Unnamed statement, text parameters: a multi-row INSERT split by rows.
    const char* values[] = {sa.c_str(), odd.c_str(), sb.c_str(), "b"};
    Res r(PQexecParams(c.get(), "INSERT INTO users (id, name) VALUES ($1, $2), ($3, $4)", 4,
                       nullptr, values, nullptr, nullptr, 0));
    ASSERT_EQ(PQresultStatus(r.get()), PGRES_COMMAND_OK) << PQresultErrorMessage(r.get());
    EXPECT_STREQ(PQcmdStatus(r.get()), "INSERT 0 2");
  }
  EXPECT_EQ(shards_holding_user(a), std::vector<int>{shard_of_user(a)});
  EXPECT_EQ(shards_holding_user(b), std::vector<int>{shard_of_user(b)});
  EXPECT_EQ(committed_name(a), odd);
  EXPECT_EQ(committed_name(b), "b");
  EXPECT_EQ(prepared_on(shard_of_user(a)) + prepared_on(shard_of_user(b)), 0);

  // A named statement with declared types and binary parameters, twice.
  const Oid types[] = {23, 20, 20};  // int4, int8, int8
  Res prepared(PQprepare(c.get(), "bump",
                         "UPDATE users SET score = score + $1 WHERE id IN ($2, $3)", 3, types));
  ASSERT_EQ(PQresultStatus(prepared.get()), PGRES_COMMAND_OK)
      << PQresultErrorMessage(prepared.get());
  for (int round = 0; round < 2; ++round) {
    const std::uint32_t by = htobe32(5);
    const std::uint64_t ids[2] = {htobe64(static_cast<std::uint64_t>(a)),
                                  htobe64(static_cast<std::uint64_t>(b))};
    const char* vals[] = {reinterpret_cast<const char*>(&by),
                          reinterpret_cast<const char*>(&ids[0]),
                          reinterpret_cast<const char*>(&ids[1])};
    const int lens[] = {4, 8, 8}, formats[] = {1, 1, 1};
    Res r(PQexecPrepared(c.get(), "bump", 3, vals, lens, formats, 0));
    ASSERT_EQ(PQresultStatus(r.get()), PGRES_COMMAND_OK) << PQresultErrorMessage(r.get());
    EXPECT_STREQ(PQcmdStatus(r.get()), "UPDATE 2");
  }
  for (std::int64_t id : {a, b}) {
    Conn d = connect(shard_direct(shard_of_user(id)));
    EXPECT_EQ(exec(d.get(), "SELECT score FROM users WHERE id = " + std::to_string(id)).rows,
              std::vector<std::string>{"10"});
  }
  {
    // RETURNING, in text format: every shard's rows.
    const char* values[] = {"r", sa.c_str(), sb.c_str()};
    Res r(PQexecParams(c.get(), "UPDATE users SET name = $1 WHERE id IN ($2, $3) RETURNING id", 3,
                       nullptr, values, nullptr, nullptr, 0));
    ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQresultErrorMessage(r.get());
    std::set<std::string> ids;
    for (int i = 0; i < PQntuples(r.get()); ++i) ids.insert(PQgetvalue(r.get(), i, 0));
    EXPECT_EQ(ids, (std::set<std::string>{sa, sb}));
    EXPECT_STREQ(PQcmdStatus(r.get()), "UPDATE 2");
  }
  {
    // In the client's transaction: ROLLBACK takes it back on every shard.
    exec_ok(c.get(), "BEGIN");
    const char* values[] = {sa.c_str(), sb.c_str()};
    Res r(PQexecParams(c.get(), "DELETE FROM users WHERE id IN ($1, $2)", 2, nullptr, values,
                       nullptr, nullptr, 0));
    ASSERT_EQ(PQresultStatus(r.get()), PGRES_COMMAND_OK) << PQresultErrorMessage(r.get());
    EXPECT_STREQ(PQcmdStatus(r.get()), "DELETE 2");
    EXPECT_EQ(exec(c.get(), "ROLLBACK").tag, "ROLLBACK");
    EXPECT_EQ(committed_name(a), "r");
    EXPECT_EQ(committed_name(b), "r");
  }
  {
    // JDBC's way: BEGIN and the transaction's first statement in one batch
    // (libpq's pipeline mode sends the same: P/B/D/E twice, then Sync).
    ASSERT_EQ(PQenterPipelineMode(c.get()), 1);
    const char* values[] = {"piped", sa.c_str(), sb.c_str()};
    ASSERT_EQ(PQsendQueryParams(c.get(), "BEGIN", 0, nullptr, nullptr, nullptr, nullptr, 0), 1);
    ASSERT_EQ(PQsendQueryParams(c.get(), "UPDATE users SET name = $1 WHERE id IN ($2, $3)", 3,
                                nullptr, values, nullptr, nullptr, 0),
              1);
    ASSERT_EQ(PQpipelineSync(c.get()), 1);
    std::vector<std::string> answers;
    for (int results = 0; results < 3;) {
      Res r(PQgetResult(c.get()));
      if (!r) continue;  // the end of one statement's results
      ++results;
      const auto status = PQresultStatus(r.get());
      answers.push_back(status == PGRES_PIPELINE_SYNC ? std::string("sync")
                        : status == PGRES_COMMAND_OK  ? std::string(PQcmdStatus(r.get()))
                                                      : PQresultErrorMessage(r.get()));
    }
    EXPECT_EQ(answers, (std::vector<std::string>{"BEGIN", "UPDATE 2", "sync"}));
    ASSERT_EQ(PQexitPipelineMode(c.get()), 1);
    EXPECT_EQ(committed_name(a), "r") << "seen before COMMIT";
    EXPECT_EQ(exec(c.get(), "COMMIT").tag, "COMMIT");
    EXPECT_EQ(committed_name(a), "piped");
    EXPECT_EQ(committed_name(b), "piped");
    // A read over several shards after BEGIN, in the same batch.
    ASSERT_EQ(PQenterPipelineMode(c.get()), 1);
    const char* name[] = {"piped"};
    ASSERT_EQ(PQsendQueryParams(c.get(), "BEGIN", 0, nullptr, nullptr, nullptr, nullptr, 0), 1);
    ASSERT_EQ(PQsendQueryParams(c.get(), "SELECT count(*) FROM users WHERE name = $1", 1, nullptr,
                                name, nullptr, nullptr, 0),
              1);
    ASSERT_EQ(PQpipelineSync(c.get()), 1);
    answers.clear();
    for (int results = 0; results < 3;) {
      Res r(PQgetResult(c.get()));
      if (!r) continue;
      ++results;
      const auto status = PQresultStatus(r.get());
      answers.push_back(status == PGRES_PIPELINE_SYNC ? std::string("sync")
                        : status == PGRES_COMMAND_OK  ? std::string(PQcmdStatus(r.get()))
                        : status == PGRES_TUPLES_OK   ? std::string(PQgetvalue(r.get(), 0, 0))
                                                      : PQresultErrorMessage(r.get()));
    }
    EXPECT_EQ(answers, (std::vector<std::string>{"BEGIN", "2", "sync"}));
    ASSERT_EQ(PQexitPipelineMode(c.get()), 1);
    EXPECT_EQ(exec(c.get(), "SELECT 1").rows, std::vector<std::string>{"1"});
    EXPECT_EQ(exec(c.get(), "ROLLBACK").tag, "ROLLBACK");
  }
  {
    // A shard that refuses its part (a duplicate key) undoes every part.
    std::int64_t fresh = b + 1;
    while (shard_of_user(fresh) == shard_of_user(b)) ++fresh;
    const std::string sf = std::to_string(fresh);
    const char* values[] = {sf.c_str(), sb.c_str()};
    Res r(PQexecParams(c.get(), "INSERT INTO users (id, name) VALUES ($1, 'x'), ($2, 'y')", 2,
                       nullptr, values, nullptr, nullptr, 0));
    EXPECT_STREQ(PQresultErrorField(r.get(), PG_DIAG_SQLSTATE), "23505");
    EXPECT_TRUE(shards_holding_user(fresh).empty());
  }
  {
    // A reference table, and DDL, over the extended protocol.
    const char* values[] = {"pt", "Portugal"};
    Res r(PQexecParams(c.get(), "INSERT INTO countries (code, name) VALUES ($1, $2)", 2, nullptr,
                       values, nullptr, nullptr, 0));
    ASSERT_EQ(PQresultStatus(r.get()), PGRES_COMMAND_OK) << PQresultErrorMessage(r.get());
    EXPECT_STREQ(PQcmdStatus(r.get()), "INSERT 0 1");
    Res ddl(PQexecParams(c.get(), "CREATE INDEX users_score_idx ON users (score)", 0, nullptr,
                         nullptr, nullptr, nullptr, 0));
    ASSERT_EQ(PQresultStatus(ddl.get()), PGRES_COMMAND_OK) << PQresultErrorMessage(ddl.get());
  }
  for (int s = 0; s < kShards; ++s) {
    Conn d = connect(shard_direct(s));
    EXPECT_EQ(exec(d.get(), "SELECT name FROM countries WHERE code = 'pt'").rows,
              std::vector<std::string>{"Portugal"})
        << "shard " << s;
    EXPECT_EQ(
        exec(d.get(), "SELECT count(*) FROM pg_indexes WHERE indexname = 'users_score_idx'").rows,
        std::vector<std::string>{"1"})
        << "shard " << s;
  }
  exec_ok(c.get(), "DROP INDEX users_score_idx");
  exec_ok(c.get(), "DELETE FROM countries WHERE code = 'pt'");
  exec_ok(c.get(), "DELETE FROM users WHERE id IN (" + sa + ", " + sb + ")");
  EXPECT_EQ(prepared_on(shard_of_user(a)) + prepared_on(shard_of_user(b)), 0);
}

TEST_F(ShardedPg, PreparedReadsOverSeveralShardsAreMerged) {
  Conn c = connect(proxy());
  std::string values;
  for (std::int64_t id = 7001; id <= 7012; ++id)
    values += std::string(values.empty() ? "" : ", ") + "(" + std::to_string(id) + ", 'p" +
              std::to_string(id % 3) + "', " + std::to_string(id - 7000) + ")";
  exec_ok(c.get(), "INSERT INTO users (id, name, score) VALUES " + values);
  // Unnamed statement, text parameter, no key: every shard, rows merged.
  const char* p1[] = {"p1"};
  Res count(PQexecParams(c.get(), "SELECT count(*), sum(score) FROM users WHERE name = $1", 1,
                         nullptr, p1, nullptr, nullptr, 0));
  ASSERT_EQ(PQresultStatus(count.get()), PGRES_TUPLES_OK) << PQresultErrorMessage(count.get());
  EXPECT_STREQ(PQgetvalue(count.get(), 0, 0), "4");  // 7003, 7006, 7009, 7012
  EXPECT_STREQ(PQgetvalue(count.get(), 0, 1), "30");
  // A named statement, executed several times with binary parameters: ORDER
  // BY and LIMIT over the shards, keys on several shards in an IN list.
  Res prepared(PQprepare(c.get(), "top",
                         "SELECT id, score FROM users WHERE id IN ($1, $2, $3, $4) "
                         "ORDER BY score DESC LIMIT 3",
                         0, nullptr));
  ASSERT_EQ(PQresultStatus(prepared.get()), PGRES_COMMAND_OK)
      << PQresultErrorMessage(prepared.get());
  for (int round = 0; round < 3; ++round) {
    std::int64_t ids[4] = {7001 + round, 7005 + round, 7009 + round, 7010};
    std::uint64_t be[4];
    const char* vals[4];
    int lens[4], formats[4];
    for (int i = 0; i < 4; ++i) {
      be[i] = htobe64(static_cast<std::uint64_t>(ids[i]));
      vals[i] = reinterpret_cast<const char*>(&be[i]);
      lens[i] = 8;
      formats[i] = 1;
    }
    Res top(PQexecPrepared(c.get(), "top", 4, vals, lens, formats, 0));
    ASSERT_EQ(PQresultStatus(top.get()), PGRES_TUPLES_OK) << PQresultErrorMessage(top.get());
    std::vector<std::string> got;
    for (int i = 0; i < PQntuples(top.get()); ++i) got.emplace_back(PQgetvalue(top.get(), i, 0));
    // score = id - 7000: the three highest distinct ids.
    std::set<std::int64_t> distinct(std::begin(ids), std::end(ids));
    std::vector<std::string> expected;
    for (auto it = distinct.rbegin(); it != distinct.rend() && expected.size() < 3; ++it)
      expected.push_back(std::to_string(*it));
    EXPECT_EQ(got, expected) << "round " << round;
  }
  // Inside a transaction, on its legs: it sees the transaction's writes.
  exec_ok(c.get(), "BEGIN");
  exec_ok(c.get(), "UPDATE users SET name = 'p1' WHERE id IN (7001, 7002)");
  Res again(PQexecParams(c.get(), "SELECT count(*) FROM users WHERE name = $1", 1, nullptr, p1,
                         nullptr, nullptr, 0));
  ASSERT_EQ(PQresultStatus(again.get()), PGRES_TUPLES_OK) << PQresultErrorMessage(again.get());
  EXPECT_STREQ(PQgetvalue(again.get(), 0, 0), "6");
  EXPECT_EQ(exec(c.get(), "ROLLBACK").tag, "ROLLBACK");
  exec_ok(c.get(),
          "DELETE FROM users WHERE id IN (7001, 7002, 7003, 7004, 7005, 7006, 7007, 7008, "
          "7009, 7010, 7011, 7012)");
}

// DDL through the proxy runs on every shard in one two-phase transaction:
// a change that one shard refuses is undone on all of them, and DDL inside
// a client's transaction rolls back with it.
TEST_F(ShardedPg, SchemaChangesRunOnEveryShardOrNone) {
  Conn c = connect(proxy());
  auto on_each_shard = [](const std::string& count_sql) {
    std::vector<std::string> counts;
    for (int s = 0; s < kShards; ++s) {
      Conn d = connect(shard_direct(s));
      const Outcome o = exec(d.get(), count_sql);
      counts.push_back(o.ok && !o.rows.empty() ? o.rows[0] : "error: " + o.message);
    }
    return counts;
  };
  const std::string nick =
      "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND "
      "column_name = 'nick'";
  using V = std::vector<std::string>;
  {
    Conn d = connect(shard_direct(2));
    exec_ok(d.get(), "ALTER TABLE users ADD COLUMN nick text");
  }
  Outcome o = exec(c.get(), "ALTER TABLE users ADD COLUMN nick text");
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.sqlstate, "42701") << o.message;
  EXPECT_EQ(on_each_shard(nick), (V{"0", "0", "1", "0"})) << "undone where it had run";
  exec_ok(c.get(), "ALTER TABLE users DROP COLUMN IF EXISTS nick");
  EXPECT_EQ(on_each_shard(nick), (V{"0", "0", "0", "0"}));
  o = exec(c.get(), "ALTER TABLE users ADD COLUMN nick text");
  ASSERT_TRUE(o.ok) << o.message;
  EXPECT_EQ(o.tag, "ALTER TABLE");
  EXPECT_EQ(on_each_shard(nick), (V{"1", "1", "1", "1"}));

  // An index of a sharded table, and DROP INDEX, which names no table.
  const std::string index = "SELECT count(*) FROM pg_indexes WHERE indexname = 'users_nick'";
  exec_ok(c.get(), "CREATE INDEX users_nick ON users (nick)");
  EXPECT_EQ(on_each_shard(index), (V{"1", "1", "1", "1"}));
  exec_ok(c.get(), "DROP INDEX users_nick");
  EXPECT_EQ(on_each_shard(index), (V{"0", "0", "0", "0"}));

  // Inside the client's transaction: rolled back with it.
  exec_ok(c.get(), "BEGIN");
  exec_ok(c.get(), "ALTER TABLE users DROP COLUMN nick");
  exec_ok(c.get(), "ROLLBACK");
  EXPECT_EQ(on_each_shard(nick), (V{"1", "1", "1", "1"}));
  exec_ok(c.get(), "ALTER TABLE users DROP COLUMN nick");
  EXPECT_EQ(on_each_shard(nick), (V{"0", "0", "0", "0"}));
  // In a batch with another statement it is refused, and nothing ran.
  o = exec(c.get(), "SELECT 1; ALTER TABLE users ADD COLUMN nick text");
  EXPECT_EQ(o.sqlstate, "0A000") << o.message;
  EXPECT_NE(o.message.find("several statements"), std::string::npos) << o.message;
  EXPECT_EQ(on_each_shard(nick), (V{"0", "0", "0", "0"}));
}

// DDL that PostgreSQL refuses inside a transaction block (CREATE INDEX
// CONCURRENTLY ...) runs on each shard outside one: the server's own error
// when every shard refuses it, the shards that applied it named when only
// some do, 25001 inside a transaction, as the server would say.
TEST_F(ShardedPg, DdlOutsideATransactionBlockRunsOnEveryShard) {
  Conn c = connect(proxy());
  auto indexes_per_shard = [] {
    std::vector<std::string> out;
    for (int s = 0; s < kShards; ++s) {
      Conn d = connect(shard_direct(s));
      const Outcome o = exec(d.get(),
                             "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = "
                             "i.indexrelid WHERE c.relname = 'users_name_cc' AND i.indisvalid");
      out.push_back(o.rows.empty() ? "?" : o.rows[0]);
    }
    return out;
  };
  const std::vector<std::string> everywhere(kShards, "1"), nowhere(kShards, "0");
  EXPECT_EQ(exec(c.get(), "CREATE INDEX CONCURRENTLY users_name_cc ON users (name)").tag,
            "CREATE INDEX");
  EXPECT_EQ(indexes_per_shard(), everywhere);
  Outcome again = exec(c.get(), "CREATE INDEX CONCURRENTLY users_name_cc ON users (name)");
  EXPECT_EQ(again.sqlstate, "42P07") << again.message;  // the server's, refused everywhere
  {
    Conn d = connect(shard_direct(2));
    exec_ok(d.get(), "DROP INDEX users_name_cc");
  }
  Outcome partial = exec(c.get(), "CREATE INDEX CONCURRENTLY users_name_cc ON users (name)");
  EXPECT_FALSE(partial.ok);
  EXPECT_NE(partial.message.find("applied on shards s2 but failed on s0, s1, s3"),
            std::string::npos)
      << partial.message;
  EXPECT_EQ(indexes_per_shard(), everywhere);
  exec_ok(c.get(), "BEGIN");
  Outcome inside = exec(c.get(), "DROP INDEX CONCURRENTLY users_name_cc");
  EXPECT_EQ(inside.sqlstate, "25001") << inside.message;
  EXPECT_EQ(exec(c.get(), "ROLLBACK").tag, "ROLLBACK");
  EXPECT_EQ(indexes_per_shard(), everywhere);
  // Over the extended protocol too.
  Res dropped(PQexecParams(c.get(), "DROP INDEX CONCURRENTLY users_name_cc", 0, nullptr, nullptr,
                           nullptr, nullptr, 0));
  ASSERT_EQ(PQresultStatus(dropped.get()), PGRES_COMMAND_OK) << PQresultErrorMessage(dropped.get());
  EXPECT_STREQ(PQcmdStatus(dropped.get()), "DROP INDEX");
  EXPECT_EQ(indexes_per_shard(), nowhere);
  EXPECT_EQ(exec(c.get(), "SELECT 1").rows, std::vector<std::string>{"1"});
}

TEST_F(ShardedPg, ReferenceAndUnshardedTables) {
  Conn c = connect(proxy());
  for (int i = 0; i < 8; ++i)
    EXPECT_EQ(exec(c.get(), "SELECT name FROM countries WHERE code = 'fr'").rows,
              std::vector<std::string>{"France"});
  exec_ok(c.get(), "INSERT INTO logs (msg) VALUES ('on the default shard')");
  EXPECT_EQ(exec(c.get(), "SELECT count(*) FROM logs").rows, std::vector<std::string>{"1"});
  Conn s0 = connect(shard_direct(0));
  EXPECT_EQ(exec(s0.get(), "SELECT msg FROM logs").rows,
            std::vector<std::string>{"on the default shard"});
  // A reference-table read inside a transaction goes where the transaction is.
  const std::int64_t id = 6001;
  exec_ok(c.get(), "INSERT INTO users (id, name) VALUES (6001, 'r')");
  exec_ok(c.get(), "BEGIN");
  EXPECT_EQ(exec(c.get(), "SELECT name FROM users WHERE id = " + std::to_string(id)).rows,
            std::vector<std::string>{"r"});
  EXPECT_EQ(exec(c.get(), "SELECT count(*) FROM countries").rows, std::vector<std::string>{"2"});
  EXPECT_EQ(exec(c.get(), "COMMIT").tag, "COMMIT");
}

TEST_F(ShardedPg, ShardctlTopologyShowsShardsRangesAndTables) {
  std::string out;
  ASSERT_EQ(
      run(bin("shardctl") + " topology --admin 127.0.0.1:" + std::to_string(kPgShardAdminPort),
          &out),
      0)
      << out;
  for (const char* want :
       {"topology v1 (seeded from the configuration file)", "s0       -40", "s3       c0-",
        "users by id (hash, integer key)", "accounts by email (hash, text key)",
        "reference tables: countries", "pg-s1-primary (primary 127.0.0.1:23434)"}) {
    EXPECT_NE(out.find(want), std::string::npos) << "missing '" << want << "' in:\n" << out;
  }
  ASSERT_EQ(run(bin("shardctl") +
                    " topology --json --admin 127.0.0.1:" + std::to_string(kPgShardAdminPort),
                &out),
            0);
  EXPECT_NE(out.find("\"version\":1"), std::string::npos) << out;
  EXPECT_NE(out.find("/topology\""), std::string::npos) << "no store path in " << out;
}

// `shardctl reshard isolate` plans a shard of its own for one key from the
// proxy's topology: the source shard is the one the key routes to today.
TEST_F(ShardedPg, ShardctlPlansTheIsolationOfAKey) {
  std::string out;
  const std::string admin = " --admin 127.0.0.1:" + std::to_string(kPgShardAdminPort);
  ASSERT_EQ(run(bin("shardctl") + " reshard isolate --table users --key 7" + admin, &out), 0)
      << out;
  const std::string source = "s" + std::to_string(shard_of_user(7));
  for (const std::string& want :
       {std::string("isolate users.id = 7"), "today on shard " + source, std::string("users-7"),
        std::string("new shard: the key alone"), std::string("users.id orders.user_id")})
    EXPECT_NE(out.find(want), std::string::npos) << "missing '" << want << "' in:\n" << out;
  ASSERT_EQ(run(bin("shardctl") + " reshard isolate --json --table users --key 7" + admin, &out),
            0);
  EXPECT_NE(out.find("\"source_shard\":\"" + source + "\""), std::string::npos) << out;
  EXPECT_NE(run(bin("shardctl") + " reshard isolate --table logs --key 1" + admin, &out), 0);
  EXPECT_NE(out.find("not a sharded table"), std::string::npos) << out;
  EXPECT_EQ(run(bin("shardctl") + " reshard start" + admin, &out), 2) << out;
}

// The topology lives in RocksDB in data_dir: a restart serves the stored
// version, a changed config publishes the next one.
TEST_F(ShardedPg, TopologyVersionSurvivesRestartsAndFollowsConfigChanges) {
  const std::string ports = "s/port: 23532/port: 23540/; s/port: 23533/port: 23541/";
  auto topology_line = [] {
    std::string out;
    run(bin("shardctl") + " topology --admin 127.0.0.1:23541", &out);
    return out.substr(0, out.find('\n'));
  };
  const std::string cfg = write_config_variant("topo", ports, pg_shard_config());
  pid_t pid = start_proxy(cfg, 23540);
  ASSERT_GT(pid, 0);
  EXPECT_EQ(topology_line(), "cluster pg  topology v1 (seeded from the configuration file)");
  stop_proxy(pid);
  pid = start_proxy(cfg, 23540);
  ASSERT_GT(pid, 0);
  EXPECT_EQ(topology_line(), "cluster pg  topology v1 (seeded from the configuration file)");
  stop_proxy(pid);
  const std::string changed = write_config_variant(
      "topo",
      ports + "; s/reference_tables: \\[countries\\]/reference_tables: [countries, currencies]/",
      pg_shard_config());
  pid = start_proxy(changed, 23540);
  ASSERT_GT(pid, 0);
  EXPECT_EQ(topology_line(), "cluster pg  topology v2 (the configuration file changed)");
  std::string out;
  run(bin("shardctl") + " topology --admin 127.0.0.1:23541", &out);
  EXPECT_NE(out.find("reference tables: countries, currencies"), std::string::npos) << out;
  stop_proxy(pid);
}

// All rows, every column as text ("<null>" for NULL); nullopt with the error.
std::optional<Table> rows_of(PGconn* c, const std::string& sql, std::string* error = nullptr) {
  Res r(PQexec(c, sql.c_str()));
  if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) {
    if (error) *error = PQresultErrorMessage(r.get());
    return std::nullopt;
  }
  Table t;
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    std::vector<std::string> row;
    for (int j = 0; j < PQnfields(r.get()); ++j)
      row.push_back(PQgetisnull(r.get(), i, j) ? "<null>" : PQgetvalue(r.get(), i, j));
    t.push_back(std::move(row));
  }
  return t;
}

DifferentialSide side(PGconn* c) {
  DifferentialSide d;
  d.exec = [c](const std::string& sql, std::string* error) {
    const Outcome o = exec(c, sql);
    if (!o.ok) *error = o.message;
    return o.ok;
  };
  d.rows = [c](const std::string& sql, std::string* error) { return rows_of(c, sql, error); };
  return d;
}

// One seeded random workload through shardgate over four shards and directly
// against one unsharded database: every read must answer the same rows (in
// the same order where ORDER BY fixes it).
TEST_F(ShardedPg, DifferentialAgainstOneUnshardedDatabase) {
  {
    Conn admin(PQconnectdb(("host=127.0.0.1 port=" + std::to_string(pg_shard_primary_port(0)) +
                            " user=postgres password=postgres dbname=postgres connect_timeout=10")
                               .c_str()));
    ASSERT_EQ(PQstatus(admin.get()), CONNECTION_OK) << PQerrorMessage(admin.get());
    exec_ok(admin.get(), "CREATE DATABASE oracle OWNER app");
  }
  Conn one = connect("host=127.0.0.1 port=" + std::to_string(pg_shard_primary_port(0)) +
                     " user=app password=app dbname=oracle connect_timeout=10");
  exec_ok(one.get(),
          "CREATE TABLE orders (id bigserial PRIMARY KEY, user_id bigint NOT NULL, total int)");
  exec_ok(one.get(), "ALTER TABLE orders ADD COLUMN note text");
  Conn sg = connect(proxy());
  exec_ok(sg.get(), "ALTER TABLE orders ADD COLUMN note text");  // on every shard
  DifferentialDialect dialect;
  dialect.begin = "BEGIN";
  dialect.limit = [](int offset, int count) {
    return "LIMIT " + std::to_string(count) + " OFFSET " + std::to_string(offset);
  };
  // The sandbox's collation orders ASCII lower case as bytes do; mixed case
  // would differ between byte order (the merge) and en_US.
  dialect.notes = {"alpha", "beta", "gamma", "delta"};
  const int compared =
      run_differential_workload(side(sg.get()), side(one.get()), dialect, 20261123);
  EXPECT_GT(compared, 150);
}

TEST_F(ShardedPg, ScatterGatherStreamsBigResultsAndKeepsConnectionsClean) {
  Conn c = connect(proxy());
  for (int s = 0; s < kShards; ++s) {
    Conn d = connect(shard_direct(s));
    exec_ok(d.get(),
            "INSERT INTO accounts SELECT 'bulk' || s || '-' || g, g FROM "
            "(SELECT " +
                std::to_string(s) + " AS s) x, generate_series(1, 5000) g");
  }
  // Written directly on the primaries: wait until their replicas have it too.
  for (int s = 0; s < kShards; ++s) {
    Conn replica = connect("host=127.0.0.1 port=" + std::to_string(pg_shard_primary_port(s) + 1) +
                           " user=app password=app dbname=app connect_timeout=10");
    EXPECT_TRUE(wait_until(
        [&] {
          return exec(replica.get(), "SELECT count(*) FROM accounts WHERE email LIKE 'bulk%'")
                     .rows == std::vector<std::string>{"5000"};
        },
        15000))
        << "replica of shard " << s << " did not catch up";
  }
  const auto all = rows_of(c.get(), "SELECT email, balance FROM accounts WHERE email LIKE 'bulk%'");
  ASSERT_TRUE(all);
  EXPECT_EQ(all->size(), 20000u);
  const auto top = rows_of(c.get(),
                           "SELECT balance FROM accounts WHERE email LIKE 'bulk%' ORDER BY "
                           "balance DESC LIMIT 3");
  ASSERT_TRUE(top);
  EXPECT_EQ(*top, (Table{{"5000"}, {"5000"}, {"5000"}}));
  // A failing statement on the shards is the client's error; the session goes on.
  std::string error;
  EXPECT_FALSE(rows_of(c.get(), "SELECT email / 0 FROM accounts", &error));
  EXPECT_NE(error.find("operator does not exist"), std::string::npos) << error;
  EXPECT_EQ(exec(c.get(), "SELECT count(*) FROM accounts WHERE email LIKE 'bulk%'").rows,
            std::vector<std::string>{"20000"});
  // Merges that need what the plan cannot give are refused, not guessed.
  const Outcome having =
      exec(c.get(), "SELECT email, count(*) FROM accounts GROUP BY email HAVING count(*) > 1");
  EXPECT_EQ(having.sqlstate, "0A000");
  EXPECT_NE(having.message.find("HAVING"), std::string::npos) << having.message;
  // Inside a transaction a keyless read runs on the transaction's legs, and
  // the connections go back to the pool clean when it ends.
  exec_ok(c.get(), "BEGIN");
  EXPECT_EQ(exec(c.get(), "SELECT count(*) FROM accounts WHERE email LIKE 'bulk%'").rows,
            std::vector<std::string>{"20000"});
  EXPECT_EQ(exec(c.get(), "ROLLBACK").tag, "ROLLBACK");
  EXPECT_EQ(exec(c.get(), "SELECT count(*) FROM accounts WHERE email LIKE 'bulk%'").rows,
            std::vector<std::string>{"20000"});
  for (int s = 0; s < kShards; ++s) {
    Conn d = connect(shard_direct(s));
    exec_ok(d.get(), "DELETE FROM accounts WHERE email LIKE 'bulk%'");
  }
}

// A skewed read load through a proxy whose users table spreads hot reads:
// the hot key shows in `shardctl hotkeys` and the metrics, its reads go to
// the shard's replica while every other read stays on the primary
// (routing.reads_on_primary), and it cools down once the load moves on, with
// a log line each way.
TEST_F(ShardedPg, HotKeyIsReportedSpreadOverReplicasAndCoolsDown) {
  const std::string cfg = hot_key_config("hotkeys", pg_shard_config(), kPgShardProxyPort,
                                         kPgShardAdminPort, 23546, 23547);
  const pid_t pid = start_proxy(cfg, 23546);
  ASSERT_GT(pid, 0);
  const std::string conninfo =
      "host=127.0.0.1 port=23546 user=app password=app dbname=app connect_timeout=10";
  const std::int64_t first = 900001, hot = 900007;
  {
    Conn c = connect(conninfo);
    for (std::int64_t id = first; id < first + 200; ++id)
      exec_ok(c.get(), "INSERT INTO users (id, name) VALUES (" + std::to_string(id) + ", 'u')");
  }
  std::atomic<bool> stop{false}, shifted{false};
  std::atomic<long> reads{0}, errors{0};
  std::thread load([&] {
    Conn c = connect(conninfo);
    std::mt19937 rng(1);
    while (!stop) {
      std::int64_t id = first + static_cast<std::int64_t>(rng() % 200);
      if (id == hot || (!shifted && rng() % 2 == 0)) id = shifted ? id + 1 : hot;
      const Outcome o = exec(c.get(), "SELECT name FROM users WHERE id = " + std::to_string(id));
      ++(o.ok ? reads : errors);
    }
  });
  std::optional<HotKeyRow> row;
  const bool detected = wait_for_hot_key(23547, std::to_string(hot), true, &row);
  EXPECT_TRUE(detected);
  const std::string home = "s" + std::to_string(shard_of_user(hot));
  if (detected) {
    EXPECT_EQ(row->shard, home);
    EXPECT_GT(row->rate, 50);
    EXPECT_TRUE(hot_key_row(23547, "users", std::to_string(hot), home)) << "--shard " << home;
    const std::string other = "s" + std::to_string((shard_of_user(hot) + 1) % kShards);
    EXPECT_FALSE(hot_key_row(23547, "users", std::to_string(hot), other)) << "--shard " << other;
    // A fresh session (no read-your-writes barrier): the hot key is read on
    // the replica, a cold key of the same shard on the primary.
    Conn r = connect(conninfo);
    std::int64_t cold = first;
    while (shard_of_user(cold) != shard_of_user(hot) || cold == hot) ++cold;
    EXPECT_EQ(
        scalar(r.get(), "SELECT pg_is_in_recovery() FROM users WHERE id = " + std::to_string(hot)),
        "t");
    EXPECT_EQ(
        scalar(r.get(), "SELECT pg_is_in_recovery() FROM users WHERE id = " + std::to_string(cold)),
        "f");
    // Reads of the hot key, and only of it, are answered from the cache.
    const std::string hot_read = "SELECT name FROM users WHERE id = " + std::to_string(hot);
    const std::string cold_read = "SELECT name FROM users WHERE id = " + std::to_string(cold);
    EXPECT_EQ(scalar(r.get(), hot_read), "u");
    {
      Conn d = connect(shard_direct(shard_of_user(hot)));
      exec_ok(d.get(), "UPDATE users SET name = 'direct' WHERE id IN (" + std::to_string(hot) +
                           ", " + std::to_string(cold) + ")");
    }
    EXPECT_EQ(scalar(r.get(), hot_read), "u") << "the hot key's read came from the cache";
    EXPECT_EQ(scalar(r.get(), cold_read), "direct") << "a cold key is not cached";
    // Writes of a hot key still go to the primary, and drop its cached reads.
    exec_ok(r.get(), "UPDATE users SET score = score + 1 WHERE id = " + std::to_string(hot));
    EXPECT_EQ(scalar(r.get(), hot_read), "direct");
    std::string metrics;
    run("curl -s http://127.0.0.1:23547/metrics", &metrics);
    EXPECT_NE(metrics.find("shardgate_hot_key_rate{table=\"users\",key=\"" + std::to_string(hot) +
                           "\",shard=\"" + home + "\",hot=\"true\"}"),
              std::string::npos)
        << metrics;
    EXPECT_NE(metrics.find("shardgate_shard_load_skew "), std::string::npos);
    EXPECT_EQ(metrics.find("shardgate_hot_key_reads_spread_total 0\n"), std::string::npos);
  }
  shifted = true;
  const bool cooled = wait_for_hot_key(23547, std::to_string(hot), false, &row);
  stop = true;
  load.join();
  EXPECT_TRUE(cooled);
  EXPECT_GT(reads.load(), 1000);
  EXPECT_EQ(errors.load(), 0);
  std::ifstream log_file(cfg + ".23546.log");
  const std::string log((std::istreambuf_iterator<char>(log_file)), {});
  EXPECT_NE(log.find("hot key: users key " + std::to_string(hot) + " on shard " + home),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("hot key cooled down: users key " + std::to_string(hot)), std::string::npos)
      << log;
  stop_proxy(pid);
  for (int s = 0; s < kShards; ++s) {
    Conn d = connect(shard_direct(s));
    exec_ok(d.get(), "DELETE FROM users WHERE id >= 900001 AND id < 900201");
  }
}

// The result cache in front of four shards (users cached for a minute): a
// repeated read is answered without the database (a change made behind the
// proxy's back stays unseen), and no read after a write through the proxy
// is stale: autocommit, explicit transaction, extended protocol, a hint for
// a table not opted in, and a race of 300 writes against a reader that
// keeps the entry warm.
TEST_F(ShardedPg, ResultCacheAnswersRepeatedReadsAndIsNeverStaleAfterAWrite) {
  const std::string cfg =
      cache_config("cache", pg_shard_config(), kPgShardProxyPort, kPgShardAdminPort, 23548, 23549);
  const pid_t pid = start_proxy(cfg, 23548);
  ASSERT_GT(pid, 0);
  const std::string conninfo =
      "host=127.0.0.1 port=23548 user=app password=app dbname=app connect_timeout=10";
  const std::int64_t id = 910001, raced = 910002;
  const std::string where = " WHERE id = " + std::to_string(id);
  Conn w = connect(conninfo);
  exec_ok(w.get(), "INSERT INTO users (id, name, score) VALUES (910001, 'a', 0), (910002, 'r', 0)");
  exec_ok(w.get(), "INSERT INTO orders (user_id, total) VALUES (910001, 10)");
  Conn r = connect(conninfo);
  const std::string read = "SELECT name FROM users" + where;
  EXPECT_EQ(scalar(r.get(), read), "a");
  const auto hits = metric(23549, "shardgate_result_cache_hits_total");
  EXPECT_EQ(scalar(r.get(), read), "a");
  EXPECT_EQ(metric(23549, "shardgate_result_cache_hits_total"), hits + 1);
  {
    Conn d = connect(shard_direct(shard_of_user(id)));
    exec_ok(d.get(), "UPDATE users SET name = 'behind the proxy'" + where);
  }
  EXPECT_EQ(scalar(r.get(), read), "a") << "a hit does not reach the database";
  exec_ok(w.get(), "UPDATE users SET name = 'b'" + where);
  EXPECT_EQ(scalar(r.get(), read), "b") << "a write through the proxy drops the entry";
  exec_ok(w.get(), "BEGIN");
  exec_ok(w.get(), "UPDATE users SET name = 'c'" + where);
  EXPECT_EQ(scalar(r.get(), read), "b") << "not committed yet";
  exec_ok(w.get(), "COMMIT");
  EXPECT_EQ(scalar(r.get(), read), "c") << "the commit drops what was read meanwhile";
  {
    Res u(PQexecParams(w.get(), "UPDATE users SET name = $1 WHERE id = $2", 2, nullptr,
                       std::array<const char*, 2>{"d", "910001"}.data(), nullptr, nullptr, 0));
    ASSERT_EQ(PQresultStatus(u.get()), PGRES_COMMAND_OK) << PQresultErrorMessage(u.get());
  }
  EXPECT_EQ(scalar(r.get(), read), "d") << "an extended-protocol write";
  // A prepared read (Bind, Describe, Execute, Sync of a named statement) is
  // cached by its parameters.
  {
    Res p(PQprepare(r.get(), "by_id", "SELECT name FROM users WHERE id = $1", 1, nullptr));
    ASSERT_EQ(PQresultStatus(p.get()), PGRES_COMMAND_OK) << PQresultErrorMessage(p.get());
  }
  auto prepared_name = [&](const char* key) {
    Res q(PQexecPrepared(r.get(), "by_id", 1, &key, nullptr, nullptr, 0));
    return PQresultStatus(q.get()) == PGRES_TUPLES_OK && PQntuples(q.get()) == 1
               ? std::string(PQgetvalue(q.get(), 0, 0))
               : std::string("error: ") + PQresultErrorMessage(q.get());
  };
  EXPECT_EQ(prepared_name("910001"), "d");
  EXPECT_EQ(prepared_name("910002"), "r") << "other parameters, another entry";
  {
    Conn d = connect(shard_direct(shard_of_user(id)));
    exec_ok(d.get(), "UPDATE users SET name = 'behind again'" + where);
  }
  EXPECT_EQ(prepared_name("910001"), "d") << "a prepared hit does not reach the database";
  exec_ok(w.get(), "UPDATE users SET name = 'e'" + where);
  EXPECT_EQ(prepared_name("910001"), "e");
  EXPECT_EQ(scalar(r.get(), read), "e");
  // A table that is not opted in is cached by hint only.
  const std::string hinted =
      "/* shardgate:cache ttl_ms=60000 */ SELECT total FROM orders WHERE user_id = 910001";
  EXPECT_EQ(scalar(r.get(), hinted), "10");
  {
    Conn d = connect(shard_direct(shard_of_user(id)));
    exec_ok(d.get(), "UPDATE orders SET total = 11 WHERE user_id = 910001");
  }
  EXPECT_EQ(scalar(r.get(), hinted), "10");
  EXPECT_EQ(scalar(r.get(), "SELECT total FROM orders WHERE user_id = 910001"), "11")
      << "without the hint: not cached";
  exec_ok(w.get(), "UPDATE orders SET total = 12 WHERE user_id = 910001");
  EXPECT_EQ(scalar(r.get(), hinted), "12");

  std::atomic<bool> stop{false};
  std::atomic<long> warm_reads{0};
  std::thread warm([&] {
    Conn c = connect(conninfo);
    while (!stop) {
      scalar(c.get(), "SELECT score FROM users WHERE id = " + std::to_string(raced));
      ++warm_reads;
    }
  });
  const auto hits_before = metric(23549, "shardgate_result_cache_hits_total");
  int stale = 0;
  for (int i = 1; i <= 300; ++i) {
    exec_ok(w.get(), "UPDATE users SET score = " + std::to_string(i) +
                         " WHERE id = " + std::to_string(raced));
    for (int twice = 0; twice < 2; ++twice) {
      const auto seen =
          scalar(r.get(), "SELECT score FROM users WHERE id = " + std::to_string(raced));
      if (seen != std::to_string(i)) ++stale;
    }
  }
  stop = true;
  warm.join();
  EXPECT_EQ(stale, 0) << "reads after an acknowledged write saw an older value";
  // Each iteration's second read had no write before it: a hit for sure
  // (the warm reader's, however many, come on top).
  EXPECT_GE(metric(23549, "shardgate_result_cache_hits_total"), hits_before + 300)
      << "the warm reader read " << warm_reads << " times";
  EXPECT_GT(metric(23549, "shardgate_result_cache_entries"), 0u);
  EXPECT_GT(metric(23549, "shardgate_result_cache_invalidations_total"), 300u);
  stop_proxy(pid);
  for (int s = 0; s < kShards; ++s) {
    Conn d = connect(shard_direct(s));
    exec_ok(d.get(), "DELETE FROM users WHERE id IN (910001, 910002)");
    exec_ok(d.get(), "DELETE FROM orders WHERE user_id = 910001");
  }
}

}  // namespace
}  // namespace shardgate::it
