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
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <boost/json/src.hpp>
#include <chrono>
#include <iostream>
#include <string>
#include <vector>

#include "tests/integration/harness.h"

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
  // Frozen for 2 s: the proxy's probes fail past failures_before_down, but the
  // replicas still hold their replication connections, so it must wait.
  auto r = s.drill("--pause primary --pause-ms 2000 --duration 6 --load 100");
  expect_nothing_lost(r);
  EXPECT_FALSE(flag(r, "failed_over")) << "a hung primary its replicas still held was replaced";
  EXPECT_EQ(primary_of(s.topology()), before);
}

// A crash with asynchronous replication: the proxy must lose nothing itself
// (no statement to the fenced primary, the most advanced replica promoted).
// A write the dead primary acknowledged in its last moments but had not sent
// to any replica is the one loss left: the write journal that will replay
// those is not built yet (docs/failover.md), so such losses are reported
// and must lie at the crash instant, never later.
void crash_loses_only_unreplicated_writes(DrillSandbox& s) {
  const auto before = primary_of(s.topology());
  auto r = s.drill("--kill primary --rejoin --duration 8 --load 200");
  EXPECT_EQ(number(r, "statements_to_fenced_primary"), 0) << "a statement reached a fenced primary";
  EXPECT_GT(number(r, "writes_acknowledged"), 0);
  EXPECT_FALSE(r.contains("verify_error")) << text(r, "verify_error");
  EXPECT_FALSE(r.contains("fault_error")) << text(r, "fault_error");
  const auto lost = number(r, "acknowledged_missing");
  EXPECT_GE(lost, 0);
  if (lost > 0) {
    std::cout << "[ lost     ] " << lost
              << " acknowledged writes the primary had not replicated when killed\n";
    EXPECT_LE(r.at("missing_acknowledged_within_ms_of_fault").to_number<double>(), 1000.0)
        << "a write acknowledged well after the crash is missing: the proxy lost it";
  }
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
// once the servers are back the same proxy writes again.
void no_candidate_gives_a_clear_error(DrillSandbox& s) {
  const std::string primary = primary_of(s.topology()).first;
  ASSERT_FALSE(primary.empty());
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
  std::string out;
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

  for (const auto& m : members) sandbox_cmd("start", m);
  EXPECT_TRUE(wait_until([&] { return run(write + insert + " 2>&1", &out) == 0; }, 30000))
      << "writes did not come back with the servers: " << out;
  EXPECT_EQ(primary_of(s.topology()).first, primary) << "nothing could have been promoted";
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
  TEST_F(Suite, CrashUnderLoadFailsOverAndTheOldPrimaryRejoins) {                  \
    crash_loses_only_unreplicated_writes(sandbox_);                                \
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
  TEST_F(Suite, NoReplicaToPromoteGivesWritesAClearErrorAfterTheWait) {            \
    no_candidate_gives_a_clear_error(sandbox_);                                    \
  }

FAILOVER_SUITE(FailoverPg, "postgres", 26432, 26532, 26533)
FAILOVER_SUITE(FailoverMy, "mysql", 27306, 27336, 27337)

}  // namespace
}  // namespace shardgate::it
