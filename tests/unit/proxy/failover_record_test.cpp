// The topology versions failover publishes: the promoted replica leads, the
// old primary is fenced out of every route, the epoch grows, and a rejoined
// old primary serves reads again.
#include <gtest/gtest.h>

#include "proxy/config/load_config.h"
#include "proxy/topology.h"

namespace shardgate {
namespace {

config::TopologyRecord record_of(const std::string& yaml) {
  auto c = config::parse_config(yaml);
  EXPECT_TRUE(c.has_value()) << (c ? "" : c.error().message());
  config::TopologyRecord r;
  r.set_version(4);
  r.set_config_digest("digest");
  if (c) *r.mutable_cluster() = c->clusters(0);
  return r;
}

const char* kYaml = R"(listeners:
  - {protocol: postgres, port: 6432}
users:
  - {name: app, password: app}
clusters:
  - name: main
    engine: postgres
    shards:
      - name: s0
        backends:
          - {name: a, host: 127.0.0.1, port: 5432, role: primary}
          - {name: a1, host: 127.0.0.1, port: 5433, role: replica}
          - {name: a2, host: 127.0.0.1, port: 5434, role: replica}
      - name: s1
        backends:
          - {name: b, host: 127.0.0.1, port: 5435, role: primary}
)";

TEST(FailoverRecord, PromotionFencesTheOldPrimaryAndGrowsTheEpoch) {
  const auto before = record_of(kYaml);
  const auto after = promoted_record(before, 0, "a2", "failover of shard s0: a -> a2");
  EXPECT_EQ(after.version(), 5u);
  EXPECT_EQ(after.config_digest(), "digest") << "an unchanged config keeps this version";
  EXPECT_EQ(after.reason(), "failover of shard s0: a -> a2");
  EXPECT_EQ(after.cluster().shards(0).epoch(), 1u);
  EXPECT_EQ(after.cluster().shards(1).epoch(), 0u) << "other shards keep their epoch";

  const router::Topology t = topology_from_record(after);
  EXPECT_EQ(t.version, 5u);
  EXPECT_EQ(t.shards[0].epoch, 1u);
  EXPECT_EQ(t.backends[t.shards[0].primary].name, "a2");
  ASSERT_EQ(t.shards[0].replicas.size(), 1u) << "the fenced old primary serves nothing";
  EXPECT_EQ(t.backends[t.shards[0].replicas[0]].name, "a1");
  EXPECT_TRUE(t.backends[0].fenced);
  EXPECT_EQ(t.backends[0].role, router::MemberRole::Replica);
  EXPECT_EQ(t.backends.size(), 4u) << "backend indexes stay stable across versions";
  EXPECT_EQ(t.backends[t.shards[1].primary].name, "b");
}

TEST(FailoverRecord, ASecondFailoverFencesTheSecondPrimaryToo) {
  const auto once = promoted_record(record_of(kYaml), 0, "a1", "first");
  const auto twice = promoted_record(once, 0, "a2", "second");
  const router::Topology t = topology_from_record(twice);
  EXPECT_EQ(t.shards[0].epoch, 2u);
  EXPECT_EQ(t.backends[t.shards[0].primary].name, "a2");
  EXPECT_TRUE(t.shards[0].replicas.empty());
  EXPECT_TRUE(t.backends[0].fenced);
  EXPECT_TRUE(t.backends[1].fenced);
}

TEST(FailoverRecord, ARejoinedOldPrimaryServesAsAReplica) {
  const auto failed_over = promoted_record(record_of(kYaml), 0, "a1", "failover");
  const auto rejoined = rejoined_record(failed_over, "a", "a rejoined");
  EXPECT_EQ(rejoined.version(), failed_over.version() + 1);
  EXPECT_EQ(rejoined.cluster().shards(0).epoch(), 1u) << "rejoining changes no primary";
  const router::Topology t = topology_from_record(rejoined);
  EXPECT_FALSE(t.backends[0].fenced);
  EXPECT_EQ(t.backends[t.shards[0].primary].name, "a1");
  ASSERT_EQ(t.shards[0].replicas.size(), 2u);
  EXPECT_EQ(t.shards[0].replicas[0], 0u);
}

}  // namespace
}  // namespace shardgate
