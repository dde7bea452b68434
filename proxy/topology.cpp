#include "proxy/topology.h"

#include <algorithm>

#include "router/shard_map.h"

namespace shardgate {

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::uint32_t shard_index(const router::Topology& t, const std::string& name) {
  for (std::uint32_t s = 0; s < t.shards.size(); ++s)
    if (t.shards[s].name == name) return s;
  return 0;  // validated: names exist
}

// Key ranges, sharded and reference tables; the config was validated.
void add_sharding(const config::Cluster& cluster, router::Topology& t) {
  const auto even = router::even_key_ranges(static_cast<std::uint32_t>(t.shards.size()));
  for (std::size_t s = 0; s < t.shards.size(); ++s) {
    const std::string& text = cluster.shards(static_cast<int>(s)).key_range();
    t.shards[s].key_range = text.empty() ? even[s] : *router::parse_key_range(text);
  }
  const config::Sharding& sh = cluster.sharding();
  t.sharding.default_shard = sh.default_shard().empty() ? 0 : shard_index(t, sh.default_shard());
  t.sharding.allow_scatter_writes = sh.allow_scatter_writes();
  for (const auto& name : sh.reference_tables()) t.sharding.reference_tables.push_back(lower(name));
  for (const auto& table : sh.tables()) {
    router::ShardedTable st;
    st.name = lower(table.name());
    st.column = lower(table.column());
    st.strategy = table.strategy() == config::ShardedTable::RANGE ? router::ShardStrategy::Range
                                                                  : router::ShardStrategy::Hash;
    st.key_type = table.key_type() == config::ShardedTable::TEXT ? router::KeyType::Text
                                                                 : router::KeyType::Integer;
    for (const auto& rule : table.ranges()) {
      router::RangeRule r;
      r.has_from = !rule.from().empty();
      r.from = r.has_from ? *router::parse_int64(rule.from()) : 0;
      r.has_to = !rule.to().empty();
      r.to = r.has_to ? *router::parse_int64(rule.to()) : 0;
      r.shard = shard_index(t, rule.shard());
      st.ranges.push_back(r);
    }
    std::sort(st.ranges.begin(), st.ranges.end(), [](const auto& a, const auto& b) {
      return (a.has_from ? a.from : INT64_MIN) < (b.has_from ? b.from : INT64_MIN);
    });
    t.sharding.tables.push_back(std::move(st));
  }
}

}  // namespace

router::Topology topology_from_config(const config::Cluster& cluster) {
  router::Topology t;
  t.cluster = cluster.name();
  for (int s = 0; s < cluster.shards_size(); ++s) {
    const auto& shard = cluster.shards(s);
    router::ShardInfo info;
    info.name = shard.name();
    for (const auto& b : shard.backends()) {
      router::BackendInfo bi;
      bi.index = static_cast<std::uint32_t>(t.backends.size());
      bi.name = b.name();
      bi.host = b.host().empty() ? "127.0.0.1" : b.host();
      bi.port = static_cast<std::uint16_t>(b.port());
      bi.unix_socket_dir = b.unix_socket_dir();
      bi.unix_socket = b.unix_socket();
      bi.role = b.role() == config::Backend::PRIMARY ? router::MemberRole::Primary
                                                     : router::MemberRole::Replica;
      bi.shard = static_cast<std::uint32_t>(s);
      bi.zone = b.zone();
      if (bi.role == router::MemberRole::Primary)
        info.primary = bi.index;
      else
        info.replicas.push_back(bi.index);
      t.backends.push_back(std::move(bi));
    }
    t.shards.push_back(std::move(info));
  }
  add_sharding(cluster, t);
  return t;
}

}  // namespace shardgate
