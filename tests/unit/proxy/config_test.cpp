// Unit tests of the YAML configuration: parsing, defaults, validation and the
// key paths that errors name.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "proxy/config/load_config.h"

namespace shardgate::config {
namespace {

const std::string kFullConfig = R"(threads: 2
data_dir: /var/lib/shardgate
listeners:
  - protocol: postgres
    port: 6432
admin:
  port: 9930
users:
  - name: app
    password: secret
  - name: report
    password: pw
    auth: md5
    pool_mode: session
    read_your_writes: off
    server_user: reporting
  - name: local
    auth: trust
clusters:
  - name: main
    engine: postgres
    shards:
      - name: s0
        backends:
          - name: s0a
            host: 10.0.0.1
            port: 5432
            role: primary
            zone: a
          - {name: s0b, host: 10.0.0.2, port: 5432, role: replica, zone: b, priority: 7}
      - name: s1
        backends:
          - {name: s1a, unix_socket_dir: /run/postgresql, port: 5433, role: primary}
    monitor:
      user: monitor
      password: m
pool:
  acquire_timeout_ms: 2000
routing:
  balance: round-robin
  writing_functions: [nextval, my_writer]
  reads_on_primary: true
limits:
  max_message_size: 1048576
)";

// kFullConfig with one exact piece of text replaced.
std::string with(const std::string& from, const std::string& to) {
  std::string yaml = kFullConfig;
  const auto at = yaml.find(from);
  EXPECT_NE(at, std::string::npos) << "test bug: '" << from << "' is not in the config";
  if (at != std::string::npos) yaml.replace(at, from.size(), to);
  return yaml;
}

// The error message of a config that must not parse.
std::string error_of(const std::string& yaml) {
  const Result<Config> r = parse_config(yaml);
  EXPECT_FALSE(r.has_value()) << "parsed although it should not:\n" << yaml;
  return r.has_value() ? std::string() : r.error().message();
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

TEST(ConfigParse, FullConfigWithDefaults) {
  const Result<Config> r = parse_config(kFullConfig);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  const Config& c = *r;

  EXPECT_EQ(c.threads(), 2u);
  EXPECT_EQ(c.data_dir(), "/var/lib/shardgate");

  ASSERT_EQ(c.listeners_size(), 1);
  EXPECT_EQ(c.listeners(0).protocol(), Listener::POSTGRES);
  EXPECT_EQ(c.listeners(0).port(), 6432u);
  EXPECT_EQ(c.listeners(0).address(), "127.0.0.1");
  EXPECT_EQ(c.listeners(0).cluster(), "main");  // the only cluster

  EXPECT_EQ(c.admin().port(), 9930u);
  EXPECT_EQ(c.admin().address(), "127.0.0.1");

  ASSERT_EQ(c.users_size(), 3);
  const User& app = c.users(0);
  EXPECT_EQ(app.name(), "app");
  EXPECT_EQ(app.auth(), User::SCRAM_SHA_256);
  EXPECT_EQ(app.server_user(), "app");
  EXPECT_EQ(app.server_password(), "secret");
  EXPECT_EQ(app.pool_mode(), PoolMode::TRANSACTION);
  EXPECT_EQ(app.read_your_writes(), ReadYourWrites::SESSION);
  const User& report = c.users(1);
  EXPECT_EQ(report.auth(), User::MD5);
  EXPECT_EQ(report.pool_mode(), PoolMode::SESSION);
  EXPECT_EQ(report.read_your_writes(), ReadYourWrites::OFF);
  EXPECT_EQ(report.server_user(), "reporting");
  EXPECT_EQ(report.server_password(), "pw");
  EXPECT_EQ(c.users(2).auth(), User::TRUST);
  EXPECT_TRUE(c.users(2).password().empty());

  ASSERT_EQ(c.clusters_size(), 1);
  const Cluster& cl = c.clusters(0);
  EXPECT_EQ(cl.name(), "main");
  EXPECT_EQ(cl.engine(), Cluster::POSTGRES);
  ASSERT_EQ(cl.shards_size(), 2);
  ASSERT_EQ(cl.shards(0).backends_size(), 2);
  const Backend& s0a = cl.shards(0).backends(0);
  EXPECT_EQ(s0a.name(), "s0a");
  EXPECT_EQ(s0a.host(), "10.0.0.1");
  EXPECT_EQ(s0a.port(), 5432u);
  EXPECT_EQ(s0a.role(), Backend::PRIMARY);
  EXPECT_EQ(s0a.zone(), "a");
  const Backend& s0b = cl.shards(0).backends(1);
  EXPECT_EQ(s0b.role(), Backend::REPLICA);
  EXPECT_EQ(s0b.priority(), 7u);
  const Backend& s1a = cl.shards(1).backends(0);
  EXPECT_EQ(s1a.unix_socket_dir(), "/run/postgresql");
  EXPECT_TRUE(s1a.host().empty());
  EXPECT_EQ(s1a.port(), 5433u);
  EXPECT_EQ(cl.monitor().user(), "monitor");
  EXPECT_EQ(cl.monitor().password(), "m");
  EXPECT_EQ(cl.monitor().database(), "postgres");
  EXPECT_EQ(cl.monitor().interval_ms(), 250u);
  EXPECT_EQ(cl.monitor().failures_before_down(), 3u);
  EXPECT_EQ(cl.monitor().connect_timeout_ms(), 1000u);

  EXPECT_EQ(c.pool().size(), 20u);
  EXPECT_EQ(c.pool().acquire_timeout_ms(), 2000u);  // given, not defaulted
  EXPECT_EQ(c.pool().connect_timeout_ms(), 3000u);
  EXPECT_EQ(c.pool().idle_timeout_ms(), 60000u);

  EXPECT_EQ(c.routing().balance(), Routing::ROUND_ROBIN);
  EXPECT_EQ(c.routing().max_replica_lag_bytes(), 16u << 20);
  ASSERT_EQ(c.routing().writing_functions_size(), 2);
  EXPECT_EQ(c.routing().writing_functions(0), "nextval");
  EXPECT_EQ(c.routing().writing_functions(1), "my_writer");
  EXPECT_TRUE(c.routing().reads_on_primary());

  EXPECT_EQ(c.limits().max_message_size(), 1048576u);
  EXPECT_EQ(c.limits().max_client_connections(), 10000u);
  EXPECT_EQ(c.limits().client_login_timeout_ms(), 15000u);
}

TEST(ConfigParse, MinimalConfigDefaults) {
  const Result<Config> r = parse_config(R"(
listeners: [{protocol: postgres, port: 5433}]
users: [{name: u, password: p}]
clusters:
  - name: only
    engine: postgres
    shards: [{name: s, backends: [{name: b, host: h, port: 5432, role: primary}]}]
)");
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->listeners(0).cluster(), "only");
  EXPECT_EQ(r->pool().size(), 20u);
  EXPECT_EQ(r->pool().acquire_timeout_ms(), 5000u);
  EXPECT_EQ(r->routing().balance(), Routing::LEAST_OUTSTANDING);
  EXPECT_EQ(r->limits().max_message_size(), 64u << 20);
  EXPECT_EQ(r->clusters(0).monitor().user(), "postgres");
  EXPECT_EQ(r->admin().port(), 0u);
}

TEST(ConfigParse, ExplicitValuesAreKept) {
  const Result<Config> r = parse_config(
      with("pool:\n  acquire_timeout_ms: 2000\n", "pool:\n  size: 3\n  idle_timeout_ms: 10\n") +
      "\n");
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->pool().size(), 3u);
  EXPECT_EQ(r->pool().idle_timeout_ms(), 10u);
  EXPECT_EQ(r->pool().acquire_timeout_ms(), 5000u);
}

