// The sandbox's shape, independent of any running server: options, the port and
// directory of every member, and the shardgate.yaml that describes it. Pure
// functions, so the layout can be tested without starting a database.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace shardgate::shardctl {

enum class Engine { kPostgres, kMysql };

// "postgres" or "mysql", as --engine spells it.
const char* engine_name(Engine engine);

struct SandboxOptions {
  Engine engine = Engine::kPostgres;
  int shards = 1;
  // More shards with key_range: none: resharding targets that own no keys
  // until a cutover gives them some (numbered after the others).
  int spare_shards = 0;
  int replicas = 2;
  int base_port = 15432;
  std::filesystem::path dir = "./sandbox";  // made absolute before use
  int proxy_port = 6432;
  int admin_port = 9930;
};

// The defaults for an engine: the proxy listens where clients of that engine
// expect a proxy (6432 as PgBouncer, 6033 as ProxySQL), and the servers sit on
// ports that recall the engine's own (15432..., 13306...).
SandboxOptions default_options(Engine engine);

struct DownOptions {
  std::filesystem::path dir = "./sandbox";
  bool destroy = false;
};

// One database server of the sandbox.
struct Member {
  int shard = 0;
  int index = 0;     // 0 = primary, 1..R = replicas
  std::string name;  // <prefix>s<shard>-primary, <prefix>s<shard>-replica<index>
  int port = 0;
  bool primary() const { return index == 0; }
};

inline constexpr int kMaxShards = 4;
inline constexpr int kMaxSpareShards = 2;
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

// Members' directories start with their engine's prefix ("pg-", "my-"), so that
// `sandbox down` can tell from DIR alone which servers it has to stop.
const char* member_prefix(Engine engine);
// The engine whose member directory has this name; empty for anything else.
std::optional<Engine> member_engine(const std::string& dir_name);

// The proxy configuration for the sandbox (proxy/config/config.proto as YAML).
std::string render_config_yaml(const SandboxOptions& options, const std::vector<Member>& members);

// The one line that tells a user how to reach the sandbox through the proxy.
std::string connect_line(const SandboxOptions& options);

}  // namespace shardgate::shardctl
