#include "proxy/admin/admin_server.h"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <functional>
#include <future>

#include "proxy/admin/add_shard.h"
#include "proxy/admin/hot_keys_view.h"
#include "replication/pg_monitor.h"
#include "router/shard_map.h"
// Boost.JSON header-only: its definitions are compiled in this one file.
#include <boost/json/src.hpp>

namespace shardgate::admin {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;

namespace {

struct PoolStats {
  std::size_t total = 0, idle = 0, waiting = 0;
};

const char* role_name(router::MemberRole r) {
  return r == router::MemberRole::Primary ? "primary" : "replica";
}

const char* observed_name(replication::ObservedRole r) {
  switch (r) {
    case replication::ObservedRole::Primary:
      return "primary";
    case replication::ObservedRole::Replica:
      return "replica";
    default:
      return "unknown";
  }
}

// Collects pool figures per backend by running on each worker's own thread.
asio::awaitable<std::vector<PoolStats>> collect_pools(ProxyContext& ctx) {
  std::vector<PoolStats> stats(ctx.topology->backends.size());
  auto home = co_await asio::this_coro::executor;
  for (auto& w : ctx.workers) {
    co_await asio::post(asio::bind_executor(w->io().get_executor(), asio::use_awaitable));
    for (const auto* pool : w->pools()) {
      auto& s = stats[pool->backend().index];
      s.total += pool->total();
      s.idle += pool->idle();
      s.waiting += pool->waiting();
    }
  }
  co_await asio::post(asio::bind_executor(home, asio::use_awaitable));
  co_return stats;
}

// What the result cache holds and what it dropped; its hits and misses are
// counted per worker (shardgate_result_cache_hits_total ...).
std::string result_cache_metrics(const cache::CacheStats& s) {
  std::string out;
  auto one = [&](const char* name, const char* type, const char* help, std::uint64_t v) {
    out += std::string("# HELP shardgate_") + name + " " + help + "\n# TYPE shardgate_" + name +
           " " + type + "\nshardgate_" + name + " " + std::to_string(v) + "\n";
  };
  one("result_cache_entries", "gauge", "Answers held by the result cache", s.entries);
  one("result_cache_bytes", "gauge", "Bytes held by the result cache (keys and answers)", s.bytes);
  one("result_cache_evictions_total", "counter",
      "Entries dropped to stay within result_cache.max_bytes (least recently used)", s.evictions);
  one("result_cache_expired_total", "counter", "Entries found past their time to live", s.expired);
  one("result_cache_stale_total", "counter", "Entries found invalidated by a write", s.stale);
  one("result_cache_invalidations_total", "counter",
      "Writes (and transaction ends after writes) that invalidated tables", s.invalidations);
  one("result_cache_refused_total", "counter",
      "Answers not kept: a write ran meanwhile, or too large", s.refused);
  return out;
}

}  // namespace

AdminServer::AdminServer(ProxyContext& ctx, replication::Monitor& monitor,
                         FailoverController& failover, const HotKeyWatch& hot_keys,
                         ReshardController& reshard)
    : ctx_(ctx), monitor_(monitor), failover_(failover), hot_keys_(hot_keys), reshard_(reshard) {}

AdminServer::~AdminServer() {
  io_.stop();
  if (thread_.joinable()) thread_.join();
}

Result<void> AdminServer::start(const std::string& address, std::uint16_t port) {
  boost::system::error_code ec;
  auto ip = asio::ip::make_address(address, ec);
  if (ec) return make_error("admin.address '" + address + "' is not an IP address");
  tcp::acceptor acceptor(io_);
  const tcp::endpoint ep(ip, port);
  acceptor.open(ep.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(ep, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return make_error("cannot listen for admin on " + address + ":" + std::to_string(port) + ": " +
                      ec.message());
  asio::co_spawn(io_, accept_loop(std::move(acceptor)), asio::detached);
  thread_ = std::thread([this] { io_.run(); });
  return {};
}

asio::awaitable<void> AdminServer::accept_loop(tcp::acceptor acceptor) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec) continue;
    asio::co_spawn(io_, serve(std::move(socket)), asio::detached);
  }
}