// ---------------------------------------------------------------- errors

TEST(ConfigErrors, UnknownKeyNamesItsPath) {
  const std::string e = error_of(with("pool:\n", "pool:\n  sise: 10\n"));
  EXPECT_TRUE(contains(e, "config key 'pool.sise'")) << e;
  EXPECT_TRUE(contains(e, "unknown key")) << e;
  EXPECT_TRUE(contains(e, "size")) << e;  // lists the known keys
}

TEST(ConfigErrors, UnknownKeyDeepInsideLists) {
  const std::string e = error_of(with("role: primary}", "role: primary, weight: 3}"));
  EXPECT_TRUE(contains(e, "config key 'clusters[0].shards[1].backends[0].weight'")) << e;
  EXPECT_TRUE(contains(e, "unknown key")) << e;
}

TEST(ConfigErrors, UnknownTopLevelKey) {
  const std::string e = error_of(kFullConfig + "thread: 4\n");
  EXPECT_TRUE(contains(e, "config key 'thread'")) << e;
  EXPECT_TRUE(contains(e, "unknown key")) << e;
}

TEST(ConfigErrors, BadIntegerNamesItsPath) {
  const std::string e = error_of(
      with("port: 5432\n            role: primary", "port: 54x32\n            role: primary"));
  EXPECT_TRUE(contains(e, "config key 'clusters[0].shards[0].backends[0].port'")) << e;
  EXPECT_TRUE(contains(e, "54x32")) << e;
}

