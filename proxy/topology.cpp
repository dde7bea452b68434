#include "proxy/topology.h"

#include <algorithm>
#include <chrono>
#include <set>

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
  std::uint32_t owners = 0;
  for (const auto& shard : cluster.shards()) owners += shard.key_range() != router::kSpareKeyRange;
  const auto even = router::even_key_ranges(owners);
  std::uint32_t next_even = 0;
  for (std::size_t s = 0; s < t.shards.size(); ++s) {
    const std::string& text = cluster.shards(static_cast<int>(s)).key_range();
    if (text == router::kSpareKeyRange) {
      t.shards[s].spare = true;
      t.shards[s].key_range = router::KeyRange{0, 0, false};
    } else {
      if (text.empty()) {
        t.shards[s].key_range = even[next_even];
      } else {
        auto ranges = *router::parse_key_ranges(text);  // validated
        t.shards[s].key_range = ranges.front();
        t.shards[s].more_ranges.assign(ranges.begin() + 1, ranges.end());
      }
      ++next_even;
    }
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
    st.spread_hot_reads = table.spread_hot_reads();
    st.cache_ttl_ms = table.cache_ttl_ms();
    st.hot_key_cache_ttl_ms = table.hot_key_cache_ttl_ms();
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
    info.epoch = shard.epoch();
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
      bi.priority = b.priority();
      bi.fenced = b.fenced();
      if (bi.role == router::MemberRole::Primary)
        info.primary = bi.index;
      else if (!bi.fenced)  // a fenced old primary serves nothing, not even reads
        info.replicas.push_back(bi.index);
      t.backends.push_back(std::move(bi));
    }
    t.shards.push_back(std::move(info));
  }
  add_sharding(cluster, t);
  return t;
}

router::Topology topology_from_record(const config::TopologyRecord& record) {
  router::Topology t = topology_from_config(record.cluster());
  t.version = record.version();
  t.reason = record.reason();
  t.updated_unix_ms = record.updated_unix_ms();
  return t;
}

namespace {

config::TopologyRecord next_version(const config::TopologyRecord& current,
                                    const std::string& reason) {
  config::TopologyRecord next = current;
  next.set_version(current.version() + 1);
  next.set_reason(reason);
  next.set_updated_unix_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count());
  return next;
}

}  // namespace

config::TopologyRecord promoted_record(const config::TopologyRecord& current, int shard,
                                       const std::string& new_primary, const std::string& reason) {
  config::TopologyRecord next = next_version(current, reason);
  config::Shard& s = *next.mutable_cluster()->mutable_shards(shard);
  s.set_epoch(s.epoch() + 1);
  for (auto& b : *s.mutable_backends()) {
    if (b.name() == new_primary) {
      b.set_role(config::Backend::PRIMARY);
      b.set_fenced(false);
    } else if (b.role() == config::Backend::PRIMARY) {
      b.set_role(config::Backend::REPLICA);
      b.set_fenced(true);
    }
  }
  return next;
}

config::TopologyRecord rejoined_record(const config::TopologyRecord& current,
                                       const std::string& name, const std::string& reason) {
  config::TopologyRecord next = next_version(current, reason);
  for (auto& s : *next.mutable_cluster()->mutable_shards())
    for (auto& b : *s.mutable_backends())
      if (b.name() == name) b.set_fenced(false);
  return next;
}

config::TopologyRecord resharded_record(const config::TopologyRecord& current,
                                        const std::string& source, const std::string& source_range,
                                        const std::string& target, const std::string& target_range,
                                        const std::string& reason) {
  const router::Topology t = topology_from_record(current);
  config::TopologyRecord next = next_version(current, reason);
  for (int s = 0; s < next.cluster().shards_size(); ++s) {
    config::Shard* shard = next.mutable_cluster()->mutable_shards(s);
    if (shard->name() == source)
      shard->set_key_range(source_range);
    else if (shard->name() == target)
      shard->set_key_range(target_range);
    else
      shard->set_key_range(router::format_shard_ranges(t.shards[s]));
  }
  return next;
}

Result<config::TopologyRecord> with_spare_shard(const config::TopologyRecord& current,
                                                const config::Shard& shard,
                                                const std::string& reason) {
  if (shard.name().empty()) return make_error("the new shard needs a name");
  std::set<std::string> names;
  for (const auto& s : current.cluster().shards()) {
    if (s.name() == shard.name()) return make_error("shard " + shard.name() + " exists already");
    for (const auto& b : s.backends()) names.insert(b.name());
  }
  int primaries = 0;
  for (const auto& b : shard.backends()) {
    if (b.name().empty()) return make_error("every backend of the new shard needs a name");
    if (!names.insert(b.name()).second) return make_error("backend name " + b.name() + " is taken");
    if (b.port() == 0 || b.port() > 65535)
      return make_error("backend " + b.name() + " needs a port (1..65535)");
    if (b.role() == config::Backend::ROLE_UNSET)
      return make_error("backend " + b.name() + " needs a role: primary or replica");
    primaries += b.role() == config::Backend::PRIMARY;
  }
  if (primaries != 1)
    return make_error("the new shard needs exactly one primary backend, not " +
                      std::to_string(primaries));
  config::TopologyRecord next = next_version(current, reason);
  config::Shard* added = next.mutable_cluster()->add_shards();
  *added = shard;
  added->set_key_range(std::string(router::kSpareKeyRange));
  added->set_epoch(0);
  return next;
}

}  // namespace shardgate