asio::awaitable<void> AdminServer::serve(tcp::socket socket) {
  beast::flat_buffer buffer;
  for (;;) {
    http::request<http::string_body> req;
    auto [ec, n] =
        co_await http::async_read(socket, buffer, req, asio::as_tuple(asio::use_awaitable));
    (void)n;
    if (ec) co_return;
    http::response<http::string_body> res;
    res.version(req.version());
    res.keep_alive(req.keep_alive());
    const std::string target(req.target());
    const std::string path = target.substr(0, target.find('?'));
    const std::string query =
        path.size() < target.size() ? target.substr(path.size() + 1) : std::string();
    if (req.method() == http::verb::post && path == "/api/v1/failover") {
      res.set(http::field::content_type, "application/json");
      co_await switchover(query, res);
    } else if (req.method() == http::verb::post && path == "/api/v1/shards") {
      res.set(http::field::content_type, "application/json");
      co_await add_shard(req.body(), res);
    } else if (req.method() == http::verb::post && path == "/api/v1/reshard") {
      res.set(http::field::content_type, "application/json");
      co_await reshard(query, res);
    } else if (req.method() != http::verb::get) {
      res.result(http::status::method_not_allowed);
      res.body() =
          "only GET is supported here (POST /api/v1/failover?shard=S runs a switchover, POST "
          "/api/v1/reshard?op=... a resharding step)\n";
    } else if (target == "/api/v1/reshard") {
      res.set(http::field::content_type, "application/json");
      res.body() = reshard_.status_json();
    } else if (target == "/api/v1/failovers") {
      res.set(http::field::content_type, "application/json");
      res.body() = failovers_json();
    } else if (target == "/api/v1/backends") {
      res.set(http::field::content_type, "application/json");
      res.body() = co_await backends_json();
    } else if (path == "/api/v1/hotkeys") {
      res.set(http::field::content_type, "application/json");
      auto q = parse_hot_keys_query(query);
      auto body = q ? hot_keys_json(ctx_.hot_keys ? &hot_keys_ : nullptr,
                                    ctx_.hot_keys ? &*ctx_.hot_keys : nullptr, *ctx_.topology, *q)
                    : Result<std::string>(q.error());
      if (body) {
        res.body() = std::move(*body);
      } else {
        res.result(http::status::bad_request);
        res.body() = json::serialize(json::object{{"error", body.error().message()}}) + "\n";
      }
    } else if (target == "/api/v1/topology") {
      res.set(http::field::content_type, "application/json");
      res.body() = topology_json();
    } else if (target == "/metrics") {
      res.set(http::field::content_type, "text/plain; version=0.0.4");
      res.body() = co_await metrics_text();
    } else if (target == "/healthz") {
      res.body() = "ok\n";
    } else {
      res.result(http::status::not_found);
      res.body() =
          "not found: try /api/v1/backends, /api/v1/topology, /api/v1/failovers, "
          "/api/v1/hotkeys or /metrics\n";
    }
    res.prepare_payload();
    auto [wec, wn] = co_await http::async_write(socket, res, asio::as_tuple(asio::use_awaitable));
    (void)wn;
    if (wec || !res.keep_alive()) co_return;
  }
}

