// The cluster as the data path sees it: shards and their members. Built whole
// from the config (and later from the topology store), published as
// std::shared_ptr<const Topology>, never mutated after publication.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace shardgate::router {

enum class MemberRole { Primary, Replica };

struct BackendInfo {
  std::uint32_t index = 0;  // position in Topology::backends, stable for a version
  std::string name;
  std::string host;
  std::uint16_t port = 0;
  std::string unix_socket_dir;  // PostgreSQL: connect to the socket in this directory when set
  std::string unix_socket;      // MySQL: connect to this socket file when set
  MemberRole role = MemberRole::Replica;
  std::uint32_t shard = 0;
  std::string zone;
};

struct ShardInfo {
  std::string name;
  std::uint32_t primary = 0;               // index into backends
  std::vector<std::uint32_t> replicas;     // indexes into backends
};

struct Topology {
  std::uint64_t version = 1;
  std::string cluster;
  std::vector<BackendInfo> backends;
  std::vector<ShardInfo> shards;
};

}  // namespace shardgate::router
