// shardgate in front of real PostgreSQL 15 streaming replication, driven by
// libpq, psql and pgbench. Tests that kill servers come last in this file
// (gtest runs them in order) and put the sandbox back as they found it.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <set>
#include <thread>

#include "tests/integration/harness.h"

namespace shardgate::it {
namespace {

bool on_replica(PGconn* c, const std::string& prefix = "") {
  auto v = scalar(c, prefix + "SELECT pg_is_in_recovery()");
  EXPECT_TRUE(v.has_value());
  return v && *v == "t";
}

int server_port(PGconn* c, const std::string& prefix = "") {
  auto v = scalar(c, prefix + "SELECT current_setting('port')");
  return v && !v->empty() ? std::stoi(*v) : -1;
}

TEST(PgProxy, SimpleQueryAndParameterStatus) {
  auto c = connect(proxy_conninfo());
  EXPECT_EQ(scalar(c.get(), "SELECT 1 + 1"), "2");
  EXPECT_NE(PQparameterStatus(c.get(), "server_version"), nullptr);
  EXPECT_STREQ(PQparameterStatus(c.get(), "client_encoding"), "UTF8");
  EXPECT_EQ(PQbackendPID(c.get()) > 0, true);
}

TEST(PgProxy, ReadsGoToReplicasWritesToPrimary) {
  auto c = connect(proxy_conninfo());
  std::set<int> ports;
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(on_replica(c.get()));
  // Both replicas serve reads once the monitor has seen them healthy.
  EXPECT_TRUE(wait_until(
      [&] {
        ports.insert(server_port(c.get()));
        return ports == std::set<int>{kBasePort + 1, kBasePort + 2};
      },
      5000))
      << "reads should spread over both replicas";
  ASSERT_TRUE(scalar(c.get(), "CREATE TABLE IF NOT EXISTS rw (id int primary key, v text)"));
  ASSERT_TRUE(scalar(c.get(), "INSERT INTO rw VALUES (1, 'a') ON CONFLICT DO NOTHING"));
  // A data-modifying statement that also reads must run on the primary.
  EXPECT_EQ(scalar(c.get(),
                   "WITH x AS (UPDATE rw SET v = 'b' WHERE id = 1 RETURNING 1) "
                   "SELECT pg_is_in_recovery()::text FROM x"),
            "false");
  EXPECT_EQ(scalar(c.get(), "SELECT pg_is_in_recovery() FROM rw FOR UPDATE"), "f");
  EXPECT_EQ(
      scalar(c.get(), "SELECT nextval('rw_seq'::regclass) IS NULL OR pg_is_in_recovery()", nullptr)
          .has_value(),
      false);  // rw_seq does not exist: the error must come from the primary...
  std::string err;
  scalar(c.get(), "SELECT nextval('rw_seq_missing')", &err);
  EXPECT_EQ(err.find("read-only"), std::string::npos) << "nextval() was sent to a replica: " << err;
}

TEST(PgProxy, TransactionsAreOnThePrimaryReadOnlyOnReplica) {
  auto c = connect(proxy_conninfo());
  ASSERT_TRUE(scalar(c.get(), "BEGIN"));
  EXPECT_FALSE(on_replica(c.get()));
  const int port = server_port(c.get());
  EXPECT_EQ(port, kBasePort);
  ASSERT_TRUE(scalar(c.get(), "COMMIT"));
  ASSERT_TRUE(scalar(c.get(), "BEGIN READ ONLY"));
  EXPECT_TRUE(on_replica(c.get()));
  const int first = server_port(c.get());
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(server_port(c.get()), first) << "a transaction must stay on one server";
  ASSERT_TRUE(scalar(c.get(), "COMMIT"));
}

TEST(PgProxy, HintsOverrideClassification) {
  auto c = connect(proxy_conninfo());
  EXPECT_FALSE(on_replica(c.get(), "/* shardgate:primary */ "));
  EXPECT_TRUE(on_replica(c.get(), "/* shardgate:replica */ "));
}

TEST(PgProxy, ExtendedProtocolAndNamedPreparedStatementsAcrossServers) {
  auto setup = connect(proxy_conninfo());
  ASSERT_TRUE(scalar(setup.get(), "CREATE TABLE IF NOT EXISTS kv (k int primary key, v int)"));
  std::vector<Conn> clients;
  for (int i = 0; i < 6; ++i) clients.push_back(connect(proxy_conninfo()));
  for (std::size_t i = 0; i < clients.size(); ++i) {
    Res p(PQprepare(clients[i].get(), "ins",
                    "INSERT INTO kv VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v",
                    2, nullptr));
    ASSERT_EQ(PQresultStatus(p.get()), PGRES_COMMAND_OK) << PQresultErrorMessage(p.get());
    Res q(PQprepare(clients[i].get(), "get", "SELECT v FROM kv WHERE k = $1", 1, nullptr));
    ASSERT_EQ(PQresultStatus(q.get()), PGRES_COMMAND_OK) << PQresultErrorMessage(q.get());
  }
  // Interleave clients so that their statements land on many server connections.
  for (int round = 0; round < 50; ++round) {
    for (std::size_t i = 0; i < clients.size(); ++i) {
      const std::string k = std::to_string(static_cast<int>(i) * 1000 + round);
      const std::string v = std::to_string(round);
      const char* ins[] = {k.c_str(), v.c_str()};
      Res r(PQexecPrepared(clients[i].get(), "ins", 2, ins, nullptr, nullptr, 0));
      ASSERT_EQ(PQresultStatus(r.get()), PGRES_COMMAND_OK) << PQresultErrorMessage(r.get());
      const char* get[] = {k.c_str()};
      Res g(PQexecPrepared(clients[i].get(), "get", 1, get, nullptr, nullptr, 0));
      ASSERT_EQ(PQresultStatus(g.get()), PGRES_TUPLES_OK) << PQresultErrorMessage(g.get());
      ASSERT_EQ(PQntuples(g.get()), 1) << "read-your-writes: the row just written must be visible";
      EXPECT_EQ(std::string(PQgetvalue(g.get(), 0, 0)), v);
      const char* params[] = {v.c_str()};
      Res e(PQexecParams(clients[i].get(), "SELECT $1::int + 1", 1, nullptr, params, nullptr,
                         nullptr, 0));
      ASSERT_EQ(PQresultStatus(e.get()), PGRES_TUPLES_OK) << PQresultErrorMessage(e.get());
      EXPECT_EQ(std::string(PQgetvalue(e.get(), 0, 0)), std::to_string(round + 1));
    }
  }
  // DEALLOCATE ALL ends this client's statements, not those of the clients
  // sharing the server-side statements.
  Res d(PQexec(clients[0].get(), "DEALLOCATE ALL"));
  ASSERT_EQ(PQresultStatus(d.get()), PGRES_COMMAND_OK) << PQresultErrorMessage(d.get());
  const char* one[] = {"1"};
  Res gone(PQexecPrepared(clients[0].get(), "get", 1, one, nullptr, nullptr, 0));
  EXPECT_EQ(PQresultStatus(gone.get()), PGRES_FATAL_ERROR);
  EXPECT_NE(std::string(PQresultErrorMessage(gone.get())).find("does not exist"),
            std::string::npos);
  for (int round = 0; round < 10; ++round) {
    for (std::size_t i = 1; i < clients.size(); ++i) {
      Res g(PQexecPrepared(clients[i].get(), "get", 1, one, nullptr, nullptr, 0));
      EXPECT_EQ(PQresultStatus(g.get()), PGRES_TUPLES_OK) << PQresultErrorMessage(g.get());
    }
  }
}

TEST(PgProxy, SessionSettingsFollowTheClient) {
  auto a = connect(proxy_conninfo());
  auto b = connect(proxy_conninfo());
  ASSERT_TRUE(scalar(a.get(), "SET statement_timeout = '7s'"));
  ASSERT_TRUE(scalar(a.get(), "SET application_name TO 'client-a'"));
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(scalar(a.get(), "SHOW statement_timeout"), "7s");
    EXPECT_EQ(scalar(b.get(), "SHOW statement_timeout"), "0") << "a's setting leaked to b";
    EXPECT_EQ(scalar(a.get(), "SELECT current_setting('application_name')"), "client-a");
  }
  ASSERT_TRUE(scalar(a.get(), "RESET statement_timeout"));
  EXPECT_EQ(scalar(a.get(), "SHOW statement_timeout"), "0");
}

TEST(PgProxy, ReadYourWritesThousandPairs) {
  auto c = connect(proxy_conninfo());
  ASSERT_TRUE(scalar(c.get(), "CREATE TABLE IF NOT EXISTS ryw (id int primary key)"));
  ASSERT_TRUE(scalar(c.get(), "TRUNCATE ryw"));
  int stale = 0;
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(scalar(c.get(), "INSERT INTO ryw VALUES (" + std::to_string(i) + ")"));
    auto n = scalar(c.get(), "SELECT count(*) FROM ryw WHERE id = " + std::to_string(i));
    ASSERT_TRUE(n);
    stale += *n != "1";
  }
  EXPECT_EQ(stale, 0);
  // Once replicas have replayed the writes, reads go back to them.
  EXPECT_TRUE(wait_until([&] { return on_replica(c.get()); }, 5000));
}

