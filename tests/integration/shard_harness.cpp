#include "tests/integration/shard_harness.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "router/shard_map.h"
#include "tests/integration/harness.h"

namespace shardgate::it {

namespace {

// One engine's four-shard sandbox and its proxy.
class ShardEnvironment : public ::testing::Environment {
 public:
  ShardEnvironment(std::string engine, std::string suite_prefix, int base, int proxy, int admin)
      : engine_(std::move(engine)),
        prefix_(std::move(suite_prefix)),
        base_(base),
        proxy_port_(proxy),
        admin_port_(admin) {}

  void SetUp() override {
    if (!suites_selected(prefix_)) return;
    char tmpl[] = "/tmp/shardgate-shards-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ::chmod(dir_.c_str(), 0755);  // the servers run as the sandbox's own OS user
    std::string out;
    const int rc =
        run(bin("shardctl") + " sandbox up --engine " + engine_ + " --shards " +
                std::to_string(kShards) + " --replicas " + std::to_string(kShardReplicas) +
                " --base-port " + std::to_string(base_) + " --proxy-port " +
                std::to_string(proxy_port_) + " --admin-port " + std::to_string(admin_port_) +
                " --dir " + dir_ + "/sbx",
            &out);
    ASSERT_EQ(rc, 0) << "sandbox up --engine " << engine_ << " --shards 4 failed:\n" << out;
    {
      std::ofstream yaml(dir_ + "/sbx/shardgate.yaml", std::ios::app);
      yaml << kShardingYaml;
    }
    proxy_ = start_proxy(dir_ + "/sbx/shardgate.yaml", proxy_port_);
    ASSERT_GT(proxy_, 0);
  }
  std::string config() const { return dir_ + "/sbx/shardgate.yaml"; }

  void TearDown() override {
    if (dir_.empty()) return;
    if (proxy_ > 0) stop_proxy(proxy_);
    run(bin("shardctl") + " sandbox down --destroy --dir " + dir_ + "/sbx");
    run("rm -rf " + dir_);
  }

 private:
  std::string engine_, prefix_;
  int base_, proxy_port_, admin_port_;
  std::string dir_;
  pid_t proxy_ = -1;
};

ShardEnvironment* const g_pg = new ShardEnvironment("postgres", "ShardedPg", kPgShardBasePort,
                                                    kPgShardProxyPort, kPgShardAdminPort);
ShardEnvironment* const g_my = new ShardEnvironment("mysql", "ShardedMy", kMyShardBasePort,
                                                    kMyShardProxyPort, kMyShardAdminPort);
// gtest owns and runs them.
const bool g_registered = [] {
  ::testing::AddGlobalTestEnvironment(g_pg);
  ::testing::AddGlobalTestEnvironment(g_my);
  return true;
}();

router::Topology make_topology() {
  router::Topology t;
  const auto ranges = router::even_key_ranges(kShards);
  for (int s = 0; s < kShards; ++s) {
    router::ShardInfo info;
    info.name = "s" + std::to_string(s);
    info.key_range = ranges[s];
    t.shards.push_back(info);
  }
  router::ShardedTable users;
  users.name = "users";
  users.column = "id";
  t.sharding.tables.push_back(users);
  router::ShardedTable accounts;
  accounts.name = "accounts";
  accounts.column = "email";
  accounts.key_type = router::KeyType::Text;
  t.sharding.tables.push_back(accounts);
  return t;
}

}  // namespace

std::string pg_shard_config() {
  return g_pg->config();
}
std::string my_shard_config() {
  return g_my->config();
}

int pg_shard_primary_port(int shard) {
  return kPgShardBasePort + shard * (kShardReplicas + 1);
}
int my_shard_primary_port(int shard) {
  return kMyShardBasePort + shard * (kShardReplicas + 1);
}

const router::Topology& declared_topology() {
  static const router::Topology t = make_topology();
  return t;
}

int shard_of_user(std::int64_t id) {
  const auto& t = declared_topology();
  router::KeyValue k;
  k.integer = id;
  return static_cast<int>(*router::shard_of(t.sharding.tables[0], k, t));
}

int shard_of_account(const std::string& email) {
  const auto& t = declared_topology();
  router::KeyValue k;
  k.type = router::KeyType::Text;
  k.text = email;
  return static_cast<int>(*router::shard_of(t.sharding.tables[1], k, t));
}

std::optional<HotKeyRow> hot_key_row(int admin_port, const std::string& table,
                                     const std::string& key, const std::string& shard,
                                     std::string* output) {
  std::string out;
  run(bin("shardctl") + " hotkeys --admin 127.0.0.1:" + std::to_string(admin_port) +
          (shard.empty() ? "" : " --shard " + shard),
      &out);
  if (output) *output = out;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::string t, k, s, rate;
    fields >> t >> k >> s >> rate;
    if (t != table || k != key) continue;
    HotKeyRow row;
    row.shard = s;
    row.rate = std::atof(rate.c_str());
    row.hot = line.size() >= 3 && line.compare(line.size() - 3, 3, "yes") == 0;
    return row;
  }
  return std::nullopt;
}

namespace {

std::string port_sed(int sandbox_proxy, int sandbox_admin, int proxy_port, int admin_port) {
  return "s/port: " + std::to_string(sandbox_proxy) + "$/port: " + std::to_string(proxy_port) +
         "/; s/port: " + std::to_string(sandbox_admin) + "$/port: " + std::to_string(admin_port) +
         "/; ";
}

}  // namespace

bool wait_for_hot_key(int admin_port, const std::string& key, bool hot,
                      std::optional<HotKeyRow>* row) {
  std::string table;
  const auto start = std::chrono::steady_clock::now();
  const bool reached = wait_until(
      [&] {
        *row = hot_key_row(admin_port, "users", key, "", &table);
        return hot ? (*row && (*row)->hot) : (!*row || !(*row)->hot);
      },
      15000);
  std::cout << "key " << key << (hot ? " reported hot " : " cooled down ")
            << std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - start)
                   .count()
            << " ms after the load changed" << (reached ? "" : " (timed out)") << ":\n"
            << table;
  return reached;
}

std::uint64_t metric(int admin_port, const std::string& name) {
  std::string out;
  run("curl -s http://127.0.0.1:" + std::to_string(admin_port) + "/metrics", &out);
  const auto at = out.find("\n" + name + " ");
  return at == std::string::npos ? 0 : std::stoull(out.substr(at + name.size() + 2));
}

std::string cache_config(const std::string& name, const std::string& source, int sandbox_proxy,
                         int sandbox_admin, int proxy_port, int admin_port) {
  return write_config_variant(
      name,
      port_sed(sandbox_proxy, sandbox_admin, proxy_port, admin_port) +
          "s/{name: users, column: id}/{name: users, column: id, cache_ttl_ms: 60000}/",
      source);
}

std::string hot_key_config(const std::string& name, const std::string& source, int sandbox_proxy,
                           int sandbox_admin, int proxy_port, int admin_port) {
  return write_config_variant(
      name,
      port_sed(sandbox_proxy, sandbox_admin, proxy_port, admin_port) +
          "s/{name: users, column: id}/{name: users, column: id, spread_hot_reads: true, "
          "hot_key_cache_ttl_ms: 60000}/; "
          "s/^users:/routing:\\n  reads_on_primary: true\\nusers:/",
      source);
}

}  // namespace shardgate::it
