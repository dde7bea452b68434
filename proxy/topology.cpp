#include "proxy/topology.h"

namespace shardgate {

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
  return t;
}

}  // namespace shardgate