TEST(PgProxy, CopyInAndOut) {
  const std::string psql = "psql \"" + proxy_conninfo() + "\" -v ON_ERROR_STOP=1 -qAt";
  std::string out;
  ASSERT_EQ(
      run(psql + " -c 'CREATE TABLE IF NOT EXISTS cp (a int, b text)' -c 'TRUNCATE cp'", &out), 0)
      << out;
  ASSERT_EQ(
      run("seq 1 5000 | awk '{print $1\"\\tx\"$1}' | " + psql + " -c 'COPY cp FROM STDIN'", &out),
      0)
      << out;
  ASSERT_EQ(run(psql + " -c '/* shardgate:primary */ SELECT count(*), sum(a) FROM cp'", &out), 0)
      << out;
  EXPECT_EQ(out, "5000|12502500\n");
  ASSERT_EQ(run(psql + " -c 'COPY (SELECT a FROM cp ORDER BY a LIMIT 3) TO STDOUT'", &out), 0)
      << out;
  EXPECT_EQ(out, "1\n2\n3\n");
  // A failing COPY leaves the connection usable.
  ASSERT_NE(run("printf 'notanumber\\tx\\n' | " + psql + " -c 'COPY cp FROM STDIN'", &out), 0);
  EXPECT_NE(out.find("invalid input syntax"), std::string::npos) << out;
}

