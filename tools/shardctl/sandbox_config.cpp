#include "tools/shardctl/sandbox_config.h"

#include <sstream>

namespace shardgate::shardctl {
namespace {

// Plain YAML scalars for the usual paths and names; anything else (spaces,
// colons, a leading dash...) is double-quoted so the loader reads it back as the
// same string.
std::string yaml_scalar(const std::string& text) {
  bool plain = !text.empty() && text.front() != '-';
  for (char c : text) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '/' || c == '.' || c == '_' || c == '-';
    plain = plain && ok;
  }
  if (plain) return text;
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') quoted += '\\';
    quoted += c;
  }
  return quoted + "\"";
}

Result<void> check_port(const char* option, int port) {
  if (port < kMinPort || port > kMaxPort)
    return make_error(std::string(option) + " " + std::to_string(port) + " is outside " +
                      std::to_string(kMinPort) + ".." + std::to_string(kMaxPort) +
                      " (ports from 32768 up belong to the kernel's outgoing connections)");
  return {};
}

// What the configuration says differently per engine.
struct EngineConfig {
  const char* protocol;  // listener protocol and cluster engine
  const char* cluster;
  std::vector<const char*> users;  // password = name in the sandbox
  const char* monitor_user;
  const char* monitor_database;
  const char* replication_user;  // replicas follow a promoted primary as this user
  // PostgreSQL's socket is a directory plus a port-derived name
  // (unix_socket_dir); MariaDB's is a file path per member (unix_socket).
  bool unix_socket_dir;
};

EngineConfig engine_config(Engine engine) {
  if (engine == Engine::kMysql) return {"mysql", "my", {"app"}, "monitor", "app", "repl", false};
  return {"postgres", "pg", {"app", "postgres"}, "postgres", "postgres", "postgres", true};
}

void write_backend(std::ostringstream& out, const Member& m, const SandboxOptions& options,
                   bool unix_socket_dir) {
  out << "          - name: " << m.name << "\n"
      << "            host: 127.0.0.1\n"
      << "            port: " << m.port << "\n"
      << "            role: " << (m.primary() ? "primary" : "replica") << "\n";
  const auto run = options.dir / kSocketDirName;
  if (unix_socket_dir)
    out << "            unix_socket_dir: " << yaml_scalar(run.string()) << "\n";
  else
    out << "            unix_socket: " << yaml_scalar((run / (m.name + ".sock")).string()) << "\n";
}

}  // namespace

const char* engine_name(Engine engine) {
  return engine == Engine::kMysql ? "mysql" : "postgres";
}

SandboxOptions default_options(Engine engine) {
  SandboxOptions options;
  options.engine = engine;
  if (engine == Engine::kMysql) {
    options.base_port = 13306;
    options.proxy_port = 6033;
  }
  return options;
}

const char* member_prefix(Engine engine) {
  return engine == Engine::kMysql ? "my-" : "pg-";
}

std::optional<Engine> member_engine(const std::string& dir_name) {
  for (Engine engine : {Engine::kPostgres, Engine::kMysql}) {
    if (dir_name.starts_with(member_prefix(engine))) return engine;
  }
  return std::nullopt;
}

