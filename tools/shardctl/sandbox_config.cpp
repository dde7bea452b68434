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

void write_backend(std::ostringstream& out, const Member& m, const std::string& socket_dir) {
  out << "          - name: " << m.name << "\n"
      << "            host: 127.0.0.1\n"
      << "            port: " << m.port << "\n"
      << "            role: " << (m.primary() ? "primary" : "replica") << "\n"
      << "            unix_socket_dir: " << socket_dir << "\n";
}

}  // namespace

Result<void> validate(const SandboxOptions& options) {
  if (options.shards < 1 || options.shards > kMaxShards)
    return make_error("--shards must be 1.." + std::to_string(kMaxShards) + ", got " +
                      std::to_string(options.shards));
  if (options.replicas < 0 || options.replicas > kMaxReplicas)
    return make_error("--replicas must be 0.." + std::to_string(kMaxReplicas) + ", got " +
                      std::to_string(options.replicas));
  const int count = options.shards * (options.replicas + 1);
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
  for (int s = 0; s < options.shards; ++s) {
    for (int m = 0; m <= options.replicas; ++m) {
      Member member;
      member.shard = s;
      member.index = m;
      member.name = std::string(kMemberPrefix) + "s" + std::to_string(s) + "-" +
                    (m == 0 ? std::string("primary") : "replica" + std::to_string(m));
      member.port = options.base_port + s * (options.replicas + 1) + m;
      members.push_back(member);
    }
  }
  return members;
}

std::string render_config_yaml(const SandboxOptions& options, const std::vector<Member>& members) {
  const std::string dir = options.dir.string();
  const std::string socket_dir = yaml_scalar((options.dir / kSocketDirName).string());
  std::ostringstream out;
  out << "# shardgate configuration for the sandbox in " << dir << "\n"
      << "# (written by `shardctl sandbox up`; `shardctl sandbox down --dir DIR` stops it)\n"
      << "listeners:\n"
      << "  - protocol: postgres\n"
      << "    address: 127.0.0.1\n"
      << "    port: " << options.proxy_port << "\n"
      << "admin:\n"
      << "  address: 127.0.0.1\n"
      << "  port: " << options.admin_port << "\n"
      << "data_dir: " << yaml_scalar((options.dir / kProxyDataDirName).string()) << "\n"
      << "users:\n"
      << "  - name: app\n"
      << "    password: app\n"
      << "  - name: postgres\n"
      << "    password: postgres\n"
      << "clusters:\n"
      << "  - name: pg\n"
      << "    engine: postgres\n"
      << "    monitor:\n"
      << "      user: postgres\n"
      << "      password: postgres\n"
      << "      database: postgres\n"
      << "    shards:\n";
  for (int s = 0; s < options.shards; ++s) {
    out << "      - name: s" << s << "\n"
        << "        backends:\n";
    for (const Member& m : members) {
      if (m.shard == s) write_backend(out, m, socket_dir);
    }
  }
  return out.str();
}

std::string connect_line(const SandboxOptions& options) {
  return "connect: psql \"host=127.0.0.1 port=" + std::to_string(options.proxy_port) +
         " user=app password=app dbname=app\"";
}

}  // namespace shardgate::shardctl