TEST(PgProxy, WrongPasswordAndUnknownUser) {
  Conn c(PQconnectdb(proxy_conninfo("app", "wrong").c_str()));
  EXPECT_EQ(PQstatus(c.get()), CONNECTION_BAD);
  EXPECT_NE(std::string(PQerrorMessage(c.get())).find("password authentication failed"),
            std::string::npos)
      << PQerrorMessage(c.get());
  Conn u(PQconnectdb(proxy_conninfo("nobody", "x").c_str()));
  EXPECT_EQ(PQstatus(u.get()), CONNECTION_BAD);
  auto ok = connect(proxy_conninfo());
  EXPECT_EQ(scalar(ok.get(), "SELECT 1"), "1");
}

// Sends raw bytes and returns whatever the proxy answers before closing.
TEST(PgProxy, MalformedBytesGetProtocolErrorOthersUnaffected) {
  auto bystander = connect(proxy_conninfo());
  ASSERT_TRUE(scalar(bystander.get(), "BEGIN"));
  // Garbage instead of a startup packet (length field far too large).
  std::string answer = raw_exchange(std::string("\xff\xff\xff\xffGARBAGE-GARBAGE", 19));
  EXPECT_NE(answer.find("08P01"), std::string::npos);
  // A startup packet with a parameter list that is not terminated.
  std::string bad_startup("\0\0\0\x0f\0\x03\0\0user\0ap", 15);
  answer = raw_exchange(bad_startup);
  EXPECT_NE(answer.find("08P01"), std::string::npos) << answer;
  // Truncated message after a proper login is covered by psql below: a message
  // whose declared length exceeds max_message_size.
  EXPECT_EQ(scalar(bystander.get(), "SELECT 42"), "42");
  ASSERT_TRUE(scalar(bystander.get(), "COMMIT"));
}

