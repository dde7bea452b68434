// The RocksDB topology store: seeded from the config, kept across restarts,
// versioned when the config changes, and owned by one process at a time.
#include "proxy/topology_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "proxy/config/load_config.h"

namespace shardgate {
namespace {

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
      - name: s1
        backends:
          - {name: b, host: 127.0.0.1, port: 5433, role: primary}
    sharding:
      tables:
        - {name: users, column: id}
)";

config::Cluster cluster_of(const std::string& yaml) {
  auto c = config::parse_config(yaml);
  EXPECT_TRUE(c.has_value()) << (c ? "" : c.error().message());
  return c ? c->clusters(0) : config::Cluster{};
}

class TopologyStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "topology-store-" + std::to_string(::getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(TopologyStoreTest, SeedsVersionOneAndKeepsItAcrossRestarts) {
  const config::Cluster cluster = cluster_of(kYaml);
  {
    auto store = TopologyStore::open(dir_);
    ASSERT_TRUE(store) << store.error().message();
    auto first = reconcile_with_config(**store, cluster);
    ASSERT_TRUE(first) << first.error().message();
    EXPECT_EQ(first->version(), 1u);
    EXPECT_EQ(first->reason(), "seeded from the configuration file");
    EXPECT_EQ(first->cluster().shards_size(), 2);
    EXPECT_EQ(first->cluster().sharding().tables(0).column(), "id");
  }
  auto store = TopologyStore::open(dir_);  // a restart
  ASSERT_TRUE(store) << store.error().message();
  auto again = reconcile_with_config(**store, cluster);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->version(), 1u);
  auto history = (*store)->history("main");
  ASSERT_TRUE(history);
  EXPECT_EQ(history->size(), 1u);
}

TEST_F(TopologyStoreTest, AChangedConfigPublishesTheNextVersion) {
  auto store = TopologyStore::open(dir_);
  ASSERT_TRUE(store);
  ASSERT_TRUE(reconcile_with_config(**store, cluster_of(kYaml)));
  std::string changed = kYaml;
  changed.replace(changed.find("column: id"), 10, "column: uid");
  auto v2 = reconcile_with_config(**store, cluster_of(changed));
  ASSERT_TRUE(v2);
  EXPECT_EQ(v2->version(), 2u);
  EXPECT_EQ(v2->reason(), "the configuration file changed");
  EXPECT_EQ(v2->cluster().sharding().tables(0).column(), "uid");
  auto history = (*store)->history("main");
  ASSERT_TRUE(history);
  ASSERT_EQ(history->size(), 2u);
  EXPECT_EQ((*history)[0].version(), 1u);
  EXPECT_EQ((*history)[1].version(), 2u);
  auto current = (*store)->current("main");
  ASSERT_TRUE(current && current->has_value());
  EXPECT_EQ((*current)->version(), 2u);
}

TEST_F(TopologyStoreTest, AVersionPublishedByTheControlPlaneSurvivesAnUnchangedConfig) {
  const config::Cluster cluster = cluster_of(kYaml);
  auto store = TopologyStore::open(dir_);
  ASSERT_TRUE(store);
  auto v1 = reconcile_with_config(**store, cluster);
  ASSERT_TRUE(v1);
  config::TopologyRecord v2 = *v1;  // e.g. a failover promoting another member
  v2.set_version(2);
  v2.set_reason("failover");
  ASSERT_TRUE((*store)->publish(v2));
  auto served = reconcile_with_config(**store, cluster);
  ASSERT_TRUE(served);
  EXPECT_EQ(served->version(), 2u);
  EXPECT_EQ(served->reason(), "failover");
}

// An operator edits the config after a failover and a resharding cutover,
// then restarts: the edit takes effect, and what the control plane decided
// stays (else writes would go back to the old primary).
TEST_F(TopologyStoreTest, AChangedConfigKeepsFailoverAndReshardingDecisions) {
  std::string yaml = kYaml;  // s0 gets a replica, a2
  yaml.insert(yaml.find("      - name: s1"),
              "          - {name: a2, host: 127.0.0.1, port: 5434, role: replica}\n");
  auto store = TopologyStore::open(dir_);
  ASSERT_TRUE(store);
  auto v1 = reconcile_with_config(**store, cluster_of(yaml));
  ASSERT_TRUE(v1);
  config::TopologyRecord v2 = *v1;  // a2 promoted, a fenced; s0 given "-40"; s2 added
  v2.set_version(2);
  auto* s0 = v2.mutable_cluster()->mutable_shards(0);
  s0->set_epoch(1);
  s0->set_key_range("-40");
  s0->mutable_backends(0)->set_role(config::Backend::REPLICA);
  s0->mutable_backends(0)->set_fenced(true);
  s0->mutable_backends(1)->set_role(config::Backend::PRIMARY);
  v2.mutable_cluster()->mutable_shards(1)->set_key_range("40-80");
  auto* added = v2.mutable_cluster()->add_shards();
  added->set_name("s2");
  added->set_key_range("80-");
  *added->add_backends() = v2.cluster().shards(1).backends(0);
  added->mutable_backends(0)->set_name("c");
  ASSERT_TRUE((*store)->publish(v2));

  std::string edited = yaml;
  edited.replace(edited.find("port: 5433"), 10, "port: 6433");
  auto v3 = reconcile_with_config(**store, cluster_of(edited));
  ASSERT_TRUE(v3);
  EXPECT_EQ(v3->version(), 3u);
  EXPECT_NE(v3->reason().find("kept from version 2"), std::string::npos) << v3->reason();
  const auto& c = v3->cluster();
  ASSERT_EQ(c.shards_size(), 3);
  EXPECT_EQ(c.shards(1).backends(0).port(), 6433u) << "the edit itself is lost";
  EXPECT_EQ(c.shards(0).epoch(), 1u);
  EXPECT_EQ(c.shards(0).key_range(), "-40");
  EXPECT_EQ(c.shards(0).backends(0).role(), config::Backend::REPLICA);
  EXPECT_TRUE(c.shards(0).backends(0).fenced());
  EXPECT_EQ(c.shards(0).backends(1).role(), config::Backend::PRIMARY);
  EXPECT_EQ(c.shards(1).key_range(), "40-80");
  EXPECT_EQ(c.shards(2).name(), "s2");

  // A shard new in the file owns no keys until a resharding gives it some.
  std::string with_s3 = edited;
  with_s3.replace(with_s3.find("    sharding:"), 0,
                  "      - name: s3\n        backends:\n          - {name: d, host: 127.0.0.1, "
                  "port: 5439, role: primary}\n");
  auto with_new = reconcile_with_config(**store, cluster_of(with_s3));
  ASSERT_TRUE(with_new);
  ASSERT_EQ(with_new->cluster().shards_size(), 4);
  EXPECT_EQ(with_new->cluster().shards(2).name(), "s3");
  EXPECT_EQ(with_new->cluster().shards(2).key_range(), "none");
  EXPECT_EQ(with_new->cluster().shards(3).name(), "s2");

  // The failed-over primary taken out of the config: its shard's roles come
  // from the config again (one primary), the epoch stays.
  std::string without_a2 = edited;
  without_a2.erase(without_a2.find("          - {name: a2"),
                   without_a2.find("      - name: s1") - without_a2.find("          - {name: a2"));
  auto v4 = reconcile_with_config(**store, cluster_of(without_a2));
  ASSERT_TRUE(v4);
  const auto& s0_now = v4->cluster().shards(0);
  ASSERT_EQ(s0_now.backends_size(), 1);
  EXPECT_EQ(s0_now.backends(0).role(), config::Backend::PRIMARY);
  EXPECT_EQ(s0_now.epoch(), 1u);
}

TEST_F(TopologyStoreTest, OneProcessOwnsADataDir) {
  auto first = TopologyStore::open(dir_);
  ASSERT_TRUE(first);
  auto second = TopologyStore::open(dir_);
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().message().find("in use by another shardgate"), std::string::npos)
      << second.error().message();
}

TEST(ClusterDigest, ChangesWithTheClusterOnly) {
  const config::Cluster a = cluster_of(kYaml);
  config::Cluster b = a;
  EXPECT_EQ(cluster_digest(a), cluster_digest(b));
  b.mutable_shards(1)->mutable_backends(0)->set_port(6000);
  EXPECT_NE(cluster_digest(a), cluster_digest(b));
}

}  // namespace
}  // namespace shardgate