Result<void> validate(const SandboxOptions& options) {
  if (options.shards < 1 || options.shards > kMaxShards)
    return make_error("--shards must be 1.." + std::to_string(kMaxShards) + ", got " +
                      std::to_string(options.shards));
  if (options.spare_shards < 0 || options.spare_shards > kMaxSpareShards)
    return make_error("--spare-shards must be 0.." + std::to_string(kMaxSpareShards) + ", got " +
                      std::to_string(options.spare_shards));
  if (options.replicas < 0 || options.replicas > kMaxReplicas)
    return make_error("--replicas must be 0.." + std::to_string(kMaxReplicas) + ", got " +
                      std::to_string(options.replicas));
  const int count = (options.shards + options.spare_shards) * (options.replicas + 1);
  const int last = options.base_port + count - 1;
  if (auto r = check_port("--base-port", options.base_port); !r) return r;
  if (last > kMaxPort)
    return make_error("the sandbox needs ports " + std::to_string(options.base_port) + ".." +
                      std::to_string(last) + ", past " + std::to_string(kMaxPort) +
                      ": choose a lower --base-port");
  if (auto r = check_port("--proxy-port", options.proxy_port); !r) return r;
  if (auto r = check_port("--admin-port", options.admin_port); !r) return r;
  auto inside = [&](int port) { return port >= options.base_port && port <= last; };
  if (inside(options.proxy_port) || inside(options.admin_port) ||
      options.proxy_port == options.admin_port)
    return make_error("--proxy-port " + std::to_string(options.proxy_port) + " and --admin-port " +
                      std::to_string(options.admin_port) +
                      " must differ from each other and from the database ports " +
                      std::to_string(options.base_port) + ".." + std::to_string(last));
  return {};
}

std::vector<Member> sandbox_members(const SandboxOptions& options) {
  std::vector<Member> members;
  for (int s = 0; s < options.shards + options.spare_shards; ++s) {
    for (int m = 0; m <= options.replicas; ++m) {
      Member member;
      member.shard = s;
      member.index = m;
      member.name = std::string(member_prefix(options.engine)) + "s" + std::to_string(s) + "-" +
                    (m == 0 ? std::string("primary") : "replica" + std::to_string(m));
      member.port = options.base_port + s * (options.replicas + 1) + m;
      members.push_back(member);
    }
  }
  return members;
}

std::string render_config_yaml(const SandboxOptions& options, const std::vector<Member>& members) {
  const EngineConfig engine = engine_config(options.engine);
  std::ostringstream out;
  out << "# shardgate configuration for the sandbox in " << options.dir.string() << "\n"
      << "# (written by `shardctl sandbox up`; `shardctl sandbox down --dir DIR` stops it)\n"
      << "listeners:\n"
      << "  - protocol: " << engine.protocol << "\n"
      << "    address: 127.0.0.1\n"
      << "    port: " << options.proxy_port << "\n"
      << "admin:\n"
      << "  address: 127.0.0.1\n"
      << "  port: " << options.admin_port << "\n"
      << "data_dir: " << yaml_scalar((options.dir / kProxyDataDirName).string()) << "\n"
      << "users:\n";
  for (const char* user : engine.users)
    out << "  - name: " << user << "\n"
        << "    password: " << user << "\n";
  out << "clusters:\n"
      << "  - name: " << engine.cluster << "\n"
      << "    engine: " << engine.protocol << "\n"
      << "    monitor:\n"
      << "      user: " << engine.monitor_user << "\n"
      << "      password: " << engine.monitor_user << "\n"
      << "      database: " << engine.monitor_database << "\n"
      << "    failover:\n"
      << "      enabled: true\n"
      << "      replication_user: " << engine.replication_user << "\n"
      << "      replication_password: " << engine.replication_user << "\n"
      << "    shards:\n";
  for (int s = 0; s < options.shards + options.spare_shards; ++s) {
    out << "      - name: s" << s << "\n";
    if (s >= options.shards) out << "        key_range: none  # a spare: resharding target\n";
    out << "        backends:\n";
    for (const Member& m : members) {
      if (m.shard == s) write_backend(out, m, options, engine.unix_socket_dir);
    }
  }
  return out.str();
}

std::string connect_line(const SandboxOptions& options) {
  const std::string port = std::to_string(options.proxy_port);
  if (options.engine == Engine::kMysql)
    return "connect: mariadb -h 127.0.0.1 -P " + port + " -u app -papp app";
  return "connect: psql \"host=127.0.0.1 port=" + port + " user=app password=app dbname=app\"";
}

}  // namespace shardgate::shardctl
