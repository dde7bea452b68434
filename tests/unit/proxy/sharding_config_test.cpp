// The sharding section of the configuration: validation errors name their
// key, and the topology built from it maps keys as declared.
#include <gtest/gtest.h>

#include <string>

#include "proxy/config/load_config.h"
#include "proxy/topology.h"
#include "router/shard_map.h"

namespace shardgate {
namespace {

const std::string kBase = R"(listeners:
  - {protocol: postgres, port: 6432}
users:
  - {name: app, password: app}
clusters:
  - name: main
    engine: postgres
    shards:
      - name: s0
        key_range: "-80"
        backends:
          - {name: a, host: 127.0.0.1, port: 5432, role: primary}
      - name: s1
        key_range: "80-"
        backends:
          - {name: b, host: 127.0.0.1, port: 5433, role: primary}
    sharding:
      default_shard: s1
      reference_tables: [countries]
      tables:
        - {name: users, column: id}
        - {name: Accounts, column: Email, key_type: text}
        - name: events
          column: id
          strategy: range
          ranges:
            - {shard: s0, to: "100"}
            - {shard: s1, from: "100"}
)";

std::string with(const std::string& from, const std::string& to) {
  std::string yaml = kBase;
  const auto at = yaml.find(from);
  EXPECT_NE(at, std::string::npos) << "test bug: '" << from << "' is not in the config";
  if (at != std::string::npos) yaml.replace(at, from.size(), to);
  return yaml;
}

std::string with_in(std::string yaml, const std::string& from, const std::string& to) {
  const auto at = yaml.find(from);
  EXPECT_NE(at, std::string::npos) << "test bug: '" << from << "' is not in the config";
  if (at != std::string::npos) yaml.replace(at, from.size(), to);
  return yaml;
}

std::string error_of(const std::string& yaml) {
  auto r = config::parse_config(yaml);
  EXPECT_FALSE(r.has_value()) << "parsed although it should not:\n" << yaml;
  return r.has_value() ? std::string() : r.error().message();
}

TEST(ShardingConfig, BuildsTheTopology) {
  auto c = config::parse_config(kBase);
  ASSERT_TRUE(c.has_value()) << c.error().message();
  const router::Topology t = topology_from_config(c->clusters(0));
  ASSERT_EQ(t.shards.size(), 2u);
  EXPECT_EQ(router::format_key_range(t.shards[0].key_range), "-80");
  EXPECT_EQ(router::format_key_range(t.shards[1].key_range), "80-");
  EXPECT_EQ(t.sharding.default_shard, 1u);
  EXPECT_EQ(t.sharding.reference_tables, std::vector<std::string>{"countries"});
  ASSERT_EQ(t.sharding.tables.size(), 3u);
  const router::ShardedTable& accounts = t.sharding.tables[1];
  EXPECT_EQ(accounts.name, "accounts");  // names and columns are folded to lower case
  EXPECT_EQ(accounts.column, "email");
  EXPECT_EQ(accounts.key_type, router::KeyType::Text);
  const router::ShardedTable* events = &t.sharding.tables[2];
  EXPECT_EQ(events->name, "events");
  EXPECT_EQ(events->strategy, router::ShardStrategy::Range);
  router::KeyValue k;
  k.integer = 99;
  EXPECT_EQ(*router::shard_of(*events, k, t), 0u);
  k.integer = 100;
  EXPECT_EQ(*router::shard_of(*events, k, t), 1u);
}

TEST(ShardingConfig, KeyRangesDefaultToEqualSlices) {
  std::string yaml = with("        key_range: \"-80\"\n", "");
  const auto at = yaml.find("        key_range: \"80-\"\n");
  yaml.erase(at, std::string("        key_range: \"80-\"\n").size());
  auto c = config::parse_config(yaml);
  ASSERT_TRUE(c.has_value()) << c.error().message();
  const router::Topology t = topology_from_config(c->clusters(0));
  EXPECT_EQ(router::format_key_range(t.shards[0].key_range), "-80");
  EXPECT_EQ(router::format_key_range(t.shards[1].key_range), "80-");
}

TEST(ShardingConfig, ErrorsNameTheKey) {
  struct Case {
    std::string from, to, key, words;
  } cases[] = {
      {"key_range: \"-80\"", "key_range: \"-40\"", "clusters[0].shards", "gap"},
      {"key_range: \"-80\"", "key_range: \"-zz\"", "clusters[0].shards[0].key_range", "hex"},
      {"        key_range: \"-80\"\n", "", "clusters[0].shards[0].key_range", "every shard"},
      {"default_shard: s1", "default_shard: s9", "clusters[0].sharding.default_shard", "s9"},
      {"{name: users, column: id}", "{name: users}", "clusters[0].sharding.tables[0].column",
       "users"},
      {"{name: users, column: id}", "{name: events, column: id}",
       "clusters[0].sharding.tables[2].name", "twice"},
      {"[countries]", "[users]", "clusters[0].sharding.reference_tables[0]", "also sharded"},
      {"{shard: s0, to: \"100\"}", "{shard: s7, to: \"100\"}",
       "clusters[0].sharding.tables[2].ranges[0].shard", "s7"},
      {"{shard: s0, to: \"100\"}", "{shard: s0, to: \"x\"}",
       "clusters[0].sharding.tables[2].ranges[0].to", "integer"},
      {"{shard: s1, from: \"100\"}", "{shard: s1, from: \"100\", to: \"50\"}",
       "clusters[0].sharding.tables[2].ranges[1].to", "greater"},
      {"          strategy: range\n", "", "clusters[0].sharding.tables[2].ranges", "only strategy"},
      {"strategy: range", "strategy: range\n          key_type: text",
       "clusters[0].sharding.tables[2].key_type", "integer"},
      {"{name: users, column: id}", "{name: users, column: id, strategy: sideways}",
       "clusters[0].sharding.tables[0].strategy", "hash"},
  };
  for (const Case& c : cases) {
    const std::string e = error_of(with(c.from, c.to));
    EXPECT_NE(e.find("'" + c.key + "'"), std::string::npos) << c.to << " -> " << e;
    EXPECT_NE(e.find(c.words), std::string::npos) << c.to << " -> " << e;
  }
}

// A spare (key_range: none) owns nothing; the others' equal slices skip it.
TEST(ShardingConfig, SpareShardsOwnNothing) {
  const std::string spare =
      "      - name: s2\n        key_range: none\n        backends:\n"
      "          - {name: c, host: 127.0.0.1, port: 5434, role: primary}\n    sharding:";
  auto c = config::parse_config(with("    sharding:", spare));
  ASSERT_TRUE(c.has_value()) << c.error().message();
  router::Topology t = topology_from_config(c->clusters(0));
  ASSERT_EQ(t.shards.size(), 3u);
  EXPECT_TRUE(t.shards[2].spare);
  EXPECT_FALSE(t.shards[0].spare);
  std::string equal = with("        key_range: \"-80\"\n", "");
  equal.erase(equal.find("        key_range: \"80-\"\n"),
              std::string("        key_range: \"80-\"\n").size());
  const auto at = equal.find("    sharding:");
  equal.replace(at, std::string("    sharding:").size(), spare);
  c = config::parse_config(equal);
  ASSERT_TRUE(c.has_value()) << c.error().message();
  t = topology_from_config(c->clusters(0));
  EXPECT_EQ(router::format_key_range(t.shards[1].key_range), "80-") << "two owners: halves";
  EXPECT_TRUE(t.shards[2].spare);
  // The default shard and range rules cannot name a spare.
  std::string spare_default = with("        key_range: \"80-\"", "        key_range: none");
  spare_default.replace(spare_default.find("\"-80\""), 5, "\"-\"");
  EXPECT_NE(error_of(spare_default).find("default shard"), std::string::npos);
  std::string rule = with("{shard: s1, from: \"100\"}", "{shard: s2, from: \"100\"}");
  rule.replace(rule.find("    sharding:"), std::string("    sharding:").size(), spare);
  EXPECT_NE(error_of(rule).find("spare shard s2"), std::string::npos);
}

// A cutover's version: both shards' new ranges, the others written out.
TEST(ShardingConfig, ReshardedRecordMovesTheSlice) {
  std::string yaml = with("        key_range: \"-80\"\n", "");
  yaml.erase(yaml.find("        key_range: \"80-\"\n"),
             std::string("        key_range: \"80-\"\n").size());
  yaml.replace(yaml.find("    sharding:"), std::string("    sharding:").size(),
               "      - name: s2\n        key_range: none\n        backends:\n"
               "          - {name: c, host: 127.0.0.1, port: 5434, role: primary}\n    sharding:");
  auto c = config::parse_config(yaml);
  ASSERT_TRUE(c.has_value()) << c.error().message();
  config::TopologyRecord r;
  r.set_version(3);
  *r.mutable_cluster() = c->clusters(0);
  const config::TopologyRecord next = resharded_record(r, "s1", "80-c0", "s2", "c0-", "split");
  EXPECT_EQ(next.version(), 4u);
  EXPECT_EQ(next.reason(), "split");
  const router::Topology t = topology_from_record(next);
  EXPECT_EQ(router::format_key_range(t.shards[0].key_range), "-80") << "made explicit";
  EXPECT_EQ(router::format_key_range(t.shards[1].key_range), "80-c0");
  EXPECT_FALSE(t.shards[2].spare);
  EXPECT_EQ(router::format_key_range(t.shards[2].key_range), "c0-");
  router::KeyValue k;
  for (k.integer = 0; k.integer < 500; ++k.integer) {
    const std::uint64_t h = router::key_hash(k);
    EXPECT_EQ(*router::shard_of(t.sharding.tables[0], k, t), h < 0x8000000000000000ull   ? 0u
                                                             : h < 0xc000000000000000ull ? 1u
                                                                                         : 2u);
  }
}

// A shard may own several slices; all shards' slices tile the keyspace in
// keyspace order, whatever the order of the shards.
TEST(ShardingConfig, SeveralSlicesPerShard) {
  std::string yaml = with("key_range: \"-80\"", "key_range: \"c0-, -80\"");
  yaml = with_in(yaml, "key_range: \"80-\"", "key_range: \"80-c0\"");
  auto c = config::parse_config(yaml);
  ASSERT_TRUE(c.has_value()) << c.error().message();
  const router::Topology t = topology_from_config(c->clusters(0));
  EXPECT_EQ(router::format_shard_ranges(t.shards[0]), "-80,c0-");
  router::KeyValue k;
  for (k.integer = 0; k.integer < 300; ++k.integer) {
    const std::uint64_t h = router::key_hash(k);
    const bool middle = h >= 0x8000000000000000ull && h < 0xc000000000000000ull;
    EXPECT_EQ(*router::shard_of(t.sharding.tables[0], k, t), middle ? 1u : 0u);
  }
  EXPECT_NE(error_of(with_in(yaml, "\"80-c0\"", "\"80-b0\"")).find("gap"), std::string::npos);
}

// A shard added while running: a spare after the others, checked first.
TEST(ShardingConfig, SpareShardAddedWhileRunning) {
  auto c = config::parse_config(kBase);
  ASSERT_TRUE(c.has_value()) << c.error().message();
  config::TopologyRecord r;
  r.set_version(2);
  *r.mutable_cluster() = c->clusters(0);
  config::Shard shard;
  shard.set_name("s2");
  auto* b = shard.add_backends();
  b->set_name("c");
  b->set_host("127.0.0.1");
  b->set_port(5440);
  b->set_role(config::Backend::PRIMARY);
  auto next = with_spare_shard(r, shard, "added");
  ASSERT_TRUE(next) << next.error().message();
  EXPECT_EQ(next->version(), 3u);
  const router::Topology t = topology_from_record(*next);
  ASSERT_EQ(t.shards.size(), 3u);
  EXPECT_TRUE(t.shards[2].spare);
  EXPECT_EQ(t.backends.size(), 3u);
  EXPECT_EQ(t.backends[2].shard, 2u) << "new backends come after the others: indexes stay";
  EXPECT_EQ(router::format_key_range(t.shards[1].key_range), "80-") << "owners unchanged";
  auto refused = [&](config::Shard s, const std::string& words) {
    auto bad = with_spare_shard(r, s, "x");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message().find(words), std::string::npos) << bad.error().message();
  };
  config::Shard taken = shard;
  taken.set_name("s1");
  refused(taken, "exists already");
  config::Shard same_backend = shard;
  same_backend.mutable_backends(0)->set_name("a");
  refused(same_backend, "is taken");
  config::Shard no_primary = shard;
  no_primary.mutable_backends(0)->set_role(config::Backend::REPLICA);
  refused(no_primary, "exactly one primary");
}

}  // namespace
}  // namespace shardgate