TEST(ConfigErrors, NegativeAndOutOfRangeIntegers) {
  const std::string neg = error_of(with("port: 6432", "port: -1"));
  EXPECT_TRUE(contains(neg, "config key 'listeners[0].port'")) << neg;
  const std::string big = error_of(with("threads: 2", "threads: 99999999999"));
  EXPECT_TRUE(contains(big, "config key 'threads'")) << big;
  EXPECT_TRUE(contains(big, "out of range")) << big;
}

TEST(ConfigErrors, PortOver65535) {
  const std::string e = error_of(with("port: 5433", "port: 70000"));
  EXPECT_TRUE(contains(e, "config key 'clusters[0].shards[1].backends[0].port'")) << e;
}

TEST(ConfigErrors, BadEnumListsAllowedValues) {
  const std::string e = error_of(with("role: replica", "role: leader"));
  EXPECT_TRUE(contains(e, "config key 'clusters[0].shards[0].backends[1].role'")) << e;
  EXPECT_TRUE(contains(e, "'leader'")) << e;
  EXPECT_TRUE(contains(e, "primary, replica")) << e;
  EXPECT_FALSE(contains(e, "role-unset")) << e;  // the unset value is not offered
}

TEST(ConfigErrors, EnumWithDashes) {
  const std::string e = error_of(with("balance: round-robin", "balance: random"));
  EXPECT_TRUE(contains(e, "config key 'routing.balance'")) << e;
  EXPECT_TRUE(contains(e, "round-robin, least-outstanding")) << e;
}

TEST(ConfigErrors, UnsetEnumValueIsNotAccepted) {
  const std::string e = error_of(with("auth: md5", "auth: auth-unset"));
  EXPECT_TRUE(contains(e, "config key 'users[1].auth'")) << e;
}

TEST(ConfigErrors, BadBool) {
  const std::string e = error_of(with("reads_on_primary: true", "reads_on_primary: maybe"));
  EXPECT_TRUE(contains(e, "config key 'routing.reads_on_primary'")) << e;
}

TEST(ConfigParse, BoolSpellingsOfYaml) {
  for (const char* spelling : {"True", "TRUE", "yes", "On"}) {
    const Result<Config> r =
        parse_config(with("reads_on_primary: true", std::string("reads_on_primary: ") + spelling));
    ASSERT_TRUE(r.has_value()) << spelling << ": " << r.error().message();
    EXPECT_TRUE(r->routing().reads_on_primary()) << spelling;
  }
}

TEST(ConfigErrors, NoPrimaryInAShard) {
  const std::string e = error_of(with("port: 5433, role: primary", "port: 5433, role: replica"));
  EXPECT_TRUE(contains(e, "config key 'clusters[0].shards[1].backends'")) << e;
  EXPECT_TRUE(contains(e, "found 0")) << e;
}

TEST(ConfigErrors, TwoPrimaries) {
  const std::string e = error_of(with("role: replica", "role: primary"));
  EXPECT_TRUE(contains(e, "config key 'clusters[0].shards[0].backends'")) << e;
  EXPECT_TRUE(contains(e, "found 2")) << e;
}

TEST(ConfigErrors, DuplicateBackendNames) {
  const std::string e = error_of(with("{name: s1a,", "{name: s0b,"));
  EXPECT_TRUE(contains(e, "config key 'clusters[0].shards[1].backends[0].name'")) << e;
  EXPECT_TRUE(contains(e, "'s0b'")) << e;
}

TEST(ConfigErrors, BackendWithoutRole) {
  const std::string e = error_of(with(", role: replica", ""));
  EXPECT_TRUE(contains(e, "config key 'clusters[0].shards[0].backends[1].role'")) << e;
}

