#include "proxy/config/load_config.h"

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "proxy/config/yaml_loader.h"
#include "router/shard_map.h"

namespace shardgate::config {
namespace {

Error at(const std::string& path, const std::string& problem) {
  return make_error("config key '" + path + "': " + problem);
}

void apply_defaults(Config& c) {
  for (auto& l : *c.mutable_listeners()) {
    if (l.address().empty()) l.set_address("127.0.0.1");
    if (l.cluster().empty() && c.clusters_size() == 1) l.set_cluster(c.clusters(0).name());
  }
  if (c.admin().address().empty()) c.mutable_admin()->set_address("127.0.0.1");
  for (auto& u : *c.mutable_users()) {
    if (u.auth() == User::AUTH_UNSET) u.set_auth(User::SCRAM_SHA_256);
    if (u.server_user().empty()) u.set_server_user(u.name());
    if (u.server_password().empty()) u.set_server_password(u.password());
    if (u.pool_mode() == PoolMode::POOL_MODE_UNSET) u.set_pool_mode(PoolMode::TRANSACTION);
    if (u.read_your_writes() == ReadYourWrites::RYW_UNSET)
      u.set_read_your_writes(ReadYourWrites::SESSION);
  }
  for (auto& cl : *c.mutable_clusters()) {
    auto& m = *cl.mutable_monitor();
    if (m.database().empty()) m.set_database("postgres");
    if (m.user().empty()) m.set_user("postgres");
    if (m.interval_ms() == 0) m.set_interval_ms(250);
    if (m.failures_before_down() == 0) m.set_failures_before_down(3);
    if (m.connect_timeout_ms() == 0) m.set_connect_timeout_ms(1000);
    auto& f = *cl.mutable_failover();
    if (f.replication_user().empty()) {
      f.set_replication_user(m.user());
      if (f.replication_password().empty()) f.set_replication_password(m.password());
    }
    if (f.write_wait_ms() == 0) f.set_write_wait_ms(5000);
    if (f.promote_timeout_ms() == 0) f.set_promote_timeout_ms(10000);
    auto& hk = *cl.mutable_sharding()->mutable_hot_keys();
    if (hk.window_ms() == 0) hk.set_window_ms(1000);
    if (hk.capacity() == 0) hk.set_capacity(256);
    if (hk.hot_share() == 0) hk.set_hot_share(0.05);
    if (hk.min_rate() == 0) hk.set_min_rate(50);
  }
  auto& p = *c.mutable_pool();
  if (p.size() == 0) p.set_size(20);
  if (p.acquire_timeout_ms() == 0) p.set_acquire_timeout_ms(5000);
  if (p.connect_timeout_ms() == 0) p.set_connect_timeout_ms(3000);
  if (p.idle_timeout_ms() == 0) p.set_idle_timeout_ms(60000);
  if (p.max_prepared_statements() == 0) p.set_max_prepared_statements(64);
  auto& r = *c.mutable_routing();
  if (r.balance() == Routing::BALANCE_UNSET) r.set_balance(Routing::LEAST_OUTSTANDING);
  if (r.max_replica_lag_transactions() == 0) r.set_max_replica_lag_transactions(1000);
  if (r.replica_wait_ms() == 0) r.set_replica_wait_ms(50);
  if (r.max_replica_lag_bytes() == 0) r.set_max_replica_lag_bytes(16ull << 20);
  auto& rc = *c.mutable_result_cache();
  if (rc.max_bytes() == 0) rc.set_max_bytes(64ull << 20);
  if (rc.max_entry_bytes() == 0) rc.set_max_entry_bytes(1u << 20);
  if (rc.default_ttl_ms() == 0) rc.set_default_ttl_ms(1000);
  auto& lim = *c.mutable_limits();
  if (lim.max_client_connections() == 0) lim.set_max_client_connections(10000);
  if (lim.max_message_size() == 0) lim.set_max_message_size(64u << 20);
  if (lim.client_login_timeout_ms() == 0) lim.set_client_login_timeout_ms(15000);
}

Result<void> validate_backend(const Backend& b, const std::string& path) {
  if (b.name().empty()) return at(path + ".name", "every backend needs a name");
  if (b.host().empty() && b.unix_socket_dir().empty())
    return at(path + ".host", "set host (and port) or unix_socket_dir");
  if (b.port() == 0 || b.port() > 65535) return at(path + ".port", "must be 1..65535");
  if (b.role() == Backend::ROLE_UNSET) return at(path + ".role", "set primary or replica");
  return {};
}

// Shards with key_range: none are spares; the others own the keyspace,
// either all with explicit ranges or all with equal slices.
Result<void> validate_key_ranges(const Cluster& cl, const std::string& path) {
  int set = 0, spares = 0;
  for (const auto& shard : cl.shards()) {
    spares += shard.key_range() == router::kSpareKeyRange;
    set += !shard.key_range().empty() && shard.key_range() != router::kSpareKeyRange;
  }
  if (spares == cl.shards_size())
    return at(path + ".shards", "every shard is a spare (key_range: none): one must own keys");
  if (set == 0) return {};
  std::vector<router::KeyRange> ranges;
  for (int s = 0; s < cl.shards_size(); ++s) {
    const std::string kp = path + ".shards[" + std::to_string(s) + "].key_range";
    if (cl.shards(s).key_range() == router::kSpareKeyRange) continue;
    if (cl.shards(s).key_range().empty())
      return at(kp, "set key_range on every shard, or on none (equal slices)");
    auto r = router::parse_key_ranges(cl.shards(s).key_range());
    if (!r) return at(kp, r.error().message());
    ranges.insert(ranges.end(), r->begin(), r->end());
  }
  std::sort(ranges.begin(), ranges.end(),
            [](const router::KeyRange& a, const router::KeyRange& b) { return a.start < b.start; });
  auto tiled = router::check_key_ranges_tile(ranges);
  if (!tiled)
    return at(path + ".shards",
              "the shards' key ranges must cover the keyspace once: " + tiled.error().message());
  return {};
}

Result<void> validate_sharding(const Cluster& cl, const std::string& path) {
  if (auto r = validate_key_ranges(cl, path); !r) return r;
  const Sharding& sh = cl.sharding();
  const std::string sp = path + ".sharding";
  std::set<std::string> shard_names, spare_names;
  for (const auto& shard : cl.shards()) {
    shard_names.insert(shard.name());
    if (shard.key_range() == router::kSpareKeyRange) spare_names.insert(shard.name());
  }
  if (!sh.default_shard().empty() && !shard_names.count(sh.default_shard()))
    return at(sp + ".default_shard", "names no shard ('" + sh.default_shard() + "')");
  if (spare_names.count(sh.default_shard().empty() ? cl.shards(0).name() : sh.default_shard()))
    return at(sp + ".default_shard",
              "the default shard holds unsharded tables and cannot be a spare (key_range: none)");
  std::set<std::string> tables;
  for (int i = 0; i < sh.tables_size(); ++i) {
    const ShardedTable& t = sh.tables(i);
    const std::string tp = sp + ".tables[" + std::to_string(i) + "]";
    if (t.name().empty()) return at(tp + ".name", "every sharded table needs a name");
    if (t.column().empty())
      return at(tp + ".column", "name the sharding key column of " + t.name());
    if (!tables.insert(t.name()).second)
      return at(tp + ".name", "'" + t.name() + "' is listed twice");
    const bool range = t.strategy() == ShardedTable::RANGE;
    if (!range && t.ranges_size() > 0)
      return at(tp + ".ranges",
                "only strategy: range takes ranges (hash uses the shards' key_range)");
    if (!range) continue;
    if (t.key_type() == ShardedTable::TEXT)
      return at(tp + ".key_type", "range sharding needs an integer key");
    if (t.ranges_size() == 0) return at(tp + ".ranges", "strategy: range needs ranges");
    for (int r = 0; r < t.ranges_size(); ++r) {
      const KeyRangeRule& rule = t.ranges(r);
      const std::string rp = tp + ".ranges[" + std::to_string(r) + "]";
      if (!shard_names.count(rule.shard()))
        return at(rp + ".shard", "names no shard ('" + rule.shard() + "')");
      if (spare_names.count(rule.shard()))
        return at(rp + ".shard", "names spare shard " + rule.shard() + " (key_range: none)");
      if (!rule.from().empty() && !router::parse_int64(rule.from()))
        return at(rp + ".from", "must be an integer");
      if (!rule.to().empty() && !router::parse_int64(rule.to()))
        return at(rp + ".to", "must be an integer");
      if (!rule.from().empty() && !rule.to().empty() &&
          *router::parse_int64(rule.to()) <= *router::parse_int64(rule.from()))
        return at(rp + ".to", "must be greater than from");
    }
  }
  const HotKeys& hk = sh.hot_keys();
  if (hk.capacity() < 16 || hk.capacity() > 65536)
    return at(sp + ".hot_keys.capacity", "must be 16..65536 (keys tracked per shard and thread)");
  if (!(hk.hot_share() > 0 && hk.hot_share() <= 1))
    return at(sp + ".hot_keys.hot_share", "must be a fraction of the statements: 0 < x <= 1");
  if (hk.hot_rate() < 0) return at(sp + ".hot_keys.hot_rate", "must not be negative");
  if (hk.min_rate() < 0) return at(sp + ".hot_keys.min_rate", "must not be negative");
  if (hk.window_ms() < 100 || hk.window_ms() > 600000)
    return at(sp + ".hot_keys.window_ms", "must be 100..600000");
  for (int i = 0; i < sh.reference_tables_size(); ++i) {
    if (!tables.insert(sh.reference_tables(i)).second)
      return at(sp + ".reference_tables[" + std::to_string(i) + "]",
                "'" + sh.reference_tables(i) + "' is listed twice or also sharded");
  }
  return {};
}

Result<void> validate_cluster(const Cluster& cl, const std::string& path,
                              std::set<std::string>& backend_names) {
  if (cl.name().empty()) return at(path + ".name", "every cluster needs a name");
  if (cl.engine() == Cluster::ENGINE_UNSET) return at(path + ".engine", "set postgres or mysql");
  if (cl.shards_size() == 0) return at(path + ".shards", "at least one shard is required");
  for (int s = 0; s < cl.shards_size(); ++s) {
    const auto& shard = cl.shards(s);
    const std::string sp = path + ".shards[" + std::to_string(s) + "]";
    int primaries = 0;
    for (int b = 0; b < shard.backends_size(); ++b) {
      const std::string bp = sp + ".backends[" + std::to_string(b) + "]";
      auto ok = validate_backend(shard.backends(b), bp);
      if (!ok) return ok;
      if (!backend_names.insert(shard.backends(b).name()).second)
        return at(bp + ".name", "'" + shard.backends(b).name() + "' is used twice");
      primaries += shard.backends(b).role() == Backend::PRIMARY;
    }
    if (primaries != 1)
      return at(sp + ".backends", "exactly one backend must have role: primary (found " +
                                      std::to_string(primaries) + ")");
  }
  return validate_sharding(cl, path);
}

Result<void> validate(const Config& c) {
  if (c.listeners_size() == 0) return at("listeners", "at least one listener is required");
  std::set<std::string> cluster_names;
  std::set<std::string> backend_names;
  for (int i = 0; i < c.clusters_size(); ++i) {
    auto ok = validate_cluster(c.clusters(i), "clusters[" + std::to_string(i) + "]", backend_names);
    if (!ok) return ok;
    if (!cluster_names.insert(c.clusters(i).name()).second)
      return at("clusters[" + std::to_string(i) + "].name", "cluster names must be unique");
  }
  if (c.clusters_size() == 0) return at("clusters", "at least one cluster is required");
  for (int i = 0; i < c.listeners_size(); ++i) {
    const auto& l = c.listeners(i);
    const std::string lp = "listeners[" + std::to_string(i) + "]";
    if (l.protocol() == Listener::PROTOCOL_UNSET)
      return at(lp + ".protocol", "set postgres or mysql");
    if (l.port() == 0 || l.port() > 65535) return at(lp + ".port", "must be 1..65535");
    if (!cluster_names.count(l.cluster()))
      return at(lp + ".cluster", "names no cluster ('" + l.cluster() + "')");
    if (l.tls_cert_file().empty() != l.tls_key_file().empty())
      return at(lp + ".tls_key_file", "set both tls_cert_file and tls_key_file, or neither");
    if (l.tls_required() && l.tls_cert_file().empty())
      return at(lp + ".tls_required", "needs tls_cert_file and tls_key_file");
  }
  if (c.users_size() == 0) return at("users", "at least one user is required");
  std::set<std::string> user_names;
  for (int i = 0; i < c.users_size(); ++i) {
    const auto& u = c.users(i);
    const std::string up = "users[" + std::to_string(i) + "]";
    if (u.name().empty()) return at(up + ".name", "every user needs a name");
    if (!user_names.insert(u.name()).second) return at(up + ".name", "user names must be unique");
    if (u.password().empty() && u.auth() != User::TRUST)
      return at(up + ".password", "required unless auth: trust");
  }
  if (c.admin().port() > 65535) return at("admin.port", "must be 0..65535");
  return {};
}

}  // namespace

Result<Config> parse_config(const std::string& yaml_text) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return make_error("config is not valid YAML: " + std::string(e.what()));
  }
  Config c;
  auto ok = yaml_to_message(root, c, "");
  if (!ok) return ok.error();
  apply_defaults(c);
  auto valid = validate(c);
  if (!valid) return valid.error();
  return c;
}

Result<Config> load_config_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return make_error("cannot read config file '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config(ss.str());
}

}  // namespace shardgate::config
