#include "proxy/admin/add_shard.h"

#include <boost/json.hpp>

#include "proxy/failover_controller.h"
#include "proxy/proxy_context.h"
#include "proxy/topology.h"
#include "replication/monitor.h"

namespace shardgate {

namespace json = boost::json;

namespace {

Result<config::Shard> shard_from_json(std::string_view body) {
  boost::system::error_code ec;
  json::value doc = json::parse(body, ec);
  if (ec || !doc.is_object())
    return make_error("the body must be a JSON object: {\"name\": ..., \"backends\": [...]}");
  const json::object& o = doc.as_object();
  config::Shard shard;
  auto text = [](const json::object& from, const char* key) -> std::string {
    const json::value* v = from.if_contains(key);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
  };
  auto number = [](const json::object& from, const char* key) -> std::int64_t {
    const json::value* v = from.if_contains(key);
    return v && v->is_int64() ? v->as_int64() : 0;
  };
  shard.set_name(text(o, "name"));
  const json::value* backends = o.if_contains("backends");
  if (!backends || !backends->is_array() || backends->as_array().empty())
    return make_error("the new shard needs \"backends\": a primary and any replicas");
  for (const json::value& v : backends->as_array()) {
    if (!v.is_object()) return make_error("each backend is a JSON object");
    const json::object& b = v.as_object();
    config::Backend* backend = shard.add_backends();
    backend->set_name(text(b, "name"));
    backend->set_host(text(b, "host").empty() ? "127.0.0.1" : text(b, "host"));
    const std::int64_t port = number(b, "port");
    backend->set_port(port > 0 && port <= 65535 ? static_cast<std::uint32_t>(port) : 0);
    const std::string role = text(b, "role");
    if (role == "primary")
      backend->set_role(config::Backend::PRIMARY);
    else if (role == "replica")
      backend->set_role(config::Backend::REPLICA);
    else
      return make_error("backend " + backend->name() + ": role must be primary or replica");
    backend->set_unix_socket_dir(text(b, "unix_socket_dir"));
    backend->set_unix_socket(text(b, "unix_socket"));
    backend->set_zone(text(b, "zone"));
    backend->set_priority(static_cast<std::uint32_t>(number(b, "priority")));
  }
  return shard;
}

}  // namespace

Result<std::string> add_spare_shard(ProxyContext& ctx, FailoverController& failover,
                                    replication::Monitor& monitor, std::string_view body) {
  auto shard = shard_from_json(body);
  if (!shard) return shard.error();
  const std::size_t backends_before = ctx.topology->backends.size();
  if (ctx.topology->shards.size() + 1 > ctx.shard_capacity ||
      backends_before + shard->backends_size() > ctx.backend_capacity)
    return make_error(
        "no room for more shards in this process (it keeps room for a few dozen "
        "backends added while running): add the shard to the config file and "
        "restart the proxy");
  const std::string reason = "spare shard " + shard->name() + " added";
  auto version = failover.change_topology([&](const config::TopologyRecord& current) {
    return with_spare_shard(current, *shard, reason);
  });
  if (!version) return version.error();
  const router::Topology& t = *ctx.topology;
  std::vector<replication::ProbeTarget> targets;
  for (std::size_t i = backends_before; i < t.backends.size(); ++i) {
    const router::BackendInfo& b = t.backends[i];
    targets.push_back({b.name, b.host, b.port, b.unix_socket_dir, b.shard,
                       b.role == router::MemberRole::Primary});
  }
  if (!monitor.add_targets(std::move(targets)))
    return make_error("topology v" + std::to_string(*version) + " has shard " + shard->name() +
                      ", but the monitor has no room to probe its backends: restart the proxy");
  return "shard " + shard->name() + " added as a spare (key_range: none) in topology v" +
         std::to_string(*version) + "; write it into the config file too";
}

}  // namespace shardgate
