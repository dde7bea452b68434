// shardgate in front of real MariaDB 10.11 GTID replication, driven by the
// mariadb CLI, MariaDB Connector/C and sysbench. Tests that kill servers come
// last in this file (gtest runs them in order) and put the sandbox back as they
// found it.
#include <gtest/gtest.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "tests/integration/harness.h"
#include "tests/integration/my_harness.h"
#include "tests/integration/shard_harness.h"

namespace shardgate::it {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr int kReplicaPort1 = kMyBasePort + 1;
constexpr int kReplicaPort2 = kMyBasePort + 2;

bool is_replica_port(int port) {
  return port == kReplicaPort1 || port == kReplicaPort2;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The one line a CLI run printed, or the whole output when it failed.
std::string cli(const std::string& sql) {
  std::string out;
  const int rc = mariadb_cli(sql, &out);
  EXPECT_EQ(rc, 0) << sql << "\n" << out;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

int cli_port(const std::string& sql) {
  const std::string out = cli(sql);
  return out.empty() || !std::isdigit(static_cast<unsigned char>(out[0])) ? -1 : std::stoi(out);
}

// ---------------------------------------------------------------- routing

TEST(MyProxy, CliRoutesReadsToReplicasAndWritesToThePrimary) {
  EXPECT_EQ(cli("SELECT 1 + 1"), "2");
  // Once the monitor has seen both replicas healthy, plain reads spread over them.
  std::set<int> seen;
  EXPECT_TRUE(wait_until(
      [&] {
        seen.insert(cli_port("SELECT @@port"));
        return seen.count(kReplicaPort1) && seen.count(kReplicaPort2);
      },
      10000))
      << "reads should spread over both replicas";
  std::set<int> ports;
  for (int i = 0; i < 10; ++i) {  // a new connection each time
    const auto row = cli("SELECT @@port, @@read_only");
    ports.insert(std::atoi(row.c_str()));
    EXPECT_NE(row.find("\t1"), std::string::npos)
        << "a plain read ran on a writable server: " << row;
  }
  EXPECT_EQ(ports, (std::set<int>{kReplicaPort1, kReplicaPort2}));

  // Writes: a replica (read_only, and app lacks READ_ONLY ADMIN) would refuse them.
  cli("CREATE TABLE IF NOT EXISTS routed (id INT AUTO_INCREMENT PRIMARY KEY, port INT, what "
      "VARCHAR(32))");
  cli("INSERT INTO routed (port, what) VALUES (@@port, 'insert')");
  auto primary = my_connect(kMyBasePort);
  EXPECT_EQ(my_scalar(primary.get(), "SELECT port FROM app.routed WHERE what = 'insert'"),
            std::to_string(kMyBasePort));
  // Locking reads and advisory locks need the primary.
  EXPECT_EQ(cli_port("SELECT @@port FROM routed LIMIT 1 FOR UPDATE"), kMyBasePort);
  EXPECT_EQ(cli_port("SELECT @@port FROM routed LIMIT 1 LOCK IN SHARE MODE"), kMyBasePort);
  EXPECT_EQ(cli("SELECT @@port, GET_LOCK('it-lock', 1)"), std::to_string(kMyBasePort) + "\t1");
  // Every statement of a transaction runs on the primary.
  const std::string p = std::to_string(kMyBasePort);
  EXPECT_EQ(lines_of(cli("BEGIN; SELECT @@port; SELECT @@port, @@read_only FROM routed LIMIT 1; "
                         "INSERT INTO routed (port, what) VALUES (@@port, 'txn'); SELECT @@port; "
                         "COMMIT")),
            (std::vector<std::string>{p, p + "\t0", p}));
  EXPECT_EQ(lines_of(cli("START TRANSACTION; SELECT @@port; SELECT @@port; ROLLBACK")),
            (std::vector<std::string>{p, p}));
  EXPECT_EQ(lines_of(cli("SET autocommit = 0; SELECT @@port; SELECT @@port; COMMIT")),
            (std::vector<std::string>{p, p}));
  // A read-only transaction may run on a replica, all of it on the same one.
  const auto ro = lines_of(
      cli("START TRANSACTION READ ONLY; SELECT @@port; SELECT @@port; SELECT @@port; COMMIT"));
  ASSERT_EQ(ro.size(), 3u);
  EXPECT_TRUE(is_replica_port(std::atoi(ro[0].c_str()))) << ro[0];
  EXPECT_EQ(ro[1], ro[0]);
  EXPECT_EQ(ro[2], ro[0]);
  // Hints override the classification.
  EXPECT_EQ(cli_port("/* shardgate:primary */ SELECT @@port"), kMyBasePort);
  EXPECT_TRUE(is_replica_port(cli_port("/* shardgate:replica */ SELECT @@port")));
}

// ---------------------------------------------------------------- Connector/C

TEST(MyProxy, ConnectorTextQueriesAndTypedPreparedStatements) {
  auto c = my_connect();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(my_rows(c.get(), "SELECT COUNT(*), SUM(seq) FROM seq_1_to_10000"),
            (std::vector<std::string>{"10000\t50005000"}));
  // A result of many packets arrives whole and in order.
  auto big = my_rows(c.get(), "SELECT seq, REPEAT('x', 200) FROM seq_1_to_5000");
  ASSERT_TRUE(big);
  ASSERT_EQ(big->size(), 5000u);
  EXPECT_EQ((*big)[4999], "5000\t" + std::string(200, 'x'));
  EXPECT_EQ((*big)[0].substr(0, 2), "1\t");

  ASSERT_TRUE(my_scalar(c.get(),
                        "CREATE TABLE IF NOT EXISTS typed (id INT PRIMARY KEY, big BIGINT, s "
                        "VARCHAR(64), d DOUBLE, t DATETIME, n INT NULL)"));
  ASSERT_TRUE(my_scalar(c.get(), "DELETE FROM typed"));

  struct Row {
    int id;
    long long big;
    std::string s;
    double d;
    MYSQL_TIME t;
    std::optional<int> n;
  };
  auto when = [](unsigned y, unsigned mo, unsigned d, unsigned h, unsigned mi, unsigned s) {
    MYSQL_TIME t{};
    t.year = y, t.month = mo, t.day = d, t.hour = h, t.minute = mi, t.second = s;
    t.time_type = MYSQL_TIMESTAMP_DATETIME;
    return t;
  };
  const std::vector<Row> rows = {
      {1, 9007199254740993LL, "h\xc3\xa9llo w\xc3\xb6rld", 3.25, when(2024, 2, 29, 13, 45, 56),
       std::nullopt},
      {2, -42, "", -1.5e-300, when(1999, 12, 31, 23, 59, 59), 7},
      {3, 9223372036854775807LL, std::string(64, 'z'), 6.02214076e23, when(2038, 1, 19, 3, 14, 8),
       -2147483647 - 1},
  };

  MYSQL_STMT* ins = mysql_stmt_init(c.get());
  const std::string ins_sql = "INSERT INTO typed VALUES (?, ?, ?, ?, ?, ?)";
  ASSERT_EQ(mysql_stmt_prepare(ins, ins_sql.data(), ins_sql.size()), 0) << mysql_stmt_error(ins);
  EXPECT_EQ(mysql_stmt_param_count(ins), 6u);
  for (const Row& r : rows) {
    Row v = r;
    unsigned long s_len = v.s.size();
    int n_value = v.n.value_or(0);
    my_bool n_null = !v.n.has_value();
    MYSQL_BIND b[6];
    std::memset(b, 0, sizeof b);
    b[0].buffer_type = MYSQL_TYPE_LONG;
    b[0].buffer = &v.id;
    b[1].buffer_type = MYSQL_TYPE_LONGLONG;
    b[1].buffer = &v.big;
    b[2].buffer_type = MYSQL_TYPE_STRING;
    b[2].buffer = v.s.data();
    b[2].buffer_length = s_len;
    b[2].length = &s_len;
    b[3].buffer_type = MYSQL_TYPE_DOUBLE;
    b[3].buffer = &v.d;
    b[4].buffer_type = MYSQL_TYPE_DATETIME;
    b[4].buffer = &v.t;
    b[5].buffer_type = MYSQL_TYPE_LONG;
    b[5].buffer = &n_value;
    b[5].is_null = &n_null;
    ASSERT_EQ(mysql_stmt_bind_param(ins, b), 0) << mysql_stmt_error(ins);
    ASSERT_EQ(mysql_stmt_execute(ins), 0) << mysql_stmt_error(ins);
    EXPECT_EQ(mysql_stmt_affected_rows(ins), 1u);
  }
  mysql_stmt_close(ins);

  MYSQL_STMT* sel = mysql_stmt_init(c.get());
  const std::string sel_sql = "SELECT id, big, s, d, t, n FROM typed WHERE id = ?";
  ASSERT_EQ(mysql_stmt_prepare(sel, sel_sql.data(), sel_sql.size()), 0) << mysql_stmt_error(sel);
  EXPECT_EQ(mysql_stmt_field_count(sel), 6u);
  for (const Row& r : rows) {
    int key = r.id;
    MYSQL_BIND p[1];
    std::memset(p, 0, sizeof p);
    p[0].buffer_type = MYSQL_TYPE_LONG;
    p[0].buffer = &key;
    ASSERT_EQ(mysql_stmt_bind_param(sel, p), 0) << mysql_stmt_error(sel);
    ASSERT_EQ(mysql_stmt_execute(sel), 0) << mysql_stmt_error(sel);
    int id = 0, n = 0;
    long long bigv = 0;
    double d = 0;
    MYSQL_TIME t{};
    char s[128];
    unsigned long s_len = 0;
    my_bool null[6] = {0, 0, 0, 0, 0, 0};
    MYSQL_BIND o[6];
    std::memset(o, 0, sizeof o);
    o[0].buffer_type = MYSQL_TYPE_LONG;
    o[0].buffer = &id;
    o[1].buffer_type = MYSQL_TYPE_LONGLONG;
    o[1].buffer = &bigv;
    o[2].buffer_type = MYSQL_TYPE_STRING;
    o[2].buffer = s;
    o[2].buffer_length = sizeof s;
    o[2].length = &s_len;
    o[3].buffer_type = MYSQL_TYPE_DOUBLE;
    o[3].buffer = &d;
    o[4].buffer_type = MYSQL_TYPE_DATETIME;
    o[4].buffer = &t;
    o[5].buffer_type = MYSQL_TYPE_LONG;
    o[5].buffer = &n;
    for (int i = 0; i < 6; ++i) o[i].is_null = &null[i];
    ASSERT_EQ(mysql_stmt_bind_result(sel, o), 0) << mysql_stmt_error(sel);
    ASSERT_EQ(mysql_stmt_fetch(sel), 0) << "row " << r.id << ": " << mysql_stmt_error(sel);
    EXPECT_EQ(id, r.id);
    EXPECT_EQ(bigv, r.big) << "row " << r.id;
    EXPECT_EQ(std::string(s, s_len), r.s) << "row " << r.id;
    EXPECT_EQ(d, r.d) << "row " << r.id;
    EXPECT_EQ(std::tie(t.year, t.month, t.day, t.hour, t.minute, t.second),
              std::tie(r.t.year, r.t.month, r.t.day, r.t.hour, r.t.minute, r.t.second))
        << "row " << r.id;
    EXPECT_EQ(static_cast<bool>(null[5]), !r.n.has_value()) << "row " << r.id;
    EXPECT_EQ(n, r.n.value_or(0)) << "row " << r.id;
    for (int i = 0; i < 5; ++i) EXPECT_FALSE(null[i]) << "row " << r.id << " column " << i;
    EXPECT_EQ(mysql_stmt_fetch(sel), MYSQL_NO_DATA);
  }
  mysql_stmt_close(sel);

  // NULL parameters.
  Stmt nulls(c.get(), "SELECT ? IS NULL, COALESCE(?, 'dflt'), CONCAT('a', ?)");
  ASSERT_TRUE(nulls.ok()) << nulls.error();
  auto r = nulls.run({nullptr, nullptr, nullptr});
  ASSERT_TRUE(r) << nulls.error();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0], (std::vector<Value>{"1", "dflt", std::nullopt}));
  r = nulls.run({1LL, std::string("x"), 2.5});
  ASSERT_TRUE(r) << nulls.error();
  EXPECT_EQ((*r)[0], (std::vector<Value>{"0", "x", "a2.5"}));
}

TEST(MyProxy, PreparedStatementsOfManyClientsNeverCross) {
  auto setup = my_connect();
  ASSERT_TRUE(my_scalar(setup.get(),
                        "CREATE TABLE IF NOT EXISTS mux (k BIGINT PRIMARY KEY, v "
                        "VARCHAR(32))"));
  // A prepare of a read may go to a replica: it must know the table first.
  for (const char* r : {kMyReplica1, kMyReplica2})
    ASSERT_TRUE(wait_until([&] { return replica_caught_up(r); }, 30000)) << r;
  constexpr int kThreads = 6;
  constexpr int kExecutes = 200;
  std::atomic<int> errors{0}, wrong{0}, done{0};
  std::vector<std::string> first_problem(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto c = my_try_connect();
      if (!c) {
        ++errors;
        return;
      }
      // The same text in every client (one server-side statement per server
      // connection, shared), and one of its own.
      Stmt shared(c.get(), "SELECT CAST(? AS SIGNED), CONCAT('v-', ?), CAST(? AS SIGNED) * 2");
      Stmt own(c.get(), "SELECT CAST(? AS SIGNED) + " + std::to_string(t * 1000000));
      Stmt put(c.get(), "REPLACE INTO mux VALUES (?, ?)");
      Stmt get(c.get(), "SELECT v FROM mux WHERE k = ?");
      auto problem = [&](std::atomic<int>& counter, const std::string& what) {
        ++counter;
        if (first_problem[t].empty()) first_problem[t] = what;
      };
      for (Stmt* s : {&shared, &own, &put, &get})
        if (!s->ok()) problem(errors, "prepare: " + s->error());
      for (int i = 0; i < kExecutes && errors == 0; ++i) {
        const long long k = t * 100000LL + i;
        const std::string tag = "t" + std::to_string(t) + "-" + std::to_string(i);
        std::optional<std::vector<std::vector<Value>>> r;
        std::vector<Value> want;
        Stmt* s;
        switch (i % 4) {
          case 0:
          case 2:
            s = &shared;
            r = shared.run({k, tag, k});
            want = {std::to_string(k), "v-" + tag, std::to_string(2 * k)};
            break;
          case 1:
            s = &own;
            r = own.run({k});
            want = {std::to_string(k + t * 1000000LL)};
            break;
          default:
            s = &put;
            r = put.run({k, tag});
            if (r) {
              s = &get;
              r = get.run({k});
              want = {tag};
            }
        }
        if (!r) {
          problem(errors, "execute " + std::to_string(i) + ": " + s->error());
        } else if (r->size() != 1 || (*r)[0] != want) {
          std::string got;
          for (const auto& row : *r)
            for (const auto& v : row) got += v.value_or("NULL") + " ";
          problem(wrong, "execute " + std::to_string(i) + " of " + tag + " returned: " + got);
        } else {
          ++done;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  std::string problems;
  for (const auto& p : first_problem)
    if (!p.empty()) problems += p + "\n";
  EXPECT_EQ(errors, 0) << problems;
  EXPECT_EQ(wrong, 0) << problems;
  EXPECT_EQ(done, kThreads * kExecutes);
}

// Per member, the server's limit on prepared statements of all its sessions.
struct PreparedLimit {
  std::string member;
  std::string original;
};

TEST(MyProxy, PreparedStatementsStayUnderTheServersLimit) {
  // Every member allows 40 statements more than it holds now (the statements
  // the main proxy's pooled connections keep). A proxy with pool.size 4 and
  // max_prepared_statements 8 holds at most 4 x (8 + the one it prepares
  // before closing the least recently used) = 36 on each; with the default of
  // 64 the 100 distinct statements below would run the servers out.
  std::vector<PreparedLimit> limits;
  for (const char* member : {kMyPrimary, kMyReplica1, kMyReplica2}) {
    auto m = my_connect(my_member_port(member));
    ASSERT_NE(m, nullptr);
    auto original = my_scalar(m.get(), "SELECT @@GLOBAL.max_prepared_stmt_count");
    auto held = my_scalar(m.get(),
                          "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE "
                          "VARIABLE_NAME = 'PREPARED_STMT_COUNT'");
    ASSERT_TRUE(original && held);
    limits.push_back({member, *original});
    ASSERT_TRUE(my_scalar(
        m.get(), "SET GLOBAL max_prepared_stmt_count = " + std::to_string(std::stoi(*held) + 40)));
  }
  struct Restore {
    std::vector<PreparedLimit>& limits;
    ~Restore() {
      for (const auto& l : limits) {
        auto m = my_try_connect(my_member_port(l.member));
        EXPECT_TRUE(m && my_scalar(m.get(), "SET GLOBAL max_prepared_stmt_count = " + l.original))
            << "could not restore max_prepared_stmt_count on " << l.member;
      }
    }
  } restore{limits};

  const std::string cfg = write_my_config_variant(
      "prepared-limit",
      "s/^listeners:/pool:\\n  size: 4\\n  max_prepared_statements: 8\\nlisteners:/; "
      "s/port: 22336/port: 22338/; s/port: 22337/port: 22339/");
  const pid_t pid = start_proxy(cfg, 22338);
  ASSERT_GT(pid, 0);
  constexpr int kClients = 20;
  constexpr int kStatements = 5;
  constexpr int kRounds = 20;
  std::atomic<int> errors{0}, wrong{0}, done{0};
  std::mutex mutex;
  std::string first_problem;
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      auto note = [&](std::atomic<int>& counter, const std::string& what) {
        ++counter;
        std::lock_guard lock(mutex);
        if (first_problem.empty()) first_problem = what;
      };
      MyError e;
      auto conn = my_try_connect(22338, "app", "app", "app", &e);
      if (!conn) return note(errors, "connect: " + e.message);
      std::vector<std::unique_ptr<Stmt>> stmts;
      for (int s = 0; s < kStatements; ++s) {
        // 100 distinct texts over all clients.
        stmts.push_back(std::make_unique<Stmt>(
            conn.get(), "SELECT CAST(? AS SIGNED) + " + std::to_string(c * kStatements + s)));
        if (!stmts.back()->ok()) return note(errors, "prepare: " + stmts.back()->error());
      }
      for (int round = 0; round < kRounds; ++round) {
        for (int s = 0; s < kStatements; ++s) {
          auto r = stmts[s]->run({static_cast<long long>(round)});
          if (!r) {
            note(errors, "client " + std::to_string(c) + " statement " + std::to_string(s) +
                             " round " + std::to_string(round) + ": " + stmts[s]->error());
          } else if (r->size() != 1 || (*r)[0][0] != std::to_string(round + c * kStatements + s)) {
            note(wrong, "client " + std::to_string(c) + " got a wrong value");
          } else {
            ++done;
          }
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  stop_proxy(pid);
  EXPECT_EQ(errors, 0) << first_problem;
  EXPECT_EQ(wrong, 0) << first_problem;
  EXPECT_EQ(done, kClients * kStatements * kRounds);
}

// ---------------------------------------------------------------- session state

TEST(MyProxy, SessionStateFollowsTheClientAcrossServers) {
  {
    auto primary = my_connect(kMyBasePort);
    ASSERT_TRUE(my_scalar(primary.get(), "CREATE DATABASE IF NOT EXISTS otherdb"));
    for (const char* replica : {kMyReplica1, kMyReplica2})
      ASSERT_TRUE(wait_until([&] { return replica_caught_up(replica); }, 10000));
  }
  auto a = my_connect();
  auto b = my_connect();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  const auto b_charset = my_scalar(b.get(), "SELECT @@character_set_client");
  ASSERT_TRUE(b_charset);
  const std::string a_mode = "ANSI_QUOTES,NO_ENGINE_SUBSTITUTION";
  ASSERT_TRUE(my_scalar(a.get(), "SET sql_mode = '" + a_mode + "'"));
  ASSERT_TRUE(my_scalar(a.get(), "SET NAMES latin1"));
  ASSERT_TRUE(my_scalar(a.get(), "USE otherdb"));
  // b changes its own settings too, so that connections change hands with
  // state that is not theirs.
  ASSERT_TRUE(my_scalar(b.get(), "SET sql_mode = 'TRADITIONAL'"));
  const auto b_mode = my_scalar(b.get(), "SELECT @@sql_mode");
  ASSERT_TRUE(b_mode);
  EXPECT_NE(b_mode->find("STRICT_ALL_TABLES"), std::string::npos) << *b_mode;
  // Every other statement goes to the primary: a moves between servers (and
  // between connections that b's statements used in between).
  std::set<int> a_ports;
  for (int i = 0; i < 30; ++i) {
    const std::string a_hint = i % 2 ? "/* shardgate:primary */ " : "";
    const std::string b_hint = i % 2 ? "" : "/* shardgate:primary */ ";
    auto ra = my_rows(a.get(), a_hint +
                                   "SELECT @@sql_mode, DATABASE(), @@character_set_client, "
                                   "@@port");
    ASSERT_TRUE(ra && ra->size() == 1);
    std::istringstream cols((*ra)[0]);
    std::string mode, db, charset, port;
    std::getline(cols, mode, '\t');
    std::getline(cols, db, '\t');
    std::getline(cols, charset, '\t');
    std::getline(cols, port, '\t');
    EXPECT_EQ(mode, a_mode) << "round " << i << " on port " << port;
    EXPECT_EQ(db, "otherdb") << "round " << i << " on port " << port;
    EXPECT_EQ(charset, "latin1") << "round " << i << " on port " << port;
    a_ports.insert(std::atoi(port.c_str()));
    auto rb = my_rows(b.get(), b_hint + "SELECT @@sql_mode, DATABASE(), @@character_set_client");
    ASSERT_TRUE(rb && rb->size() == 1);
    EXPECT_EQ((*rb)[0], *b_mode + "\tapp\t" + *b_charset) << "a's state leaked to b in round " << i;
  }
  EXPECT_TRUE(a_ports.count(kMyBasePort) &&
              (a_ports.count(kReplicaPort1) || a_ports.count(kReplicaPort2)))
      << "a should have run on the primary and on a replica";
  // COM_INIT_DB (mysql_select_db) is followed like USE.
  ASSERT_EQ(mysql_select_db(a.get(), "app"), 0) << mysql_error(a.get());
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(my_scalar(a.get(), "SELECT DATABASE()"), "app");
    EXPECT_EQ(my_scalar(a.get(), "SELECT @@sql_mode"), a_mode);
  }

  // User variables live on one server connection: the client stays there.
  auto v = my_connect();
  ASSERT_TRUE(my_scalar(v.get(), "SET @x := 5"));
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(my_scalar(v.get(), "SELECT @x"), "5");
    EXPECT_EQ(my_scalar(b.get(), "SELECT @x"), "NULL") << "a user variable leaked to b";
  }
  ASSERT_TRUE(my_scalar(v.get(), "SELECT @y := @x + 1"));
  EXPECT_EQ(my_scalar(v.get(), "SELECT @y * 10"), "60");
}

TEST(MyProxy, LastInsertIdIsTheClientsOwn) {
  auto c = my_connect();
  auto other = my_connect();
  ASSERT_TRUE(my_scalar(c.get(),
                        "CREATE TABLE IF NOT EXISTS ai (id BIGINT AUTO_INCREMENT "
                        "PRIMARY KEY, who VARCHAR(16))"));
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(my_scalar(c.get(), "INSERT INTO ai (who) VALUES ('c')"));
    const auto id = mysql_insert_id(c.get());
    ASSERT_GT(id, 0u);
    ASSERT_TRUE(my_scalar(other.get(), "INSERT INTO ai (who) VALUES ('other')"));
    EXPECT_EQ(my_scalar(c.get(), "SELECT LAST_INSERT_ID()"), std::to_string(id));
    EXPECT_EQ(my_scalar(c.get(), "/* shardgate:primary */ SELECT who FROM ai WHERE id = " +
                                     std::to_string(id)),
              "c");
  }
}

// LAST_INSERT_ID() is the connection's until its next insert, however many
// statements come between (MySQL semantics a client may rely on), even when
// other clients have since used the server connection it ran on.
TEST(MyProxy, LastInsertIdSurvivesLaterStatements) {
  auto c = my_connect();
  ASSERT_TRUE(my_scalar(c.get(),
                        "CREATE TABLE IF NOT EXISTS ai (id BIGINT AUTO_INCREMENT "
                        "PRIMARY KEY, who VARCHAR(16))"));
  ASSERT_TRUE(my_scalar(c.get(), "INSERT INTO ai (who) VALUES ('later')"));
  const auto id = mysql_insert_id(c.get());
  ASSERT_GT(id, 0u);
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(my_scalar(c.get(), "SELECT 1"));
  // Others insert on the primary, the connection c used among them.
  std::vector<MyConn> others;
  for (int i = 0; i < 6; ++i) {
    others.push_back(my_connect());
    ASSERT_TRUE(my_scalar(others.back().get(), "INSERT INTO ai (who) VALUES ('other')"));
    for (int j = 0; j < 8; ++j) ASSERT_TRUE(my_scalar(others.back().get(), "SELECT 1"));
  }
  const auto got = my_scalar(c.get(), "SELECT LAST_INSERT_ID()");
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, std::to_string(id))
      << (*got != "0" ? "the id of another client's insert" : "the id of no insert");
}

// COM_CHANGE_USER logs the connection in again (the proxy switches the client
// to its method with a fresh nonce) and starts a clean session.
TEST(MyProxy, ChangeUserStartsACleanSession) {
  auto c = my_connect();
  ASSERT_TRUE(my_scalar(c.get(), "SET @kept := 5"));
  ASSERT_EQ(mysql_change_user(c.get(), "app", "app", "app"), 0) << mysql_error(c.get());
  EXPECT_EQ(my_scalar(c.get(), "SELECT COALESCE(@kept, 'gone')"), "gone");
  EXPECT_EQ(my_scalar(c.get(), "SELECT DATABASE()"), "app");
  EXPECT_NE(mysql_change_user(c.get(), "app", "wrong", "app"), 0);
  EXPECT_EQ(mysql_errno(c.get()), 1045u) << mysql_error(c.get());
}

// KILL QUERY with the connection id from the greeting (what drivers use for
// query timeouts) stops the statement on the server; someone else's id is
// not found.
TEST(MyProxy, KillQueryByGreetingIdStopsTheStatement) {
  auto victim = my_connect();
  auto killer = my_connect();
  const unsigned long id = mysql_thread_id(victim.get());
  std::optional<std::string> slept;
  MyError error;
  std::thread t([&] { slept = my_scalar(victim.get(), "SELECT SLEEP(10)", &error); });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(my_scalar(killer.get(), "KILL QUERY " + std::to_string(id)));
  t.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  // MariaDB answers a killed SLEEP with 1 (interrupted) or error 1317.
  EXPECT_TRUE(!slept || *slept == "1") << slept.value_or("error");
  EXPECT_EQ(my_scalar(victim.get(), "SELECT 7"), "7");
  MyError unknown;
  EXPECT_FALSE(my_scalar(killer.get(), "KILL QUERY 4000000000", &unknown));
  EXPECT_EQ(unknown.code, 1094u);
}

// A statement and a row over 16 MB travel as several packets each way (the
// 0xFFFFFF-byte continuation rule), through the proxy unchanged.
TEST(MyProxy, MessagesOverSixteenMegabytes) {
  auto c = my_connect();
  ASSERT_TRUE(
      my_scalar(c.get(), "CREATE TABLE IF NOT EXISTS big (id INT PRIMARY KEY, b LONGBLOB)"));
  ASSERT_TRUE(my_scalar(c.get(), "DELETE FROM big"));
  const std::size_t size = 17 * 1024 * 1024 + 3;
  std::string sql = "INSERT INTO big VALUES (1, '";
  sql.append(size, 'x');
  sql += "')";
  MyError error;
  ASSERT_TRUE(my_scalar(c.get(), sql, &error)) << error.code << " " << error.message;
  EXPECT_EQ(my_scalar(c.get(), "/* shardgate:primary */ SELECT LENGTH(b) FROM big WHERE id = 1"),
            std::to_string(size));
  // The row itself back: one text cell of 17 MB.
  const auto value = my_scalar(c.get(), "/* shardgate:primary */ SELECT b FROM big WHERE id = 1");
  ASSERT_TRUE(value);
  EXPECT_EQ(value->size(), size);
  EXPECT_EQ(value->find_first_not_of('x'), std::string::npos);
  EXPECT_EQ(my_scalar(c.get(), "SELECT 1"), "1");
  ASSERT_TRUE(my_scalar(c.get(), "DROP TABLE big"));
}

// COM_STATISTICS, COM_FIELD_LIST, COM_PING and COM_INIT_DB through the proxy.
TEST(MyProxy, CommandsWithoutSql) {
  auto c = my_connect();
  const char* stat = mysql_stat(c.get());
  ASSERT_NE(stat, nullptr) << mysql_error(c.get());
  EXPECT_NE(std::string(stat).find("Uptime"), std::string::npos) << stat;
  ASSERT_TRUE(my_scalar(c.get(), "CREATE TABLE IF NOT EXISTS fl (a INT, b VARCHAR(8))"));
  MYSQL_RES* fields = mysql_list_fields(c.get(), "fl", nullptr);
  ASSERT_NE(fields, nullptr) << mysql_error(c.get());
  EXPECT_EQ(mysql_num_fields(fields), 2u);
  mysql_free_result(fields);
  EXPECT_EQ(mysql_ping(c.get()), 0);
  EXPECT_EQ(mysql_select_db(c.get(), "sbtest"), 0) << mysql_error(c.get());
  EXPECT_EQ(my_scalar(c.get(), "SELECT DATABASE()"), "sbtest");
  EXPECT_NE(mysql_select_db(c.get(), "no_such_db"), 0);
  EXPECT_EQ(mysql_errno(c.get()), 1049u);
  EXPECT_EQ(my_scalar(c.get(), "SELECT DATABASE()"), "sbtest");
  ASSERT_TRUE(my_scalar(c.get(), "DROP TABLE app.fl"));
}

// COM_STMT_SEND_LONG_DATA chunks reach the server that executes the
// statement; a read-only cursor (COM_STMT_FETCH, a few rows at a time) keeps
// the client on the server that holds it.
TEST(MyProxy, LongDataAndCursorFetch) {
  auto c = my_connect();
  ASSERT_TRUE(
      my_scalar(c.get(), "CREATE TABLE IF NOT EXISTS cur (id INT PRIMARY KEY, b MEDIUMBLOB)"));
  ASSERT_TRUE(my_scalar(c.get(), "DELETE FROM cur"));
  MYSQL_STMT* ins = mysql_stmt_init(c.get());
  const std::string insert = "INSERT INTO cur VALUES (?, ?)";
  ASSERT_EQ(mysql_stmt_prepare(ins, insert.data(), insert.size()), 0) << mysql_stmt_error(ins);
  int id = 1;
  MYSQL_BIND bind[2];
  std::memset(bind, 0, sizeof bind);
  bind[0].buffer_type = MYSQL_TYPE_LONG;
  bind[0].buffer = &id;
  bind[1].buffer_type = MYSQL_TYPE_BLOB;
  ASSERT_EQ(mysql_stmt_bind_param(ins, bind), 0) << mysql_stmt_error(ins);
  const std::string chunk(70000, 'y');
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(mysql_stmt_send_long_data(ins, 1, chunk.data(), chunk.size()), 0)
        << mysql_stmt_error(ins);
  ASSERT_EQ(mysql_stmt_execute(ins), 0) << mysql_stmt_error(ins);
  mysql_stmt_close(ins);
  EXPECT_EQ(my_scalar(c.get(), "/* shardgate:primary */ SELECT LENGTH(b) FROM cur WHERE id = 1"),
            std::to_string(3 * chunk.size()));
  for (int i = 2; i <= 10; ++i)
    ASSERT_TRUE(my_scalar(c.get(), "INSERT INTO cur VALUES (" + std::to_string(i) + ", NULL)"));

  MYSQL_STMT* sel = mysql_stmt_init(c.get());
  unsigned long cursor = CURSOR_TYPE_READ_ONLY;
  unsigned long prefetch = 3;
  mysql_stmt_attr_set(sel, STMT_ATTR_CURSOR_TYPE, &cursor);
  mysql_stmt_attr_set(sel, STMT_ATTR_PREFETCH_ROWS, &prefetch);
  const std::string query = "/* shardgate:primary */ SELECT id FROM cur ORDER BY id";
  ASSERT_EQ(mysql_stmt_prepare(sel, query.data(), query.size()), 0) << mysql_stmt_error(sel);
  ASSERT_EQ(mysql_stmt_execute(sel), 0) << mysql_stmt_error(sel);
  int got = 0;
  MYSQL_BIND out;
  std::memset(&out, 0, sizeof out);
  out.buffer_type = MYSQL_TYPE_LONG;
  out.buffer = &got;
  ASSERT_EQ(mysql_stmt_bind_result(sel, &out), 0);
  std::vector<int> ids;
  int rc;
  while ((rc = mysql_stmt_fetch(sel)) == 0) ids.push_back(got);
  EXPECT_EQ(rc, MYSQL_NO_DATA) << mysql_stmt_error(sel);
  EXPECT_EQ(ids, (std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
  mysql_stmt_close(sel);
  EXPECT_EQ(my_scalar(c.get(), "SELECT 1"), "1");
  ASSERT_TRUE(my_scalar(c.get(), "DROP TABLE cur"));
}

TEST(MyProxy, AdminShowsGtidPositionsAndMetrics) {
  std::string out;
  ASSERT_EQ(
      run(bin("shardctl") + " status --admin 127.0.0.1:" + std::to_string(kMyAdminPort), &out), 0)
      << out;
  EXPECT_NE(out.find("my-s0-replica2"), std::string::npos) << out;
  EXPECT_NE(out.find("gtid "), std::string::npos) << out;  // a GTID sequence, not an LSN
  ASSERT_EQ(run("curl -s http://127.0.0.1:" + std::to_string(kMyAdminPort) + "/metrics", &out), 0);
  EXPECT_NE(out.find("shardgate_statements_replica_total"), std::string::npos);
}

// Each read follows the session's own insert. The commit's GTID (session
// tracking) makes the read wait for it on a replica (MASTER_GTID_WAIT) rather
// than go to the primary: none may be stale, and replicas serve some.
TEST(MyProxy, ReadYourWritesThousandPairs) {
  auto c = my_connect();
  ASSERT_TRUE(my_scalar(c.get(), "CREATE TABLE IF NOT EXISTS ryw (id INT PRIMARY KEY)"));
  ASSERT_TRUE(my_scalar(c.get(), "TRUNCATE ryw"));
  // A wait that timed out in an earlier test (a 16 MB row takes a replica
  // longer than 50 ms) turns waits off for a second: let that pass.
  for (const char* r : {kMyReplica1, kMyReplica2})
    ASSERT_TRUE(wait_until([&] { return replica_caught_up(r); }, 30000)) << r;
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  const auto waits_before = metric(kMyAdminPort, "shardgate_read_your_writes_waits_total");
  const auto timeouts_before =
      metric(kMyAdminPort, "shardgate_read_your_writes_wait_timeouts_total");
  int stale = 0, errors = 0;
  for (int i = 0; i < 1000; ++i) {
    MyError e;
    if (!my_scalar(c.get(), "INSERT INTO ryw VALUES (" + std::to_string(i) + ")", &e)) {
      ADD_FAILURE() << "insert " << i << ": " << e.code << " " << e.message;
      if (++errors > 5) break;
      continue;
    }
    auto n = my_scalar(c.get(), "SELECT COUNT(*) FROM ryw WHERE id = " + std::to_string(i), &e);
    if (!n) {
      ADD_FAILURE() << "select " << i << ": " << e.code << " " << e.message;
      if (++errors > 5) break;
      continue;
    }
    stale += *n != "1";
  }
  EXPECT_EQ(errors, 0);
  EXPECT_EQ(stale, 0);
  const auto waits = metric(kMyAdminPort, "shardgate_read_your_writes_waits_total") - waits_before;
  const auto timeouts =
      metric(kMyAdminPort, "shardgate_read_your_writes_wait_timeouts_total") - timeouts_before;
  std::printf("[ ryw ] 1000 reads after writes: %llu waited on a replica, %llu waits timed out\n",
              static_cast<unsigned long long>(waits), static_cast<unsigned long long>(timeouts));
  EXPECT_GT(waits, 0u) << "no read waited on a replica for the session's commit";
  // Once the replicas have applied the writes, reads go back to them.
  EXPECT_TRUE(wait_until([&] { return is_replica_port(my_port(c.get())); }, 5000));
}

// ---------------------------------------------------------------- errors

TEST(MyProxyErrors, WrongPasswordAndUnknownUserAre1045) {
  MyError e;
  EXPECT_EQ(my_try_connect(kMyProxyPort, "app", "wrong", "app", &e), nullptr);
  EXPECT_EQ(e.code, 1045u) << e.message;
  EXPECT_NE(e.message.find("Access denied for user 'app'"), std::string::npos) << e.message;
  EXPECT_EQ(my_try_connect(kMyProxyPort, "nobody", "x", "app", &e), nullptr);
  EXPECT_EQ(e.code, 1045u) << e.message;
  std::string out;
  EXPECT_NE(run("mariadb -h 127.0.0.1 -P " + std::to_string(kMyProxyPort) +
                    " -u app -pwrong app -e 'SELECT 1'",
                &out),
            0);
  EXPECT_NE(out.find("ERROR 1045"), std::string::npos) << out;
  auto ok = my_connect();
  EXPECT_EQ(my_scalar(ok.get(), "SELECT 1"), "1");
}

TEST(MyProxyErrors, TooManyClientsIs1040) {
  const std::string cfg =
      write_my_config_variant("my-limited",
                              "s/^listeners:/limits:\\n  max_client_connections: 2\\nlisteners:/; "
                              "s/port: 22336/port: 22340/; s/port: 22337/port: 22341/");
  const pid_t pid = start_proxy(cfg, 22340);
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(wait_for_no_clients(22341));
  auto a = my_connect(22340);
  auto b = my_connect(22340);
  MyError e;
  EXPECT_EQ(my_try_connect(22340, "app", "app", "app", &e), nullptr);
  EXPECT_EQ(e.code, 1040u) << e.message;
  EXPECT_NE(e.message.find("max_client_connections"), std::string::npos) << e.message;
  EXPECT_EQ(my_scalar(a.get(), "SELECT 1"), "1");
  b.reset();  // a place frees up
  EXPECT_TRUE(wait_until([] { return my_try_connect(22340) != nullptr; }, 3000));
  stop_proxy(pid);
}

// A client that is mid-transaction while others send bad bytes: it must not notice.
class MyProxyProtocol : public ::testing::Test {
 protected:
  void SetUp() override {
    bystander_ = my_connect();
    ASSERT_TRUE(my_scalar(bystander_.get(), "BEGIN"));
    ASSERT_TRUE(my_scalar(bystander_.get(), "SELECT 1"));
  }
  void TearDown() override {
    EXPECT_EQ(my_scalar(bystander_.get(), "SELECT 42"), "42");
    EXPECT_TRUE(my_scalar(bystander_.get(), "COMMIT"));
  }
  // Connects and reads the greeting.
  static std::string greet(RawSocket& raw) {
    EXPECT_TRUE(raw.connected());
    auto greeting = raw.read_packet();
    EXPECT_TRUE(greeting);
    if (!greeting) return "";
    EXPECT_EQ(greeting->first, 0);
    EXPECT_EQ(greeting->second[0], 10) << "HandshakeV10";
    return greeting->second;
  }
  MyConn bystander_;
};

TEST_F(MyProxyProtocol, MalformedHandshakeResponseGets1043AndAClose) {
  RawSocket raw(kMyProxyPort);
  greet(raw);
  ASSERT_TRUE(raw.send(my_packet(1, "\x01garbage")));
  auto answer = raw.read_packet();
  ASSERT_TRUE(answer) << "no answer to a malformed handshake response";
  EXPECT_EQ(err_code(answer->second), 1043u) << answer->second;
  EXPECT_EQ(answer->first, 2);
  EXPECT_TRUE(raw.closed_by_peer());
}

// A login packet declaring 16 MB, far over what a login packet can be: the
// client learns why before the connection closes (as after login, 1153).
TEST_F(MyProxyProtocol, OversizedLoginPacketGetsAnErrorAndAClose) {
  RawSocket raw(kMyProxyPort);
  greet(raw);
  ASSERT_TRUE(raw.send(std::string("\xfe\xff\xff\x01garbage", 11)));
  auto answer = raw.read_packet();
  ASSERT_TRUE(answer) << "the connection was closed without an ERR packet";
  EXPECT_NE(err_code(answer->second), 0u) << answer->second;
  EXPECT_TRUE(raw.closed_by_peer());
}

// A correct handshake response with sequence id 5 where 1 belongs: MariaDB
// answers 1156 "Got packets out of order" and closes.
TEST_F(MyProxyProtocol, LoginPacketOutOfSequenceGets1156AndAClose) {
  {
    // The response in sequence logs in: the test's packet is right.
    RawSocket raw(kMyProxyPort);
    const std::string greeting = greet(raw);
    ASSERT_TRUE(
        raw.send(my_packet(1, handshake_response("app", "app", "app", greeting_nonce(greeting)))));
    auto answer = raw.read_packet();
    ASSERT_TRUE(answer);
    EXPECT_EQ(answer->second[0], 0) << "OK expected, got error " << err_code(answer->second);
  }
  RawSocket raw(kMyProxyPort);
  const std::string greeting = greet(raw);
  ASSERT_TRUE(
      raw.send(my_packet(5, handshake_response("app", "app", "app", greeting_nonce(greeting)))));
  auto answer = raw.read_packet();
  ASSERT_TRUE(answer) << "the connection was closed without an ERR packet";
  EXPECT_EQ(err_code(answer->second), 1156u)
      << "a login packet out of sequence was answered with sequence id " << answer->first
      << " and first byte " << static_cast<int>(static_cast<unsigned char>(answer->second[0]));
  if (err_code(answer->second) != 0) {
    EXPECT_TRUE(raw.closed_by_peer());
  }
}

TEST_F(MyProxyProtocol, CommandOutOfSequenceGets1156AndAClose) {
  auto c = my_connect();
  ASSERT_NE(c, nullptr);
  RawSocket raw(c.get());
  ASSERT_TRUE(raw.send(my_packet(3, "\x03SELECT 1")));
  auto answer = raw.read_packet();
  ASSERT_TRUE(answer);
  EXPECT_EQ(err_code(answer->second), 1156u) << answer->second;
  EXPECT_TRUE(raw.closed_by_peer());
  EXPECT_FALSE(my_scalar(c.get(), "SELECT 1"));
}

TEST_F(MyProxyProtocol, UnknownCommandIs1047AndTheConnectionGoesOn) {
  auto c = my_connect();
  ASSERT_NE(c, nullptr);
  ASSERT_EQ(my_scalar(c.get(), "SELECT 5"), "5");
  {
    RawSocket raw(c.get());
    ASSERT_TRUE(raw.send(my_packet(0, "\x50unknown")));
    auto answer = raw.read_packet();
    ASSERT_TRUE(answer);
    EXPECT_EQ(answer->first, 1);
    EXPECT_EQ(err_code(answer->second), 1047u) << answer->second;
  }
  EXPECT_EQ(my_scalar(c.get(), "SELECT 6"), "6");
  EXPECT_EQ(mysql_ping(c.get()), 0) << mysql_error(c.get());
}

TEST(MyProxyErrors, LoadDataLocalInfileIs1148WithAClearMessage) {
  MyConn c(mysql_init(nullptr));
  const unsigned int on = 1;
  mysql_options(c.get(), MYSQL_OPT_LOCAL_INFILE, &on);
  ASSERT_NE(mysql_real_connect(c.get(), "127.0.0.1", "app", "app", "app", kMyProxyPort, nullptr, 0),
            nullptr)
      << mysql_error(c.get());
  ASSERT_TRUE(my_scalar(c.get(), "CREATE TABLE IF NOT EXISTS li (a INT, b VARCHAR(8))"));
  const std::string file = my_sandbox_dir() + "/li.csv";
  std::ofstream(file) << "1,x\n2,y\n";
  MyError e;
  EXPECT_FALSE(my_scalar(
      c.get(), "LOAD DATA LOCAL INFILE '" + file + "' INTO TABLE li FIELDS TERMINATED BY ','", &e));
  EXPECT_EQ(e.code, 1148u) << e.message;
  EXPECT_NE(e.message.find("LOAD DATA LOCAL INFILE is not relayed by shardgate"), std::string::npos)
      << e.message;
  EXPECT_EQ(my_scalar(c.get(), "/* shardgate:primary */ SELECT COUNT(*) FROM li"), "0");
  EXPECT_EQ(my_scalar(c.get(), "SELECT 7"), "7");
}

// ---------------------------------------------------------------- sysbench

void sysbench(const std::string& test, bool writes) {
  std::string out;
  const std::string cmd =
      "sysbench --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port=" +
      std::to_string(kMyProxyPort) +
      " --mysql-user=app --mysql-password=app --mysql-db=sbtest --tables=2 --table-size=1000 "
      "--threads=8 --time=4 " +
      test + " run";
  const int rc = run(cmd, &out);
  ASSERT_EQ(rc, 0) << cmd << "\n" << out;
  EXPECT_EQ(out.find("FATAL"), std::string::npos) << out;
  EXPECT_NE(out.find("transactions:"), std::string::npos) << out;
  // sysbench retries deadlocks and lock wait timeouts and counts them as
  // "ignored errors"; only a write workload can meet them.
  const auto at = out.find("ignored errors:");
  ASSERT_NE(at, std::string::npos) << out;
  const long ignored = std::atol(out.c_str() + at + std::strlen("ignored errors:"));
  if (writes) {
    std::cout << "[ sysbench ] " << test << ": " << ignored << " ignored errors\n";
  } else {
    EXPECT_EQ(ignored, 0) << out;
  }
}

TEST(MyProxy, SysbenchThroughTheProxy) {
  std::string out;
  ASSERT_EQ(run("sysbench --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port=" +
                    std::to_string(kMyBasePort) +
                    " --mysql-user=app --mysql-password=app --mysql-db=sbtest --tables=2 "
                    "--table-size=1000 oltp_read_write prepare",
                &out),
            0)
      << out;
  sysbench("oltp_point_select", false);
  sysbench("oltp_read_only", false);
  sysbench("oltp_read_write", true);
}

// ---------------------------------------------------------------- faults: keep them last

class MyProxyFaults : public ::testing::Test {
 protected:
  // Whatever a test did, every member runs again and replicates before the next one.
  void TearDown() override {
    for (const char* m : {kMyPrimary, kMyReplica1, kMyReplica2})
      if (!my_member_up(m)) start_my_member(m);
    for (const char* r : {kMyReplica1, kMyReplica2})
      EXPECT_TRUE(wait_until([&] { return replica_caught_up(r); }, 30000)) << r;
  }
};

// Replicas that do not apply: a read after the client's write waits on one
// (MASTER_GTID_WAIT, routing.replica_wait_ms) and then runs on the primary,
// never stale; for a second after that timeout reads skip the wait.
TEST_F(MyProxyFaults, ReadYourWritesWithStoppedReplicasWaitOnceThenUseThePrimary) {
  auto c = my_connect();
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(my_scalar(c.get(), "CREATE TABLE IF NOT EXISTS ryw_lag (id INT PRIMARY KEY)"));
  ASSERT_TRUE(my_scalar(c.get(), "TRUNCATE ryw_lag"));
  for (const char* r : {kMyReplica1, kMyReplica2})
    ASSERT_TRUE(wait_until([&] { return replica_caught_up(r); }, 30000)) << r;
  // An earlier timeout turns waits off for a second: let that pass.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  MyError e;
  for (const char* r : {kMyReplica1, kMyReplica2}) {
    MyConn admin = my_try_connect(my_member_port(r), "monitor", "monitor", "", &e);
    ASSERT_NE(admin, nullptr) << e.message;
    ASSERT_TRUE(my_rows(admin.get(), "STOP SLAVE SQL_THREAD", &e)) << e.message;
  }
  const auto timeouts_before =
      metric(kMyAdminPort, "shardgate_read_your_writes_wait_timeouts_total");
  const auto started = std::chrono::steady_clock::now();
  int stale = 0;
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(my_scalar(c.get(), "INSERT INTO ryw_lag VALUES (" + std::to_string(i) + ")", &e))
        << e.message;
    auto n = my_scalar(c.get(), "SELECT COUNT(*) FROM ryw_lag WHERE id = " + std::to_string(i), &e);
    ASSERT_TRUE(n) << e.message;
    stale += *n != "1";
  }
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  const auto timeouts =
      metric(kMyAdminPort, "shardgate_read_your_writes_wait_timeouts_total") - timeouts_before;
  for (const char* r : {kMyReplica1, kMyReplica2}) {
    MyConn admin = my_try_connect(my_member_port(r), "monitor", "monitor", "", &e);
    ASSERT_NE(admin, nullptr) << e.message;
    EXPECT_TRUE(my_rows(admin.get(), "START SLAVE SQL_THREAD", &e)) << e.message;
  }
  EXPECT_EQ(stale, 0);
  EXPECT_GE(timeouts, 1u) << "the first read waited on a replica and timed out";
  // Each worker thread waits once per second at most (2 threads here), not
  // once per read: 20 waits of 50 ms would take a second by themselves.
  EXPECT_LE(timeouts, 4u) << ms << " ms";
}

TEST_F(MyProxyFaults, ReplicaKilledReadsContinueThenComeBack) {
  auto c = my_connect();
  ASSERT_NE(c, nullptr);
  // After the write benchmark the replicas may lag for a moment (reads then
  // go to the primary, as they should): wait.
  ASSERT_TRUE(wait_until([&] { return is_replica_port(my_port(c.get())); }, 20000));
  // Runs `reads` SELECT @@port; the ports that answered, and the errors.
  MyError e;
  int errors = 0;
  auto read_ports = [&](int reads) {
    std::set<int> ports;
    errors = 0;
    for (int i = 0; i < reads; ++i) {
      auto p = my_scalar(c.get(), "SELECT @@port", &e);
      if (!p)
        ++errors;
      else
        ports.insert(std::stoi(*p));
    }
    return ports;
  };
  kill_my_member(kMyReplica1);
  std::set<int> ports = read_ports(200);
  EXPECT_EQ(errors, 0) << e.code << " " << e.message;
  EXPECT_EQ(ports.count(kReplicaPort1), 0u) << "reads still went to the killed replica";
  EXPECT_EQ(ports.count(kReplicaPort2), 1u);

  kill_my_member(kMyReplica2);
  ports = read_ports(100);
  EXPECT_EQ(errors, 0) << e.code << " " << e.message;
  EXPECT_EQ(ports, std::set<int>{kMyBasePort})
      << "with every replica down, reads go to the primary";

  start_my_member(kMyReplica1);
  start_my_member(kMyReplica2);
  EXPECT_TRUE(wait_until([&] { return my_port(c.get()) == kReplicaPort1; }, 15000))
      << "a replica that came back is used again";
  EXPECT_TRUE(wait_until([&] { return my_port(c.get()) == kReplicaPort2; }, 15000));
}

// Runs `sql` through `c` while a thread waits for it to show up on one of
// `members` and kills that member; returns the member killed.
std::string kill_during(MYSQL* c, const std::string& sql, std::vector<std::string> members,
                        std::optional<std::string>* result, MyError* error, milliseconds* elapsed) {
  std::string killed;
  std::thread killer([&] {
    wait_until(
        [&] {
          for (const auto& m : members) {
            auto direct = my_try_connect(my_member_port(m), "app", "app", "");
            if (!direct) continue;
            auto n = my_scalar(direct.get(),
                               "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO "
                               "LIKE '%SLEEP(5)%' AND ID <> CONNECTION_ID()");
            if (n == "1") {
              killed = m;
              return true;
            }
          }
          return false;
        },
        4000);
    if (!killed.empty()) kill_my_member(killed);
  });
  const auto start = steady_clock::now();
  *result = my_scalar(c, sql, error);
  *elapsed = std::chrono::duration_cast<milliseconds>(steady_clock::now() - start);
  killer.join();
  return killed;
}

TEST_F(MyProxyFaults, ReplicaDyingMidReadGivesAnErrorThenRecovers) {
  auto c = my_connect();
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(wait_until([&] { return is_replica_port(my_port(c.get())); }, 20000));
  std::optional<std::string> result;
  MyError e;
  milliseconds elapsed;
  const std::string killed = kill_during(c.get(), "SELECT SLEEP(5), @@port",
                                         {kMyReplica1, kMyReplica2}, &result, &e, &elapsed);
  ASSERT_FALSE(killed.empty()) << "the read did not show up on a replica";
  EXPECT_FALSE(result) << "the read succeeded on a server that died under it: " << *result;
  EXPECT_NE(e.code, 0u);
  EXPECT_LT(elapsed, milliseconds(4500)) << "the client waited for the dead server";
  std::cout << "[ error    ] " << e.code << " " << e.message << "\n";
  // The next statement works at once (on another server) and after the restart.
  EXPECT_EQ(my_scalar(c.get(), "SELECT 5", &e), "5") << e.code << " " << e.message;
  start_my_member(killed);
  EXPECT_EQ(my_scalar(c.get(), "SELECT 6", &e), "6") << e.code << " " << e.message;
}

TEST_F(MyProxyFaults, PrimaryDyingMidQueryGivesAnErrorThenRecovers) {
  auto c = my_connect();
  ASSERT_NE(c, nullptr);
  std::optional<std::string> result;
  MyError e;
  milliseconds elapsed;
  const std::string killed = kill_during(c.get(), "/* shardgate:primary */ SELECT SLEEP(5)",
                                         {kMyPrimary}, &result, &e, &elapsed);
  ASSERT_EQ(killed, kMyPrimary);
  EXPECT_FALSE(result) << "the statement succeeded on a server that died under it";
  EXPECT_NE(e.code, 0u);
  EXPECT_LT(elapsed, milliseconds(4500)) << "the client waited for the dead server";
  std::cout << "[ error    ] " << e.code << " " << e.message << "\n";
  start_my_member(kMyPrimary);
  // Once the primary is back, the same client writes again.
  EXPECT_EQ(my_scalar(c.get(), "/* shardgate:primary */ SELECT @@port", &e),
            std::to_string(kMyBasePort))
      << e.code << " " << e.message;
  EXPECT_TRUE(my_scalar(c.get(), "CREATE TABLE IF NOT EXISTS after_kill (v VARCHAR(16))", &e))
      << e.code << " " << e.message;
  EXPECT_TRUE(my_scalar(c.get(), "INSERT INTO after_kill VALUES ('after')", &e))
      << e.code << " " << e.message;
  for (const char* r : {kMyReplica1, kMyReplica2})
    EXPECT_TRUE(wait_until([&] { return replica_caught_up(r); }, 30000)) << r;
}

}  // namespace
}  // namespace shardgate::it