namespace {

json::object report_json(const FailoverReport& r) {
  json::object o;
  o["id"] = r.id;
  o["shard"] = r.shard;
  o["kind"] = r.kind;
  o["old_primary"] = r.old_primary;
  o["new_primary"] = r.new_primary;
  o["outcome"] = r.outcome;
  if (!r.error.empty()) o["error"] = r.error;
  o["started_unix_ms"] = r.started_unix_ms;
  o["detect_ms"] = r.detect_ms;
  o["promote_ms"] = r.promote_ms;
  o["epoch"] = r.epoch;
  o["topology_version"] = r.topology_version;
  o["journal_replayed"] = r.journal_replayed;
  o["journal_replay_failed"] = r.journal_replay_failed;
  o["journal_replayed_nondeterministic"] = r.journal_replayed_nondeterministic;
  o["old_primary_applied"] = r.old_primary_applied;
  o["old_primary_apply_failed"] = r.old_primary_apply_failed;
  json::array steps;
  for (const auto& s : r.steps) steps.push_back(json::string(s));
  o["steps"] = std::move(steps);
  o["finished"] = r.finished;
  return o;
}

// The value of `key` in a query string (no percent-decoding: names are plain).
// %XX and '+' decoded: a text key may hold any byte.
std::string url_decoded(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    if (text[i] == '%' && i + 2 < text.size() && hex(text[i + 1]) >= 0 && hex(text[i + 2]) >= 0) {
      out += static_cast<char>(hex(text[i + 1]) * 16 + hex(text[i + 2]));
      i += 2;
    } else {
      out += text[i] == '+' ? ' ' : text[i];
    }
  }
  return out;
}

std::string query_value(const std::string& query, const std::string& key) {
  std::size_t at = 0;
  while (at <= query.size()) {
    const std::size_t end = std::min(query.find('&', at), query.size());
    const std::string pair = query.substr(at, end - at);
    if (pair.rfind(key + "=", 0) == 0) return url_decoded(pair.substr(key.size() + 1));
    at = end + 1;
  }
  return {};
}

}  // namespace

std::string AdminServer::failovers_json() const {
  json::array reports;
  for (const auto& r : failover_.reports()) reports.push_back(report_json(r));
  json::array fenced;
  for (const auto& f : failover_.fenced()) {
    json::object o;
    o["name"] = f.name;
    o["shard"] = f.shard;
    o["status"] = f.status;
    o["catch_up"] = f.catch_up;
    fenced.push_back(std::move(o));
  }
  json::object root;
  root["enabled"] = ctx_.failover_enabled;
  root["reports"] = std::move(reports);
  root["fenced"] = std::move(fenced);
  return json::serialize(root) + "\n";
}

