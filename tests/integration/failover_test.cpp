// Failover drills on real servers, both engines: each suite starts a sandbox
// of its own (a primary and two replicas) with failover enabled and a proxy
// in front, and runs `shardctl drill failover` against it, as an operator
// would. The drill writes unique ids through the proxy, injects the fault,
// and reads the new primary directly; these tests assert on its report.
//
// The tests of a suite run in order on one sandbox: the hung-primary drill
// first (nothing may change), then a crash (the old primary rejoins), then a
// planned switchover, then the proxy's restart (the failed-over topology
// must survive it), then refusals.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <boost/json/src.hpp>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "tests/integration/harness.h"
#include "tests/integration/my_harness.h"

namespace shardgate::it {
namespace {

namespace json = boost::json;

struct DrillSandbox {
  const char* engine;
  int base_port, proxy_port, admin_port;
  std::string dir;
  pid_t proxy = -1;

  std::string sandbox() const { return dir + "/sbx"; }
  std::string config() const { return sandbox() + "/shardgate.yaml"; }
  // A sandbox directory whose only file is the config with Unix sockets.
  std::string unix_socket_dir() const { return dir + "/unix-sockets"; }
  std::string admin() const { return "127.0.0.1:" + std::to_string(admin_port); }
  std::string member(const std::string& role) const {
    return std::string(std::string(engine) == "mysql" ? "my" : "pg") + "-s0-" + role;
  }

