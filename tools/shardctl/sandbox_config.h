// The sandbox's shape, independent of any running server: options, the port and
// directory of every member, and the shardgate.yaml that describes it. Pure
// functions, so the layout can be tested without starting a database.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "common/result.h"

namespace shardgate::shardctl {

enum class Engine { kPostgres, kMysql };

struct SandboxOptions {
  Engine engine = Engine::kPostgres;
  int shards = 1;
  int replicas = 2;
  int base_port = 15432;
  std::filesystem::path dir = "./sandbox";  // made absolute before use
  int proxy_port = 6432;
  int admin_port = 9930;
};

struct DownOptions {
  std::filesystem::path dir = "./sandbox";
  bool destroy = false;
};

// One database server of the sandbox.
struct Member {
  int shard = 0;
  int index = 0;     // 0 = primary, 1..R = replicas
  std::string name;  // pg-s<shard>-primary, pg-s<shard>-replica<index>
  int port = 0;
  bool primary() const { return index == 0; }
};

inline constexpr int kMaxShards = 4;
inline constexpr int kMaxReplicas = 4;
// Ports from 32768 up are the kernel's ephemeral range, where a bind can collide
// with an outgoing connection.
inline constexpr int kMinPort = 1024;
inline constexpr int kMaxPort = 32767;

// Checks counts and ports; the message says which option to change.
Result<void> validate(const SandboxOptions& options);

// Members in start order: per shard, the primary first, then its replicas.
std::vector<Member> sandbox_members(const SandboxOptions& options);

// Directory names inside the sandbox directory.
inline constexpr const char* kSocketDirName = "run";
inline constexpr const char* kLogDirName = "logs";
inline constexpr const char* kProxyDataDirName = "proxy-data";
inline constexpr const char* kConfigFileName = "shardgate.yaml";
inline constexpr const char* kMemberPrefix = "pg-";

// The proxy configuration for the sandbox (proxy/config/config.proto as YAML).
std::string render_config_yaml(const SandboxOptions& options, const std::vector<Member>& members);

// The one line that tells a user how to reach the sandbox through the proxy.
std::string connect_line(const SandboxOptions& options);

}  // namespace shardgate::shardctl