TEST(PgProxy, OversizedAndUnknownMessagesAfterLogin) {
  auto c = connect(proxy_conninfo());
  const int fd = PQsocket(c.get());
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);  // libpq leaves it non-blocking
  // 'Q' with a length of 1 GiB: over max_message_size.
  const char big[] = {'Q', 0x40, 0, 0, 0};
  ASSERT_EQ(::send(fd, big, sizeof big, MSG_NOSIGNAL), 5);
  std::string answer;
  char buf[4096];
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) answer.append(buf, n);
  EXPECT_NE(answer.find("08P01"), std::string::npos);
  EXPECT_NE(answer.find("max_message_size"), std::string::npos);
  auto other = connect(proxy_conninfo());
  EXPECT_EQ(scalar(other.get(), "SELECT 7"), "7");
}

TEST(PgProxy, MalformedExtendedMessageGetsProtocolError) {
  auto c = connect(proxy_conninfo());
  const int fd = PQsocket(c.get());
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  // A Bind whose portal name has no terminator, then Sync.
  const char bind[] = {'B', 0, 0, 0, 7, 'a', 'b', 'c', 'S', 0, 0, 0, 4};
  ASSERT_EQ(::send(fd, bind, sizeof bind, MSG_NOSIGNAL), static_cast<ssize_t>(sizeof bind));
  std::string answer;
  char buf[4096];
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) answer.append(buf, n);
  EXPECT_NE(answer.find("08P01"), std::string::npos) << answer;
  EXPECT_NE(answer.find("malformed Bind message"), std::string::npos) << answer;
  auto other = connect(proxy_conninfo());
  EXPECT_EQ(scalar(other.get(), "SELECT 8"), "8");
}

TEST(PgProxy, CancelReachesTheServer) {
  auto c = connect(proxy_conninfo());
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    PGcancel* cancel = PQgetCancel(c.get());
    char err[256];
    PQcancel(cancel, err, sizeof err);
    PQfreeCancel(cancel);
  });
  const auto start = std::chrono::steady_clock::now();
  std::string err;
  auto r = scalar(c.get(), "SELECT pg_sleep(20)", &err);
  canceller.join();
  EXPECT_FALSE(r.has_value());
  EXPECT_NE(err.find("canceling statement"), std::string::npos) << err;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(scalar(c.get(), "SELECT 1"), "1");
}

TEST(PgProxy, ServerDyingMidQueryGivesErrorThenRecovers) {
  auto c = connect(proxy_conninfo());
  auto admin = connect(direct_conninfo(kBasePort));
  std::thread killer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    scalar(admin.get(),
           "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE "
           "'%pg_sleep(15)%' AND pid <> pg_backend_pid()");
  });
  std::string err;
  auto r = scalar(c.get(), "/* shardgate:primary */ SELECT pg_sleep(15)", &err);
  killer.join();
  EXPECT_FALSE(r.has_value());
  EXPECT_FALSE(err.empty());
  EXPECT_EQ(scalar(c.get(), "SELECT 5"), "5")
      << "the next statement must succeed on a healthy server";
}

