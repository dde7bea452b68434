// Hot-key relief over several replicas: a sandbox of its own with two
// PostgreSQL shards of two replicas each, users sharded with
// spread_hot_reads and every other read kept on the primary
// (routing.reads_on_primary). Reads of the hot key reach both replicas of
// its shard; a cold key's stay on the primary.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "tests/integration/harness.h"
#include "tests/integration/shard_harness.h"

namespace shardgate::it {
namespace {

constexpr int kBase = 25432;  // shard s, member m: kBase + s * 3 + m
constexpr int kProxy = 25532;
constexpr int kAdmin = 25533;

std::string conninfo(int port) {
  return "host=127.0.0.1 port=" + std::to_string(port) +
         " user=app password=app dbname=app connect_timeout=10";
}

class HotKeySpreadPg : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/shardgate-spread-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ::chmod(dir_.c_str(), 0755);  // the servers run as the sandbox's own OS user
    std::string out;
    ASSERT_EQ(run(bin("shardctl") + " sandbox up --engine postgres --shards 2 --replicas 2" +
                      " --base-port " + std::to_string(kBase) + " --proxy-port " +
                      std::to_string(kProxy) + " --admin-port " + std::to_string(kAdmin) +
                      " --dir " + dir_ + "/sbx",
                  &out),
              0)
        << out;
    for (int s = 0; s < 2; ++s) {
      Conn c = connect(conninfo(kBase + s * 3));
      Res r(PQexec(c.get(), "CREATE TABLE users (id bigint PRIMARY KEY, name text)"));
      ASSERT_EQ(PQresultStatus(r.get()), PGRES_COMMAND_OK) << PQresultErrorMessage(r.get());
    }
    config_ =
        write_config_variant("spread", "s/^users:/routing:\\n  reads_on_primary: true\\nusers:/",
                             dir_ + "/sbx/shardgate.yaml");
    std::ofstream(config_, std::ios::app)
        << "    sharding:\n      tables:\n        - {name: users, column: id, spread_hot_reads: "
           "true}\n";
    proxy_ = start_proxy(config_, kProxy);
    ASSERT_GT(proxy_, 0);
  }
  static void TearDownTestSuite() {
    if (proxy_ > 0) stop_proxy(proxy_);
    if (dir_.empty()) return;
    run(bin("shardctl") + " sandbox down --destroy --dir " + dir_ + "/sbx");
    run("rm -rf " + dir_);
  }
  static inline std::string dir_, config_;
  static inline pid_t proxy_ = -1;
};

TEST_F(HotKeySpreadPg, ReadsOfAHotKeyGoToEveryReplicaOfItsShard) {
  const std::int64_t first = 1, hot = 7;
  {
    Conn c = connect(conninfo(kProxy));
    for (std::int64_t id = first; id < first + 100; ++id) {
      Res r(PQexec(
          c.get(),
          ("INSERT INTO users (id, name) VALUES (" + std::to_string(id) + ", 'u')").c_str()));
      ASSERT_EQ(PQresultStatus(r.get()), PGRES_COMMAND_OK) << PQresultErrorMessage(r.get());
    }
  }
  std::atomic<bool> stop{false};
  std::thread load([&] {
    Conn c = connect(conninfo(kProxy));
    std::mt19937 rng(5);
    while (!stop) {
      const std::int64_t id = rng() % 2 ? hot : first + static_cast<std::int64_t>(rng() % 100);
      Res r(PQexec(c.get(), ("SELECT name FROM users WHERE id = " + std::to_string(id)).c_str()));
    }
  });
  std::optional<HotKeyRow> row;
  const bool detected = wait_for_hot_key(kAdmin, std::to_string(hot), true, &row);
  ASSERT_TRUE(detected);
  // The server that answers, by its port (the proxy reaches it over a Unix
  // socket, so inet_server_port() would be NULL).
  Conn r = connect(conninfo(kProxy));
  auto port_of = [&](std::int64_t id) {
    return scalar(r.get(),
                  "SELECT current_setting('port') FROM users WHERE id = " + std::to_string(id))
        .value_or("?");
  };
  std::set<std::string> hot_ports;
  for (int i = 0; i < 40; ++i) hot_ports.insert(port_of(hot));
  stop = true;
  load.join();
  const int shard = row->shard == "s1" ? 1 : 0;
  const std::set<std::string> replicas{std::to_string(kBase + shard * 3 + 1),
                                       std::to_string(kBase + shard * 3 + 2)};
  EXPECT_EQ(hot_ports, replicas) << "reads of the hot key reach both replicas of shard "
                                 << row->shard;
  std::int64_t cold = first;
  while (cold == hot) ++cold;
  const std::string cold_port = port_of(cold);
  EXPECT_TRUE(cold_port == std::to_string(kBase) || cold_port == std::to_string(kBase + 3))
      << "a cold key is read on its primary, not " << cold_port;
  EXPECT_GE(metric(kAdmin, "shardgate_hot_key_reads_spread_total"), 40u);
}

}  // namespace
}  // namespace shardgate::it