TEST(ConfigErrors, BackendWithoutHostOrSocket) {
  const std::string e = error_of(with("unix_socket_dir: /run/postgresql, ", ""));
  EXPECT_TRUE(contains(e, "config key 'clusters[0].shards[1].backends[0].host'")) << e;
}

TEST(ConfigErrors, ListenerNamesUnknownCluster) {
  const std::string e = error_of(with("    port: 6432\n", "    port: 6432\n    cluster: other\n"));
  EXPECT_TRUE(contains(e, "config key 'listeners[0].cluster'")) << e;
  EXPECT_TRUE(contains(e, "'other'")) << e;
}

TEST(ConfigErrors, ListenerClusterNotDefaultedWithTwoClusters) {
  const std::string second_cluster = R"(  - name: second
    engine: postgres
    shards: [{name: x, backends: [{name: x1, host: h, port: 1, role: primary}]}]
pool:
)";
  const std::string e = error_of(with("pool:\n", second_cluster));
  EXPECT_TRUE(contains(e, "config key 'listeners[0].cluster'")) << e;
}

TEST(ConfigErrors, DuplicateClusterNames) {
  const std::string second_cluster = R"(  - name: main
    engine: postgres
    shards: [{name: x, backends: [{name: x1, host: h, port: 1, role: primary}]}]
pool:
)";
  const std::string e = error_of(with("pool:\n", second_cluster));
  EXPECT_TRUE(contains(e, "config key 'clusters[1].name'")) << e;
}

TEST(ConfigErrors, UserWithoutPassword) {
  const std::string e = error_of(with("    password: pw\n", ""));
  EXPECT_TRUE(contains(e, "config key 'users[1].password'")) << e;
}

TEST(ConfigErrors, ListWhereAMapIsExpected) {
  const std::string e = error_of(with("pool:\n  acquire_timeout_ms: 2000\n", "pool: [1, 2]\n"));
  EXPECT_TRUE(contains(e, "config key 'pool'")) << e;
  EXPECT_TRUE(contains(e, "map")) << e;

  const std::string item = error_of(
      with("    monitor:\n      user: monitor\n      password: m\n", "    monitor: [monitor]\n"));
  EXPECT_TRUE(contains(item, "config key 'clusters[0].monitor'")) << item;
}

TEST(ConfigErrors, ScalarWhereAListIsExpected) {
  const std::string e =
      error_of(with("writing_functions: [nextval, my_writer]", "writing_functions: nextval"));
  EXPECT_TRUE(contains(e, "config key 'routing.writing_functions'")) << e;
  EXPECT_TRUE(contains(e, "list")) << e;
}

TEST(ConfigErrors, MapWhereAValueIsExpected) {
  const std::string e = error_of(with("threads: 2", "threads: {a: 1}"));
  EXPECT_TRUE(contains(e, "config key 'threads'")) << e;
}

TEST(ConfigErrors, TopLevelList) {
  const std::string e = error_of("- a\n- b\n");
  EXPECT_TRUE(contains(e, "(top level)")) << e;
}

TEST(ConfigErrors, InvalidYamlSyntax) {
  for (const char* yaml : {"listeners: [", "a: b: c", "pool:\n  size: 1\n size: 2\n", "{"}) {
    const std::string e = error_of(yaml);
    EXPECT_TRUE(contains(e, "not valid YAML")) << yaml << " -> " << e;
  }
}

TEST(ConfigErrors, EmptyConfig) {
  const std::string e = error_of("");
  EXPECT_TRUE(contains(e, "config key 'listeners'")) << e;
}

TEST(ConfigFile, ReadsAFileAndReportsAMissingOne) {
  const std::string path = ::testing::TempDir() + "shardgate_config_test.yaml";
  {
    std::ofstream out(path);
    out << kFullConfig;
  }
  const Result<Config> r = load_config_file(path);
  std::remove(path.c_str());
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->clusters(0).name(), "main");

  const Result<Config> missing = load_config_file(path + ".missing");
  ASSERT_FALSE(missing.has_value());
  EXPECT_TRUE(contains(missing.error().message(), path + ".missing")) << missing.error().message();
}

}  // namespace
}  // namespace shardgate::config