TEST(PgProxy, AdminApiAndMetrics) {
  std::string out;
  ASSERT_EQ(
      run("curl -sf http://127.0.0.1:" + std::to_string(kAdminPort) + "/api/v1/backends", &out), 0)
      << out;
  EXPECT_NE(out.find("\"pg-s0-primary\""), std::string::npos);
  EXPECT_NE(out.find("\"lag_bytes\""), std::string::npos);
  ASSERT_EQ(run("curl -sf http://127.0.0.1:" + std::to_string(kAdminPort) + "/metrics", &out), 0)
      << out;
  EXPECT_NE(out.find("shardgate_statements_replica_total"), std::string::npos);
  EXPECT_NE(out.find("shardgate_statement_latency_seconds_bucket"), std::string::npos);
  ASSERT_EQ(run(bin("shardctl") + " status --admin 127.0.0.1:" + std::to_string(kAdminPort), &out),
            0)
      << out;
  EXPECT_NE(out.find("pg-s0-replica2"), std::string::npos) << out;
}

// A SET inside a transaction that commits follows the client to its next
// server connections; one in a transaction that rolls back does not.
TEST(PgProxy, SetInsideATransactionFollowsTheCommit) {
  auto c = connect(proxy_conninfo());
  ASSERT_TRUE(scalar(c.get(), "BEGIN"));
  ASSERT_TRUE(scalar(c.get(), "SET application_name = 'committed_name'"));
  ASSERT_TRUE(scalar(c.get(), "COMMIT"));
  ASSERT_TRUE(scalar(c.get(), "BEGIN"));
  ASSERT_TRUE(scalar(c.get(), "SET statement_timeout = '12345ms'"));
  ASSERT_TRUE(scalar(c.get(), "ROLLBACK"));
  // Every other read forced to the primary: the client moves between servers.
  std::set<int> ports;
  for (int i = 0; i < 30; ++i) {
    const std::string hint = i % 2 ? "/* shardgate:primary */ " : "";
    EXPECT_EQ(scalar(c.get(), hint + "SELECT current_setting('application_name')"),
              "committed_name");
    EXPECT_NE(scalar(c.get(), hint + "SELECT current_setting('statement_timeout')"), "12345ms");
    ports.insert(server_port(c.get(), hint));
  }
  EXPECT_GE(ports.size(), 2u) << "the client never changed server";
}

TEST(PgProxy, TooManyClientsGets53300) {
  const std::string cfg =
      write_config_variant("limited",
                           "s/^listeners:/limits:\\n  max_client_connections: 2\\nlisteners:/; "
                           "s/port: 21532/port: 21534/; s/port: 21533/port: 21535/");
  const pid_t pid = start_proxy(cfg, 21534);
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(wait_for_no_clients(21535));
  const std::string ci = "host=127.0.0.1 port=21534 user=app password=app dbname=app";
  auto a = connect(ci);
  auto b = connect(ci);
  Conn c(PQconnectdb(ci.c_str()));
  EXPECT_EQ(PQstatus(c.get()), CONNECTION_BAD);
  EXPECT_NE(std::string(PQerrorMessage(c.get())).find("too many clients"), std::string::npos)
      << PQerrorMessage(c.get());
  EXPECT_EQ(scalar(a.get(), "SELECT 1"), "1");
  stop_proxy(pid);
}

TEST(PgProxy, SilentClientIsDroppedAfterLoginTimeout) {
  const std::string cfg =
      write_config_variant("login",
                           "s/^listeners:/limits:\\n  client_login_timeout_ms: 500\\nlisteners:/; "
                           "s/port: 21532/port: 21536/; s/port: 21533/port: 21537/");
  const pid_t pid = start_proxy(cfg, 21536);
  ASSERT_GT(pid, 0);
  const auto start = std::chrono::steady_clock::now();
  const std::string answer = raw_exchange("", 21536);  // connects, says nothing
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_NE(answer.find("login not completed within 500 ms"), std::string::npos) << answer;
  EXPECT_GE(waited, std::chrono::milliseconds(400));
  EXPECT_LT(waited, std::chrono::seconds(4));
  auto ok = connect("host=127.0.0.1 port=21536 user=app password=app dbname=app");
  EXPECT_EQ(scalar(ok.get(), "SELECT 3"), "3");
  stop_proxy(pid);
}