asio::awaitable<void> AdminServer::switchover(const std::string& query,
                                              http::response<http::string_body>& res) {
  auto id = failover_.request_switchover(query_value(query, "shard"), query_value(query, "to"));
  if (!id) {
    res.result(http::status::bad_request);
    json::object o;
    o["error"] = id.error().message();
    res.body() = json::serialize(o) + "\n";
    co_return;
  }
  // The admin thread stays free while the failover thread works.
  asio::steady_timer timer(co_await asio::this_coro::executor);
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (;;) {
    auto r = failover_.report(*id);
    if (r && (r->finished || std::chrono::steady_clock::now() > give_up)) {
      if (r->outcome != "promoted") res.result(http::status::conflict);
      res.body() = json::serialize(report_json(*r)) + "\n";
      co_return;
    }
    timer.expires_after(std::chrono::milliseconds(10));
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

namespace {

// Runs `step` (blocking: a control-plane thread answers it) on a thread of
// its own while the admin thread goes on serving; the answer as JSON.
asio::awaitable<void> answer_blocking(std::function<Result<std::string>()> step,
                                      http::response<http::string_body>& res) {
  auto task = std::make_shared<std::packaged_task<Result<std::string>()>>(std::move(step));
  auto outcome = task->get_future();
  std::thread([task] { (*task)(); }).detach();
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (outcome.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
    timer.expires_after(std::chrono::milliseconds(10));
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  auto result = outcome.get();
  json::object o;
  if (result) {
    o["message"] = *result;
  } else {
    res.result(http::status::conflict);
    o["error"] = result.error().message();
  }
  res.body() = json::serialize(o) + "\n";
}

}  // namespace

asio::awaitable<void> AdminServer::add_shard(const std::string& body,
                                             http::response<http::string_body>& res) {
  // A named step: g++ 12 destroys a temporary argument of a co_await twice.
  std::function<Result<std::string>()> step = [this, body] {
    return add_spare_shard(ctx_, failover_, monitor_, body);
  };
  co_await answer_blocking(step, res);
}

asio::awaitable<void> AdminServer::reshard(const std::string& query,
                                           http::response<http::string_body>& res) {
  ReshardRequest r;
  r.op = query_value(query, "op");
  r.kind = query_value(query, "kind");
  r.source = query_value(query, "source");
  r.target = query_value(query, "target");
  r.at = query_value(query, "at");
  r.table = query_value(query, "table");
  r.key = query_value(query, "key");
  r.database = query_value(query, "database");
  r.auto_cutover = query_value(query, "auto_cutover") == "1";
  // A step may take minutes (a cleanup, a verification). Named: see add_shard.
  std::function<Result<std::string>()> step = [this, r] { return reshard_.request(r); };
  co_await answer_blocking(step, res);
}

asio::awaitable<std::string> AdminServer::backends_json() {
  const auto pools = co_await collect_pools(ctx_);
  const auto health = monitor_.snapshot();
  const bool mysql = ctx_.config->clusters(0).engine() == config::Cluster::MYSQL;
  json::array out;
  for (const auto& b : ctx_.topology->backends) {
    json::object o;
    o["name"] = b.name;
    o["shard"] = ctx_.topology->shards[b.shard].name;
    o["role"] = role_name(b.role);
    o["fenced"] = b.fenced;
    o["statements"] = ctx_.served ? ctx_.served[b.index].load(std::memory_order_relaxed) : 0;
    o["address"] = b.host + ":" + std::to_string(b.port);
    if (b.index < health->backends.size()) {
      const auto& h = health->backends[b.index];
      o["up"] = h.up;
      o["observed_role"] = observed_name(h.role);
      if (b.role == router::MemberRole::Replica) o["streaming"] = h.upstream_connected;
      // PostgreSQL: WAL positions and bytes; MySQL: GTID sequence numbers and transactions.
      if (mysql) {
        o["gtid_seq"] = h.lsn;
        if (h.lag_bytes)
          o["lag_transactions"] = *h.lag_bytes;
        else
          o["lag_transactions"] = nullptr;
      } else {
        o["lsn"] = replication::format_lsn(h.lsn);
        if (h.lag_bytes)
          o["lag_bytes"] = *h.lag_bytes;
        else
          o["lag_bytes"] = nullptr;
      }
      o["consecutive_failures"] = h.consecutive_failures;
      o["last_error"] = h.last_error;
    }
    json::object pool;
    pool["open"] = pools[b.index].total;
    pool["idle"] = pools[b.index].idle;
    pool["in_use"] = pools[b.index].total - pools[b.index].idle;
    pool["waiting"] = pools[b.index].waiting;
    o["pool"] = pool;
    o["outstanding"] = ctx_.outstanding[b.index].load(std::memory_order_relaxed);
    out.push_back(std::move(o));
  }
  json::object root;
  root["cluster"] = ctx_.topology->cluster;
  root["topology_version"] = ctx_.topology->version;
  root["monitor_generation"] = health->generation;
  root["clients"] = ctx_.clients.load(std::memory_order_relaxed);
  root["backends"] = std::move(out);
  co_return json::serialize(root) + "\n";
}

// The topology the data path uses: version, shards with key ranges and
// members, and the sharding of tables. Pure data, no I/O.
std::string AdminServer::topology_json() const {
  const router::Topology& t = *ctx_.topology;
  json::array shards;
  for (std::uint32_t s = 0; s < t.shards.size(); ++s) {
    const auto& shard = t.shards[s];
    json::object o;
    o["name"] = shard.name;
    o["key_range"] = router::format_shard_ranges(shard);
    o["default"] = s == t.sharding.default_shard;
    o["epoch"] = shard.epoch;
    json::array members;
    for (const auto& b : t.backends) {
      if (b.shard != s) continue;
      json::object m;
      m["name"] = b.name;
      m["role"] = role_name(b.role);
      m["address"] = b.host + ":" + std::to_string(b.port);
      // The proxy connects through the server's Unix socket when one is set.
      if (!b.unix_socket.empty() || !b.unix_socket_dir.empty())
        m["socket"] = b.unix_socket.empty() ? b.unix_socket_dir : b.unix_socket;
      m["zone"] = b.zone;
      if (b.fenced) m["fenced"] = true;
      members.push_back(std::move(m));
    }
    o["members"] = std::move(members);
    shards.push_back(std::move(o));
  }
  json::array tables;
  for (const auto& st : t.sharding.tables) {
    json::object o;
    o["name"] = st.name;
    o["column"] = st.column;
    o["strategy"] = st.strategy == router::ShardStrategy::Hash ? "hash" : "range";
    o["key_type"] = st.key_type == router::KeyType::Integer ? "integer" : "text";
    if (st.strategy == router::ShardStrategy::Range) {
      json::array ranges;
      for (const auto& r : st.ranges) {
        json::object ro;
        ro["shard"] = t.shards[r.shard].name;
        if (r.has_from) ro["from"] = r.from;
        if (r.has_to) ro["to"] = r.to;
        ranges.push_back(std::move(ro));
      }
      o["ranges"] = std::move(ranges);
    }
    tables.push_back(std::move(o));
  }
  json::array reference;
  for (const auto& name : t.sharding.reference_tables) reference.push_back(json::string(name));
  json::object root;
  root["cluster"] = t.cluster;
  root["version"] = t.version;
  root["reason"] = t.reason;
  root["updated_unix_ms"] = t.updated_unix_ms;
  root["store"] = ctx_.topology_store_path;
  root["shards"] = std::move(shards);
  root["sharded_tables"] = std::move(tables);
  root["reference_tables"] = std::move(reference);
  root["allow_scatter_writes"] = t.sharding.allow_scatter_writes;
  return json::serialize(root) + "\n";
}

asio::awaitable<std::string> AdminServer::metrics_text() {
  const auto pools = co_await collect_pools(ctx_);
  const auto health = monitor_.snapshot();
  std::string extra;
  auto gauge = [&](const char* name, const char* help) {
    extra += std::string("# HELP shardgate_") + name + " " + help + "\n# TYPE shardgate_" + name +
             " gauge\n";
  };
  auto line = [&](const char* name, const router::BackendInfo& b, double v) {
    extra += std::string("shardgate_") + name + "{backend=\"" + b.name + "\",role=\"" +
             role_name(b.role) + "\"} " + std::to_string(v) + "\n";
  };
  gauge("backend_up", "1 when the monitor sees the backend healthy");
  for (const auto& b : ctx_.topology->backends)
    line("backend_up", b,
         b.index < health->backends.size() && health->backends[b.index].up ? 1 : 0);
  gauge("backend_lag_bytes", "Replica replay lag behind its primary, in bytes of WAL");
  for (const auto& b : ctx_.topology->backends)
    if (b.index < health->backends.size() && health->backends[b.index].lag_bytes)
      line("backend_lag_bytes", b, static_cast<double>(*health->backends[b.index].lag_bytes));
  gauge("pool_connections", "Server connections open per backend");
  for (const auto& b : ctx_.topology->backends)
    line("pool_connections", b, static_cast<double>(pools[b.index].total));
  gauge("pool_idle", "Idle server connections per backend");
  for (const auto& b : ctx_.topology->backends)
    line("pool_idle", b, static_cast<double>(pools[b.index].idle));
  gauge("pool_waiting", "Clients waiting for a server connection per backend");
  for (const auto& b : ctx_.topology->backends)
    line("pool_waiting", b, static_cast<double>(pools[b.index].waiting));
  std::vector<const Metrics*> per_thread;
  for (const auto& w : ctx_.workers) per_thread.push_back(&w->metrics());
  extra += hot_keys_metrics(ctx_.hot_keys ? &hot_keys_ : nullptr, *ctx_.topology);
  if (ctx_.result_cache) extra += result_cache_metrics(ctx_.result_cache->stats());
  co_return render_prometheus(per_thread, extra);
}

}  // namespace shardgate::admin