  void up() {
    char tmpl[] = "/tmp/shardgate-failover-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir = tmpl;
    ::chmod(dir.c_str(), 0755);  // the servers run as the sandbox's own OS user
    std::string out;
    const int rc = run(bin("shardctl") + " sandbox up --engine " + engine +
                           " --shards 1 --replicas 2 --base-port " + std::to_string(base_port) +
                           " --proxy-port " + std::to_string(proxy_port) + " --admin-port " +
                           std::to_string(admin_port) + " --dir " + sandbox(),
                       &out);
    ASSERT_EQ(rc, 0) << "sandbox up failed:\n" << out;
    // The proxy reaches the servers over TCP, as across machines: a network
    // partition (nftables) cuts TCP, not Unix sockets. The config as written
    // is kept for the test of the drill's refusal.
    std::ifstream in(config());
    const std::string written((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
    ::mkdir(unix_socket_dir().c_str(), 0755);
    std::ofstream(unix_socket_dir() + "/shardgate.yaml") << written;
    std::ofstream tcp(config(), std::ios::trunc);
    for (std::size_t at = 0; at < written.size();) {
      const std::size_t end = std::min(written.find('\n', at), written.size());
      const std::string line = written.substr(at, end - at);
      if (line.find("unix_socket") == std::string::npos) tcp << line << "\n";
      at = end + 1;
    }
    tcp.close();
    proxy = start_proxy(config(), proxy_port);
    ASSERT_GT(proxy, 0);
  }
  void down() {
    if (dir.empty()) return;
    if (proxy > 0) stop_proxy(proxy);
    run(bin("shardctl") + " sandbox down --destroy --dir " + sandbox());
    run("rm -rf " + dir);
  }

  // Runs the drill with `args`; its JSON report (the test fails on no report).
  json::object drill(const std::string& args) {
    std::string out;
    const int rc = run(
        bin("shardctl") + " drill failover --json --dir " + sandbox() + " " + args + " 2>&1", &out);
    std::cout << "[ drill    ] " << engine << " " << args << " (exit " << rc << ")\n" << out;
    const auto start = out.rfind("\n{");
    const std::string text = start == std::string::npos ? out : out.substr(start + 1);
    boost::system::error_code ec;
    json::value doc = json::parse(text, ec);
    if (ec || !doc.is_object()) {
      ADD_FAILURE() << "the drill printed no JSON report:\n" << out;
      return {};
    }
    EXPECT_EQ(rc == 0, doc.as_object().at("passed").as_bool()) << "exit status and report disagree";
    return doc.as_object();
  }

  json::object topology() {
    std::string out;
    EXPECT_EQ(run(bin("shardctl") + " topology --json --admin " + admin(), &out), 0) << out;
    boost::system::error_code ec;
    json::value doc = json::parse(out, ec);
    return ec ? json::object() : doc.as_object();
  }
};

std::int64_t number(const json::object& o, const char* key) {
  return o.contains(key) ? o.at(key).to_number<std::int64_t>() : -1;
}
std::string text(const json::object& o, const char* key) {
  return o.contains(key) && o.at(key).is_string() ? std::string(o.at(key).as_string()) : "";
}
bool flag(const json::object& o, const char* key) {
  return o.contains(key) && o.at(key).is_bool() && o.at(key).as_bool();
}

// The shard's primary and epoch in a topology document.
std::pair<std::string, std::int64_t> primary_of(const json::object& topology) {
  if (!topology.contains("shards")) return {"", -1};
  const auto& shard = topology.at("shards").as_array().at(0).as_object();
  for (const auto& m : shard.at("members").as_array())
    if (m.as_object().at("role").as_string() == "primary")
      return {std::string(m.as_object().at("name").as_string()), number(shard, "epoch")};
  return {"", number(shard, "epoch")};
}

// A member's port and whether it is fenced, from a topology document.
struct MemberView {
  std::string name;
  int port = 0;
  bool primary = false;
  bool fenced = false;
};
std::vector<MemberView> members_of(const json::object& topology) {
  std::vector<MemberView> out;
  if (!topology.contains("shards")) return out;
  const auto& shard = topology.at("shards").as_array().at(0).as_object();
  for (const auto& mv : shard.at("members").as_array()) {
    const auto& m = mv.as_object();
    const std::string address(m.at("address").as_string());
    out.push_back({std::string(m.at("name").as_string()),
                   std::atoi(address.c_str() + address.rfind(':') + 1),
                   m.at("role").as_string() == "primary", flag(m, "fenced")});
  }
  return out;
}

void expect_nothing_lost(const json::object& r) {
  EXPECT_TRUE(flag(r, "passed"));
  EXPECT_EQ(number(r, "acknowledged_missing"), 0) << "acknowledged writes lost";
  EXPECT_EQ(number(r, "statements_to_fenced_primary"), 0) << "a statement reached a fenced primary";
  EXPECT_GT(number(r, "writes_acknowledged"), 0);
  EXPECT_FALSE(r.contains("verify_error")) << text(r, "verify_error");
  EXPECT_FALSE(r.contains("fault_error")) << text(r, "fault_error");
}

// The drills of one engine, in order on one sandbox.
void hung_primary_is_not_failed_over(DrillSandbox& s) {
  const auto before = primary_of(s.topology());
  // Frozen for 1.2 s: the proxy's probes fail past failures_before_down, but
  // the replicas still hold their replication connections (the sandbox's
  // replicas give up on a primary silent for 2 s), so it must wait.
  auto r = s.drill("--pause primary --pause-ms 1200 --duration 6 --load 100");
  expect_nothing_lost(r);
  EXPECT_FALSE(flag(r, "failed_over")) << "a hung primary its replicas still held was replaced";
  EXPECT_EQ(primary_of(s.topology()), before);
}

// A primary whose probes flap: frozen for 1.1 s four times, 0.55 s apart.
// Each freeze fails enough probes to count it down, and each time its
// replicas still hold their stream: it is never failed over, nothing is lost.
void flapping_primary_is_not_failed_over(DrillSandbox& s) {
  const auto before = primary_of(s.topology());
  auto unconfirmed_downs = [&] {
    std::ifstream log(s.config() + "." + std::to_string(s.proxy_port) + ".log");
    const std::string text((std::istreambuf_iterator<char>(log)), {});
    int n = 0;
    for (auto at = text.find("does not answer the proxy, but replica"); at != std::string::npos;
         at = text.find("does not answer the proxy, but replica", at + 1))
      ++n;
    return n;
  };
  const int before_drill = unconfirmed_downs();
  auto r = s.drill("--pause primary --pause-ms 1100 --pauses 4 --duration 10 --load 100");
  expect_nothing_lost(r);
  EXPECT_FALSE(flag(r, "failed_over")) << "a primary whose probes flapped was replaced";
  EXPECT_EQ(primary_of(s.topology()), before);
  EXPECT_GE(unconfirmed_downs() - before_drill, 2)
      << "the primary was not seen down and back repeatedly: the drill proved nothing";
}

// A crash with asynchronous replication: nothing acknowledged is lost. A
// write the dead primary acknowledged in its last moments but had not sent
// to any replica is replayed from the proxy's write journal.
void crash_loses_nothing(DrillSandbox& s) {
  const auto before = primary_of(s.topology());
  auto r = s.drill("--kill primary --rejoin --duration 8 --load 200");
  expect_nothing_lost(r);
  EXPECT_EQ(number(r, "journal_replay_failed"), 0);
  EXPECT_TRUE(flag(r, "failed_over"));
  EXPECT_EQ(text(r, "old_primary"), before.first);
  EXPECT_NE(text(r, "new_primary"), before.first);
  EXPECT_EQ(text(r, "old_primary_rejoined"), "yes");
  const auto after = primary_of(s.topology());
  EXPECT_EQ(after.first, text(r, "new_primary"));
  EXPECT_EQ(after.second, before.second + 1) << "the shard's epoch grows with each failover";
}

void switchover_loses_nothing(DrillSandbox& s) {
  const auto before = primary_of(s.topology());
  auto r = s.drill("--switchover --rejoin --duration 6 --load 200");
  expect_nothing_lost(r);
  EXPECT_TRUE(flag(r, "failed_over"));
  EXPECT_EQ(number(r, "writes_failed"), 0) << "a planned switchover made writes fail";
  EXPECT_NE(primary_of(s.topology()).first, before.first);
}

void failed_over_topology_survives_a_restart(DrillSandbox& s) {
  const auto before = primary_of(s.topology());
  stop_proxy(s.proxy);
  s.proxy = start_proxy(s.config(), s.proxy_port);
  ASSERT_GT(s.proxy, 0);
  EXPECT_EQ(primary_of(s.topology()), before)
      << "a restart with the unchanged config went back to the configured primary";
}

// The primary keeps running but nothing reaches it over the network: its
// connections hang rather than break. The replicas notice their silent
// stream within 2 s and confirm; the proxy cuts its own connections there
// (statements in flight get an error, not a wait of minutes) and promotes.
// When the partition heals, the old primary is still writable as far as it
// knows: the proxy must fence it before anything reaches it.
void partition_fails_over_and_fences_the_old_primary(DrillSandbox& s) {
  std::string out;
  EXPECT_NE(run(bin("shardctl") + " drill failover --dir " + s.unix_socket_dir() +
                    " --partition primary 2>&1",
                &out),
            0);
  EXPECT_NE(out.find("which a network partition does not cut"), std::string::npos) << out;

  auto r = s.drill("--partition primary --rejoin --duration 8 --load 200");
  expect_nothing_lost(r);
  EXPECT_TRUE(flag(r, "failed_over"));
  EXPECT_EQ(text(r, "old_primary_read_only_after_heal"), "yes");
  EXPECT_EQ(text(r, "old_primary_rejoined"), "yes");
  ASSERT_TRUE(r.contains("write_unavailable_ms"));
  EXPECT_LT(r.at("write_unavailable_ms").to_number<double>(), 6000)
      << "statements in flight on the cut-off primary waited instead of failing";
}

void bad_switchovers_are_refused(DrillSandbox& s) {
  std::string out;
  EXPECT_NE(run(bin("shardctl") + " failover --shard nope --admin " + s.admin() + " 2>&1", &out),
            0);
  EXPECT_NE(out.find("no shard named 'nope'"), std::string::npos) << out;
  EXPECT_NE(run(bin("shardctl") + " failover --shard s0 --to " + s.member("primary") +
                    "-nope --admin " + s.admin() + " 2>&1",
                &out),
            0);
  EXPECT_NE(out.find("is not a replica of shard s0"), std::string::npos) << out;
}

// Every replica down, then the primary: nothing can be promoted. A write
// waits the bounded write_wait_ms (5 s) and gets an error that says why;
// once the servers are back the same proxy writes again. The primary is
// first switched to a member the sandbox made a replica: a MariaDB one's
// option file says read_only=ON, so it restarts read-only, and the proxy
// must make it writable again.
void no_candidate_gives_a_clear_error(DrillSandbox& s) {
  std::string target;
  for (const auto& m : members_of(s.topology()))
    if (!m.primary && !m.fenced && m.name.find("replica") != std::string::npos) target = m.name;
  ASSERT_FALSE(target.empty()) << "no replica to switch over to";
  std::string out;
  ASSERT_EQ(run(bin("shardctl") + " failover --shard s0 --to " + target + " --admin " + s.admin() +
                    " 2>&1",
                &out),
            0)
      << out;
  const std::string primary = primary_of(s.topology()).first;
  ASSERT_EQ(primary, target);
  std::vector<std::string> members;
  for (const char* role : {"primary", "replica1", "replica2"}) members.push_back(s.member(role));
  auto sandbox_cmd = [&](const char* action, const std::string& member) {
    std::string out;
    EXPECT_EQ(run(bin("shardctl") + " sandbox " + action + " --dir " + s.sandbox() + " --member " +
                      member + " 2>&1",
                  &out),
              0)
        << out;
  };

  const bool mysql = std::string(s.engine) == "mysql";
  const std::string port = std::to_string(s.proxy_port);
  const std::string write =
      mysql ? "mariadb -h 127.0.0.1 -P " + port + " -u app -papp app -e "
            : "PGPASSWORD=app psql -X -v ON_ERROR_STOP=1 \"host=127.0.0.1 port=" + port +
                  " user=app dbname=app\" -c ";
  const std::string insert = "'INSERT INTO shardgate_drill (id, run) VALUES (7, 7)'";
  ASSERT_EQ(run(write + "'CREATE TABLE IF NOT EXISTS shardgate_drill (id BIGINT PRIMARY KEY, run "
                        "BIGINT)' 2>&1",
                &out),
            0)
      << out;
  run(write + "'DELETE FROM shardgate_drill WHERE id = 7' 2>&1", &out);
  for (const auto& m : members)
    if (m != primary) sandbox_cmd("stop", m);
  sandbox_cmd("stop", primary);

  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_NE(run(write + insert + " 2>&1", &out), 0) << "a write succeeded with every server down";
  const auto waited = std::chrono::steady_clock::now() - t0;
  std::cout << "[ error    ] " << out;
  EXPECT_NE(out.find("no failover replaced it within 5000 ms"), std::string::npos) << out;
  EXPECT_LT(waited, std::chrono::seconds(15)) << "the write was not bounded by write_wait_ms";

  // The primary first: replicas that answered while it was still down would
  // rightly have one of them promoted.
  sandbox_cmd("start", primary);
  for (const auto& m : members)
    if (m != primary) sandbox_cmd("start", m);
  EXPECT_TRUE(wait_until([&] { return run(write + insert + " 2>&1", &out) == 0; }, 30000))
      << "writes did not come back with the servers: " << out;
  EXPECT_EQ(primary_of(s.topology()).first, primary) << "nothing could have been promoted";
  if (mysql) {
    std::ifstream log(s.config() + "." + std::to_string(s.proxy_port) + ".log");
    const std::string text((std::istreambuf_iterator<char>(log)), {});
    EXPECT_NE(text.find("primary " + primary + " came back read-only; made it writable again"),
              std::string::npos)
        << "the write succeeded, but not because the proxy restored the restarted primary";
  }
}

// Stops `primary` cleanly and waits for the proxy to fail the shard over;
// the new primary's name, empty (and the test failed) when none came.
std::string stop_and_wait_for_failover(DrillSandbox& s, const std::string& primary) {
  std::string out;
  if (run(bin("shardctl") + " sandbox stop --dir " + s.sandbox() + " --member " + primary + " 2>&1",
          &out) != 0) {
    ADD_FAILURE() << "stopping " << primary << ": " << out;
    return {};
  }
  std::string now;
  if (!wait_until(
          [&] {
            now = primary_of(s.topology()).first;
            return !now.empty() && now != primary;
          },
          15000)) {
    ADD_FAILURE() << "no failover after " << primary << " stopped";
    return {};
  }
  return now;
}

// `shardctl sandbox rejoin` of an old primary; its output.
std::string rejoin(DrillSandbox& s, const std::string& member, int primary_port) {
  std::string out;
  EXPECT_EQ(run(bin("shardctl") + " sandbox rejoin --dir " + s.sandbox() + " --member " + member +
                    " --primary-port " + std::to_string(primary_port) + " 2>&1",
                &out),
            0)
      << out;
  return out;
}

// The proxy's last failover report.
json::object last_failover(DrillSandbox& s) {
  std::string out;
  run("curl -s http://" + s.admin() + "/api/v1/failovers", &out);
  boost::system::error_code ec;
  json::value doc = json::parse(out, ec);
  if (ec || !doc.is_object() || doc.at("reports").as_array().empty()) return {};
  return doc.at("reports").as_array().back().as_object();
}

// A primary commits writes no replica receives (their replication is
// stopped), then stops: the replica that takes over never had them.
//  - id 5 went through the proxy: the write journal replays it at failover.
//  - id 2 was written to the primary directly, so the journal never saw it.
//    When the old primary answers again, the proxy applies it on the new
//    primary from the old one's log (MariaDB: its binlog; PostgreSQL: its
//    logical catch-up slot).
//  - id 4 too, but the new primary has an id 4 of its own by then: that one
//    conflicts, is reported, and the rest still goes.
// The old primary is then rebuilt or rewound and serves reads again, with
// what the new primary has.
void writes_only_the_old_primary_had(DrillSandbox& s) {
  const bool mysql = std::string(s.engine) == "mysql";
  const auto before = primary_of(s.topology());
  std::map<std::string, int> port;
  for (const auto& m : members_of(s.topology())) port[m.name] = m.port;
  auto direct = [&](const std::string& member, const std::string& user, const std::string& db,
                    const std::string& sql) {
    const std::string p = std::to_string(port[member]);
    return mysql ? "mariadb -h 127.0.0.1 -P " + p + " -u " + user + " -p" + user + " " + db +
                       " -N -e \"" + sql + "\" 2>&1"
                 : "PGPASSWORD=" + user +
                       " psql -X -A -t -v ON_ERROR_STOP=1 \"host=127.0.0.1 port=" + p +
                       " user=" + user + " dbname=" + db + "\" -c \"" + sql + "\" 2>&1";
  };
  const std::string proxy_port = std::to_string(s.proxy_port);
  auto through_proxy = [&](const std::string& sql) {
    return mysql ? "mariadb -h 127.0.0.1 -P " + proxy_port + " -u app -papp app -e \"" + sql +
                       "\" 2>&1"
                 : "PGPASSWORD=app psql -X -v ON_ERROR_STOP=1 \"host=127.0.0.1 port=" + proxy_port +
                       " user=app dbname=app\" -c \"" + sql + "\" 2>&1";
  };
  const std::string admin_user = mysql ? "monitor" : "postgres";
  const std::string admin_db = mysql ? "app" : "postgres";
  std::string out;
  ASSERT_EQ(run(through_proxy("CREATE TABLE IF NOT EXISTS shardgate_errant (id BIGINT PRIMARY KEY, "
                              "origin VARCHAR(20))"),
                &out),
            0)
      << out;
  ASSERT_EQ(run(through_proxy("INSERT INTO shardgate_errant VALUES (1, 'proxy')"), &out), 0) << out;
  std::vector<std::string> replicas;
  for (const auto& [name, p] : port)
    if (name != before.first) replicas.push_back(name);
  const std::string count = "SELECT count(*) FROM shardgate_errant WHERE id = ";
  for (const auto& r : replicas) {
    EXPECT_TRUE(wait_until(
        [&] {
          return run(direct(r, "app", "app", count + "1"), &out) == 0 &&
                 out.find('1') != std::string::npos;
        },
        10000))
        << r << " did not receive the replicated row: " << out;
    const std::string stop = mysql ? "STOP SLAVE" : "ALTER SYSTEM SET primary_conninfo = ''";
    ASSERT_EQ(run(direct(r, admin_user, admin_db, stop), &out), 0) << out;
    if (!mysql) {
      ASSERT_EQ(run(direct(r, admin_user, admin_db, "SELECT pg_reload_conf()"), &out), 0) << out;
    }
  }
  // Acknowledged by the primary alone, never replicated.
  for (const char* id : {"2", "4"}) {
    ASSERT_EQ(run(direct(before.first, "app", "app",
                         std::string("INSERT INTO shardgate_errant VALUES (") + id + ", 'direct')"),
                  &out),
              0)
        << out;
  }
  ASSERT_EQ(run(through_proxy("INSERT INTO shardgate_errant VALUES (5, 'proxy')"), &out), 0) << out;
  const std::string now_primary = stop_and_wait_for_failover(s, before.first);
  ASSERT_FALSE(now_primary.empty());
  ASSERT_EQ(run(through_proxy("INSERT INTO shardgate_errant VALUES (4, 'new primary')"), &out), 0)
      << out;
  std::cout << "[ rejoin   ] " << rejoin(s, before.first, port[now_primary]);
  EXPECT_TRUE(wait_until(
      [&] {
        for (const auto& m : members_of(s.topology()))
          if (m.name == before.first) return !m.fenced;
        return false;
      },
      30000))
      << before.first << " was not let back in";
  const json::object report = last_failover(s);
  EXPECT_GE(number(report, "journal_replayed"), 1) << json::serialize(report);
  auto rows_on = [&](const std::string& member) {
    EXPECT_EQ(
        run(direct(member, "app", "app", "SELECT id, origin FROM shardgate_errant ORDER BY id"),
            &out),
        0)
        << out;
    return out;
  };
  // id 5 came from the journal, so the old primary's copy was left out:
  // only id 4 fails.
  EXPECT_EQ(number(report, "old_primary_applied"), 1) << json::serialize(report);
  EXPECT_EQ(number(report, "old_primary_apply_failed"), 1) << json::serialize(report);
  const std::string conflict = mysql ? "Duplicate entry" : "duplicate key value";
  EXPECT_NE(json::serialize(report).find(conflict), std::string::npos)
      << "the conflict is not reported: " << json::serialize(report);
  const std::string on_new = rows_on(now_primary);
  EXPECT_EQ(on_new, mysql ? "1\tproxy\n2\tdirect\n4\tnew primary\n5\tproxy\n"
                          : "1|proxy\n2|direct\n4|new primary\n5|proxy\n");
  EXPECT_EQ(rows_on(before.first), on_new) << "the rejoined old primary differs from the new one";
  EXPECT_EQ(run(through_proxy("INSERT INTO shardgate_errant VALUES (3, 'proxy')"), &out), 0) << out;
}

// One suite per engine: its own sandbox, the same drills in the same order.
#define FAILOVER_SUITE(Suite, engine, base_port, proxy_port, admin_port)           \
  class Suite : public ::testing::Test {                                           \
   protected:                                                                      \
    static void SetUpTestSuite() { sandbox_.up(); }                                \
    static void TearDownTestSuite() { sandbox_.down(); }                           \
    void SetUp() override {                                                        \
      if (sandbox_.proxy <= 0) GTEST_FAIL() << "the sandbox did not start";        \
    }                                                                              \
    static DrillSandbox sandbox_;                                                  \
  };                                                                               \
  DrillSandbox Suite::sandbox_{engine, base_port, proxy_port, admin_port, "", -1}; \
  TEST_F(Suite, HungPrimaryHeldByItsReplicasIsNotFailedOver) {                     \
    hung_primary_is_not_failed_over(sandbox_);                                     \
  }                                                                                \
  TEST_F(Suite, PrimaryWhoseProbesFlapIsNotFailedOver) {                           \
    flapping_primary_is_not_failed_over(sandbox_);                                 \
  }                                                                                \
  TEST_F(Suite, CrashUnderLoadFailsOverAndTheOldPrimaryRejoins) {                  \
    crash_loses_nothing(sandbox_);                                                 \
  }                                                                                \
  TEST_F(Suite, PartitionedPrimaryIsFailedOverAndFencedWhenItComesBack) {          \
    partition_fails_over_and_fences_the_old_primary(sandbox_);                     \
  }                                                                                \
  TEST_F(Suite, PlannedSwitchoverLosesNothing) {                                   \
    switchover_loses_nothing(sandbox_);                                            \
  }                                                                                \
  TEST_F(Suite, FailedOverTopologySurvivesAProxyRestart) {                         \
    failed_over_topology_survives_a_restart(sandbox_);                             \
  }                                                                                \
  TEST_F(Suite, BadSwitchoversAreRefused) {                                        \
    bad_switchovers_are_refused(sandbox_);                                         \
  }                                                                                \
  TEST_F(Suite, WritesOnlyTheOldPrimaryHadAreAppliedOnTheNewOneWhenItComesBack) {  \
    writes_only_the_old_primary_had(sandbox_);                                     \
  }                                                                                \
  TEST_F(Suite, NoReplicaToPromoteGivesWritesAClearErrorAfterTheWait) {            \
    no_candidate_gives_a_clear_error(sandbox_);                                    \
  }

FAILOVER_SUITE(FailoverPg, "postgres", 26432, 26532, 26533)
FAILOVER_SUITE(FailoverMy, "mysql", 27306, 27336, 27337)

// Replication made to lag on purpose (the replicas receive nothing for the
// last 600 ms before the kill), then the primary's data directory is
// deleted: the writes it alone acknowledged exist only in the proxy's write
// journal, which replays them on the promoted replica before writes resume.
TEST_F(FailoverMy, MachineLossWithLaggingReplicasLosesNoAcknowledgedWrite) {
  auto r =
      sandbox_.drill("--kill primary --lag-ms 600 --lose-data --rejoin --duration 8 --load 200");
  expect_nothing_lost(r);
  EXPECT_TRUE(flag(r, "failed_over"));
  EXPECT_TRUE(flag(r, "old_primary_data_lost"));
  EXPECT_GT(number(r, "journal_replayed"), 0)
      << "the promoted replica lacked nothing: the drill proved nothing";
  EXPECT_EQ(number(r, "journal_replay_failed"), 0);
  EXPECT_EQ(text(r, "old_primary_rejoined"), "yes");
}

// The same with server-side prepared statements (COM_STMT_EXECUTE), as Go's
// and Java's drivers send parameterized writes: replayed as prepared
// statements with the parameters the clients bound.
TEST_F(FailoverMy, MachineLossLosesNoPreparedStatementWrite) {
  auto r = sandbox_.drill(
      "--kill primary --lag-ms 600 --lose-data --prepared --rejoin --duration 8 --load 200");
  expect_nothing_lost(r);
  EXPECT_TRUE(flag(r, "prepared_statements"));
  EXPECT_GT(number(r, "journal_replayed"), 0)
      << "the promoted replica lacked nothing: the drill proved nothing";
  EXPECT_EQ(number(r, "journal_replay_failed"), 0);
}

// Every kind of parameter the journal decodes (BIGINT, unsigned, DOUBLE,
// UTF-8 VARCHAR, NULL, DATETIME(6), a negative TIME, a BLOB sent as long
// data) and a text transaction over two statements, all acknowledged while
// the replicas receive nothing: the promoted replica ends up with exactly
// the rows the old primary had.
TEST_F(FailoverMy, JournalReplaysEveryParameterKindExactly) {
  const auto before = primary_of(sandbox_.topology());
  std::map<std::string, int> port;
  for (const auto& m : members_of(sandbox_.topology())) port[m.name] = m.port;
  MyError e;
  MyConn c = my_try_connect(sandbox_.proxy_port, "app", "app", "app", &e);
  ASSERT_NE(c, nullptr) << e.message;
  ASSERT_TRUE(my_rows(c.get(),
                      "CREATE TABLE IF NOT EXISTS journal_kinds (id INT PRIMARY KEY, big BIGINT, "
                      "u BIGINT UNSIGNED, d DOUBLE, s VARCHAR(64), n INT NULL, t DATETIME(6), "
                      "tm TIME(6), b MEDIUMBLOB) CHARACTER SET utf8mb4"));
  ASSERT_TRUE(my_rows(c.get(), "DELETE FROM journal_kinds"));
  for (const auto& [name, p] : port) {
    if (name == before.first) continue;
    MyConn r = my_try_connect(p, "app", "app", "app", &e);
    ASSERT_NE(r, nullptr) << e.message;
    EXPECT_TRUE(wait_until(
        [&] {
          auto n = my_rows(r.get(), "SELECT COUNT(*) FROM journal_kinds");
          return n && *n == std::vector<std::string>{"0"};
        },
        10000))
        << name << " did not replicate the table";
    MyConn admin = my_try_connect(p, "monitor", "monitor", "", &e);
    ASSERT_NE(admin, nullptr) << e.message;
    ASSERT_TRUE(my_rows(admin.get(), "STOP SLAVE IO_THREAD", &e)) << e.message;
  }

  MYSQL_STMT* ins = mysql_stmt_init(c.get());
  const std::string sql = "INSERT INTO journal_kinds VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
  ASSERT_EQ(mysql_stmt_prepare(ins, sql.data(), sql.size()), 0) << mysql_stmt_error(ins);
  for (int id = 1; id <= 2; ++id) {
    int key = id;
    long long big = id == 1 ? -9007199254740993LL : 9223372036854775807LL;
    unsigned long long u = id == 1 ? 18446744073709551615ULL : 0;
    double d = id == 1 ? 6.02214076e23 : -1.5e-300;
    std::string s = id == 1 ? "h\xc3\xa9llo w\xc3\xb6rld" : "";
    unsigned long s_len = s.size();
    int n = 7;
    my_bool n_null = id == 2;
    MYSQL_TIME t{}, tm{};
    t.year = 2024, t.month = 2, t.day = 29, t.hour = 13, t.minute = 45, t.second = 56;
    t.second_part = 123456;
    t.time_type = MYSQL_TIMESTAMP_DATETIME;
    tm.hour = 838, tm.minute = 59, tm.second = 58, tm.second_part = 5, tm.neg = id == 1;
    tm.time_type = MYSQL_TIMESTAMP_TIME;
    MYSQL_BIND b[9];
    std::memset(b, 0, sizeof b);
    b[0].buffer_type = MYSQL_TYPE_LONG;
    b[0].buffer = &key;
    b[1].buffer_type = MYSQL_TYPE_LONGLONG;
    b[1].buffer = &big;
    b[2].buffer_type = MYSQL_TYPE_LONGLONG;
    b[2].buffer = &u;
    b[2].is_unsigned = true;
    b[3].buffer_type = MYSQL_TYPE_DOUBLE;
    b[3].buffer = &d;
    b[4].buffer_type = MYSQL_TYPE_STRING;
    b[4].buffer = s.data();
    b[4].buffer_length = s_len;
    b[4].length = &s_len;
    b[5].buffer_type = MYSQL_TYPE_LONG;
    b[5].buffer = &n;
    b[5].is_null = &n_null;
    b[6].buffer_type = MYSQL_TYPE_DATETIME;
    b[6].buffer = &t;
    b[7].buffer_type = MYSQL_TYPE_TIME;
    b[7].buffer = &tm;
    b[8].buffer_type = MYSQL_TYPE_BLOB;  // sent as long data, in two pieces
    ASSERT_EQ(mysql_stmt_bind_param(ins, b), 0) << mysql_stmt_error(ins);
    const std::string blob = std::string("\0\x01\xff", 3) + std::string(70000, 'b');
    ASSERT_EQ(mysql_stmt_send_long_data(ins, 8, blob.data(), 40000), 0) << mysql_stmt_error(ins);
    ASSERT_EQ(mysql_stmt_send_long_data(ins, 8, blob.data() + 40000, blob.size() - 40000), 0);
    ASSERT_EQ(mysql_stmt_execute(ins), 0) << mysql_stmt_error(ins);
  }
  mysql_stmt_close(ins);
  for (const char* stmt :
       {"START TRANSACTION", "INSERT INTO journal_kinds (id, s) VALUES (10, 'x')",
        "UPDATE journal_kinds SET big = big + 1 WHERE id = 1", "COMMIT"})
    ASSERT_TRUE(my_rows(c.get(), stmt, &e)) << stmt << ": " << e.message;

  const std::string read =
      "SELECT id, big, u, d, s, n, t, tm, LENGTH(b), MD5(b) FROM journal_kinds ORDER BY id";
  MyConn old = my_try_connect(port[before.first], "app", "app", "app", &e);
  ASSERT_NE(old, nullptr) << e.message;
  const auto expected = my_rows(old.get(), read);
  ASSERT_TRUE(expected);
  ASSERT_EQ(expected->size(), 3u);
  old.reset();

  const std::string now_primary = stop_and_wait_for_failover(sandbox_, before.first);
  ASSERT_FALSE(now_primary.empty());
  MyConn fresh = my_try_connect(port[now_primary], "app", "app", "app", &e);
  ASSERT_NE(fresh, nullptr) << e.message;
  EXPECT_EQ(my_rows(fresh.get(), read), expected) << "the replayed rows differ";
  rejoin(sandbox_, before.first, port[now_primary]);
}

// Replication made to lag on purpose, then kill -9 of the primary and its
// data directory deleted (a lost machine): what it acknowledged in the last
// 600 ms exists only in the proxy's write journal, which replays it on the
// promoted replica (asked for each transaction id) before writes resume.
// The old primary is cloned afresh from the new one and serves again.
TEST_F(FailoverPg, MachineLossWithLaggingReplicasLosesNoAcknowledgedWrite) {
  auto r =
      sandbox_.drill("--kill primary --lag-ms 600 --lose-data --rejoin --duration 8 --load 200");
  expect_nothing_lost(r);
  EXPECT_TRUE(flag(r, "failed_over"));
  EXPECT_TRUE(flag(r, "old_primary_data_lost"));
  EXPECT_GT(number(r, "journal_replayed"), 0)
      << "the promoted replica lacked nothing: the drill proved nothing";
  EXPECT_EQ(number(r, "journal_replay_failed"), 0);
  EXPECT_EQ(text(r, "old_primary_rejoined"), "yes");
}

// The same with every write sent as PQexecParams sends it (Parse, Bind,
// Execute, Sync): each batch's journal SELECT goes before its Sync.
TEST_F(FailoverPg, CrashWithLaggingReplicasLosesNoParameterizedWrite) {
  auto r =
      sandbox_.drill("--kill primary --lag-ms 600 --prepared --rejoin --duration 8 --load 200");
  expect_nothing_lost(r);
  EXPECT_TRUE(flag(r, "prepared_statements"));
  EXPECT_GT(number(r, "journal_replayed"), 0)
      << "the promoted replica lacked nothing: the drill proved nothing";
  EXPECT_EQ(number(r, "journal_replay_failed"), 0);
}

// Rows as text, one line each, or the error.
std::string pg_table(PGconn* c, const std::string& sql) {
  PGresult* r = PQexec(c, sql.c_str());
  std::string out;
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    out = std::string("error: ") + PQresultErrorMessage(r);
  } else {
    for (int i = 0; i < PQntuples(r); ++i) {
      for (int j = 0; j < PQnfields(r); ++j)
        out += (j ? "|" : "") + std::string(PQgetisnull(r, i, j) ? "NULL" : PQgetvalue(r, i, j));
      out += "\n";
    }
  }
  PQclear(r);
  return out;
}

// Autocommit writes and transactions acknowledged while no replica
// receives anything: the promoted replica ends up with exactly the rows the
// old primary had. A transaction rolled back, a statement that failed and a
// transaction that failed leave nothing to replay; a session setting
// (TimeZone) applies to the replay as it did to the write.
TEST_F(FailoverPg, JournalReplaysStatementsAndTransactionsExactly) {
  const auto before = primary_of(sandbox_.topology());
  std::map<std::string, int> port;
  for (const auto& m : members_of(sandbox_.topology())) port[m.name] = m.port;
  Conn c = connect("host=127.0.0.1 port=" + std::to_string(sandbox_.proxy_port) +
                   " user=app password=app dbname=app");
  auto ok = [&](const std::string& sql) {
    PGresult* r = PQexec(c.get(), sql.c_str());
    const auto st = PQresultStatus(r);
    std::string error = PQresultErrorMessage(r);
    PQclear(r);
    EXPECT_TRUE(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) << sql << ": " << error;
  };
  auto fails = [&](const std::string& sql) {
    PGresult* r = PQexec(c.get(), sql.c_str());
    EXPECT_EQ(PQresultStatus(r), PGRES_FATAL_ERROR) << sql;
    PQclear(r);
  };
  ok("DROP TABLE IF EXISTS journal_pg");
  ok("CREATE TABLE journal_pg (id int PRIMARY KEY, big bigint, d double precision, s text, "
     "n int, t timestamptz, b bytea)");
  for (const auto& m : members_of(sandbox_.topology())) {
    // A fenced member (an old primary earlier drills left out) streams
    // nothing and is never promoted.
    if (m.primary || m.fenced) continue;
    const std::string& name = m.name;
    Conn r = connect(direct_conninfo(m.port));
    EXPECT_TRUE(wait_until(
        [&] { return scalar(r.get(), "SELECT to_regclass('journal_pg') IS NOT NULL") == "t"; },
        10000))
        << name << " did not replicate the table";
    ASSERT_EQ(scalar(r.get(), "SELECT count(*) FROM pg_stat_wal_receiver"), "1");
    for (const char* sql : {"ALTER SYSTEM SET primary_conninfo = ''", "SELECT pg_reload_conf()"})
      PQclear(PQexec(r.get(), sql));
    EXPECT_TRUE(wait_until(
        [&] { return scalar(r.get(), "SELECT count(*) FROM pg_stat_wal_receiver") == "0"; }, 5000))
        << name << " still receives";
  }

  ok("INSERT INTO journal_pg VALUES (1, -9007199254740993, 6.02214076e23, 'h\xc3\xa9llo "
     "w\xc3\xb6rld', NULL, '2024-02-29 13:45:56.123456+00', '\\x00ff'::bytea)");
  ok("SET TimeZone = 'Asia/Kolkata'");
  ok("INSERT INTO journal_pg (id, t) VALUES (2, '2024-02-29 13:45:56') -- local time");
  ok("BEGIN");
  ok("SET LOCAL TimeZone = 'America/New_York'");
  ok("INSERT INTO journal_pg (id, s, t) VALUES (10, 'it''s', '2024-07-01 08:00')");
  ok("UPDATE journal_pg SET big = big + 1 WHERE id = 1;");
  ok("COMMIT");
  ok("BEGIN");
  ok("INSERT INTO journal_pg (id) VALUES (20)");
  ok("ROLLBACK");
  fails("INSERT INTO journal_pg (id) VALUES (1)");
  ok("BEGIN");
  ok("INSERT INTO journal_pg (id) VALUES (30)");
  fails("INSERT INTO journal_pg (id) VALUES (1)");
  PQclear(PQexec(c.get(), "COMMIT"));  // answers ROLLBACK
  // Savepoints, as ORMs nest transactions: a failed statement undone by
  // ROLLBACK TO, a savepoint released, a SET undone with its savepoint.
  ok("BEGIN");
  ok("INSERT INTO journal_pg (id) VALUES (50)");
  ok("SAVEPOINT a");
  ok("INSERT INTO journal_pg (id) VALUES (51)");
  fails("INSERT INTO journal_pg (id) VALUES (1)");
  ok("ROLLBACK TO SAVEPOINT a");
  ok("SAVEPOINT b");
  ok("SET LOCAL TimeZone = 'Asia/Tokyo'");
  ok("INSERT INTO journal_pg (id, t) VALUES (52, '2024-01-01 09:00')");
  ok("RELEASE SAVEPOINT b");
  ok("SAVEPOINT c");
  ok("INSERT INTO journal_pg (id) VALUES (53)");
  ok("ROLLBACK TO c");
  ok("UPDATE journal_pg SET n = 5 WHERE id = 50");
  ok("COMMIT");
  // Several statements in one text: one transaction, on its own or inside
  // the client's.
  ok("INSERT INTO journal_pg (id) VALUES (60); UPDATE journal_pg SET n = 6 WHERE id = 60;");
  ok("BEGIN");
  ok("INSERT INTO journal_pg (id) VALUES (61); INSERT INTO journal_pg (id) VALUES (62)");
  ok("COMMIT");
  ok("DELETE FROM journal_pg WHERE id = 2 AND false");
  ok("UPDATE journal_pg SET n = 7 WHERE id = 10");
  // The extended protocol: parameters in text and in binary, and a named
  // statement in a transaction that an extended-protocol COMMIT ends.
  auto extended = [&](const char* sql, int n, const Oid* types, const char* const* values,
                      const int* lengths, const int* formats) {
    PGresult* r = PQexecParams(c.get(), sql, n, types, values, lengths, formats, 0);
    EXPECT_EQ(PQresultStatus(r), PGRES_COMMAND_OK) << sql << ": " << PQresultErrorMessage(r);
    PQclear(r);
  };
  const char* text_values[] = {"40", "for'ty"};
  extended("INSERT INTO journal_pg (id, s) VALUES ($1, $2)", 2, nullptr, text_values, nullptr,
           nullptr);
  const std::uint32_t id41 = htonl(41);
  const std::int64_t big = -5;
  std::uint64_t big_be = 0;
  for (int i = 0; i < 8; ++i)
    big_be |= ((static_cast<std::uint64_t>(big) >> (8 * i)) & 0xff) << (8 * (7 - i));
  const Oid types[] = {23, 20};
  const char* binary_values[] = {reinterpret_cast<const char*>(&id41),
                                 reinterpret_cast<const char*>(&big_be)};
  const int lengths[] = {4, 8};
  const int formats[] = {1, 1};
  extended("INSERT INTO journal_pg (id, big) VALUES ($1, $2)", 2, types, binary_values, lengths,
           formats);
  ok("BEGIN");
  PQclear(PQprepare(c.get(), "upd", "UPDATE journal_pg SET n = $1 WHERE id = $2", 2, nullptr));
  const char* upd_values[] = {"9", "40"};
  PGresult* upd = PQexecPrepared(c.get(), "upd", 2, upd_values, nullptr, nullptr, 0);
  EXPECT_EQ(PQresultStatus(upd), PGRES_COMMAND_OK) << PQresultErrorMessage(upd);
  PQclear(upd);
  extended("COMMIT", 0, nullptr, nullptr, nullptr, nullptr);

  const std::string read =
      "SELECT id, big, d, s, n, t AT TIME ZONE 'UTC', encode(b, 'hex') FROM journal_pg ORDER BY id";
  Conn old = connect(direct_conninfo(port[before.first]));
  const std::string expected = pg_table(old.get(), read);
  EXPECT_EQ(std::count(expected.begin(), expected.end(), '\n'), 10) << expected;
  old.reset();
  c.reset();

  const std::string now_primary = stop_and_wait_for_failover(sandbox_, before.first);
  ASSERT_FALSE(now_primary.empty());
  Conn fresh = connect(direct_conninfo(port[now_primary]));
  EXPECT_EQ(pg_table(fresh.get(), read), expected) << "the replayed rows differ";
  std::string report;
  run("curl -s http://" + sandbox_.admin() + "/api/v1/failovers", &report);
  // The two autocommit inserts, the two committed transactions, the two
  // texts of two statements, the update (the DELETE changed nothing, so it
  // has no transaction id), and the three extended-protocol transactions.
  EXPECT_NE(report.find("replayed 10 journaled writes"), std::string::npos) << report;
  rejoin(sandbox_, before.first, port[now_primary]);
}

}  // namespace
}  // namespace shardgate::it