TEST(PgProxy, BadConfigExitsTwoNamingTheKey) {
  std::string out;
  const std::string cfg = write_config_variant("bad", "s/port: 21433/port: notaport/");
  EXPECT_EQ(run(bin("shardgate") + " --config " + cfg, &out), 2);
  EXPECT_NE(out.find("clusters[0].shards[0].backends[1].port"), std::string::npos) << out;
  const std::string cfg2 = write_config_variant("bad2", "s/role: primary/role: leader/");
  EXPECT_EQ(run(bin("shardgate") + " --config " + cfg2, &out), 2);
  EXPECT_NE(out.find("'leader' is not one of: primary, replica"), std::string::npos) << out;
}

void pgbench(const std::string& args) {
  std::string out;
  const std::string cmd = "pgbench \"" + proxy_conninfo() + "\" " + args;
  const int rc = run(cmd, &out);
  ASSERT_EQ(rc, 0) << cmd << "\n" << out;
  EXPECT_NE(out.find("number of failed transactions: 0"), std::string::npos) << out;
  EXPECT_EQ(out.find("error"), std::string::npos) << out;
}

TEST(PgProxy, PgbenchThroughTheProxy) {
  std::string out;
  ASSERT_EQ(run("pgbench -i -q -s 2 \"" + direct_conninfo(kBasePort, "app", "app") + "\"", &out), 0)
      << out;
  pgbench("-n -S -c 8 -j 2 -T 4");
  pgbench("-n -N -c 8 -j 2 -T 4");
  pgbench("-n -S -M extended -c 8 -j 2 -T 4");
  pgbench("-n -S -M prepared -c 16 -j 2 -T 4");
  pgbench("-n -N -M prepared -c 8 -j 2 -T 4");
}

// --- tests that stop servers: keep them last ---

TEST(PgProxyFaults, ReplicaKilledReadsContinueThenComeBack) {
  auto c = connect(proxy_conninfo());
  // After the pgbench write runs the replicas may lag past max_replica_lag
  // for a moment (reads then go to the primary, as they should): wait.
  ASSERT_TRUE(wait_until([&] { return on_replica(c.get()); }, 20000));
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(on_replica(c.get()));
  kill_member("pg-s0-replica1");
  int errors = 0;
  std::set<int> ports;
  for (int i = 0; i < 200; ++i) {
    std::string err;
    auto p = scalar(c.get(), "SELECT current_setting('port')", &err);
    if (!p)
      ++errors;
    else
      ports.insert(std::stoi(*p));
  }
  EXPECT_EQ(errors, 0);
  EXPECT_EQ(ports.count(kBasePort + 1), 0u) << "reads still went to the killed replica";

  kill_member("pg-s0-replica2");
  errors = 0;
  ports.clear();
  for (int i = 0; i < 100; ++i) {
    auto p = scalar(c.get(), "SELECT current_setting('port')");
    if (!p)
      ++errors;
    else
      ports.insert(std::stoi(*p));
  }
  EXPECT_EQ(errors, 0);
  EXPECT_EQ(ports, std::set<int>{kBasePort}) << "with every replica down, reads go to the primary";

  start_member("pg-s0-replica1");
  start_member("pg-s0-replica2");
  EXPECT_TRUE(wait_until([&] { return server_port(c.get()) == kBasePort + 1; }, 15000))
      << "a replica that came back is used again";
  EXPECT_TRUE(wait_until([&] { return server_port(c.get()) == kBasePort + 2; }, 15000));
}

}  // namespace
}  // namespace shardgate::it
