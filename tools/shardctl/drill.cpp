#include "tools/shardctl/drill.h"

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "proxy/config/load_config.h"
#include "tools/shardctl/admin_client.h"
#include "tools/shardctl/drill_client.h"
#include "tools/shardctl/partition.h"
#include "tools/shardctl/sandbox.h"
#include "tools/shardctl/sandbox_config.h"

namespace shardgate::shardctl {
namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr const char* kTable = "shardgate_drill";

std::int64_t unix_ms() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double ms_since(Clock::time_point start, Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(t - start).count();
}

struct ShardMember {
  std::string name, role, host;
  int port = 0;
  bool fenced = false;
};

struct ShardView {
  bool is_default = false;
  std::vector<ShardMember> members;
  const ShardMember* primary() const {
    for (const auto& m : members)
      if (m.role == "primary") return &m;
    return nullptr;
  }
  const ShardMember* find(const std::string& name) const {
    for (const auto& m : members)
      if (m.name == name) return &m;
    return nullptr;
  }
};

Result<ShardView> shard_view(const std::string& admin, const std::string& shard) {
  auto body = admin_get(admin, "/api/v1/topology");
  if (!body) return body.error();
  boost::system::error_code ec;
  json::value doc = json::parse(*body, ec);
  if (ec) return make_error("the admin API's topology is not JSON: " + ec.message());
  for (const auto& sv : doc.at("shards").as_array()) {
    const auto& s = sv.as_object();
    if (s.at("name").as_string() != shard) continue;
    ShardView view;
    view.is_default = s.at("default").as_bool();
    for (const auto& mv : s.at("members").as_array()) {
      const auto& m = mv.as_object();
      ShardMember member;
      member.name = std::string(m.at("name").as_string());
      member.role = std::string(m.at("role").as_string());
      const std::string address(m.at("address").as_string());
      const auto colon = address.rfind(':');
      member.host = address.substr(0, colon);
      member.port = std::atoi(address.c_str() + colon + 1);
      member.fenced = m.contains("fenced") && m.at("fenced").as_bool();
      view.members.push_back(member);
    }
    return view;
  }
  return make_error("the proxy has no shard named '" + shard + "'");
}

// Statements the proxy has sent to `backend` since it started.
// The replica keeps its data but receives nothing more. PostgreSQL: an
// empty primary_conninfo, reloaded, ends its WAL receiver and starts none
// (a failover's follow() sets it again).
Result<void> stop_receiving(const DrillTarget& replica) {
  auto c = drill_connect(replica);
  if (!c) return c.error();
  if (replica.mysql) return (*c)->exec("STOP SLAVE IO_THREAD");
  for (const char* sql : {"ALTER SYSTEM SET primary_conninfo = ''", "SELECT pg_reload_conf()"})
    if (auto r = (*c)->exec(sql); !r) return r;
  const auto give_up = Clock::now() + std::chrono::seconds(5);
  for (;;) {
    auto n = (*c)->column("SELECT count(*) FROM pg_stat_wal_receiver");
    if (!n) return n.error();
    if (!n->empty() && n->front() == "0") return {};
    if (Clock::now() > give_up) return make_error("its WAL receiver did not stop within 5 s");
    std::this_thread::sleep_for(milliseconds(10));
  }
}

// "yes" once the server refuses writes by default (the proxy fenced it),
// asked directly for up to 10 s; else what it answered.
std::string old_primary_read_only(const DrillTarget& server) {
  const std::string sql =
      server.mysql ? "SELECT @@global.read_only" : "SHOW default_transaction_read_only";
  const std::string yes = server.mysql ? "1" : "on";
  const auto give_up = Clock::now() + std::chrono::seconds(10);
  std::string last = "no answer";
  while (Clock::now() < give_up) {
    auto c = drill_connect(server);
    auto v = c ? (*c)->column(sql) : Result<std::vector<std::string>>(c.error());
    if (v && !v->empty() && v->front() == yes) return "yes";
    last = v ? (v->empty() ? "no row" : v->front()) : v.error().message();
    std::this_thread::sleep_for(milliseconds(100));
  }
  return "no: still " + last + " after 10 s";
}

Result<std::int64_t> statements_to(const std::string& admin, const std::string& backend) {
  auto body = admin_get(admin, "/api/v1/backends");
  if (!body) return body.error();
  boost::system::error_code ec;
  json::value doc = json::parse(*body, ec);
  if (ec) return make_error("the admin API's backends are not JSON");
  for (const auto& bv : doc.at("backends").as_array()) {
    const auto& b = bv.as_object();
    if (b.at("name").as_string() == backend && b.contains("statements"))
      return b.at("statements").to_number<std::int64_t>();
  }
  return make_error("the proxy reports no statement count for " + backend);
}

// The failover report for `shard` that started at or after `since_unix_ms`.
std::optional<json::object> failover_report(const std::string& admin, const std::string& shard,
                                            std::int64_t since_unix_ms) {
  auto body = admin_get(admin, "/api/v1/failovers");
  if (!body) return std::nullopt;
  boost::system::error_code ec;
  json::value doc = json::parse(*body, ec);
  if (ec) return std::nullopt;
  std::optional<json::object> found;
  for (const auto& rv : doc.at("reports").as_array()) {
    const auto& r = rv.as_object();
    if (r.at("shard").as_string() == shard &&
        r.at("started_unix_ms").to_number<std::int64_t>() >= since_unix_ms)
      found = r;
  }
  return found;
}

struct Write {
  std::int64_t id = 0;
  Clock::time_point start, end;
  bool ok = false;
  std::string error;
};

// Inserts ids through the proxy at `per_second` until `stop`; reconnects
// after a lost connection.
void writer(const DrillTarget& proxy, bool prepared, std::int64_t run, double per_second,
            std::atomic<std::int64_t>& next_id, const std::atomic<bool>& stop,
            std::vector<Write>& out) {
  const std::string insert = "INSERT INTO " + std::string(kTable) + " (id, run) VALUES " +
                             (proxy.mysql ? "(?, ?)" : "($1, $2)");
  std::unique_ptr<DrillClient> client;
  const auto interval = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(1.0 / std::max(per_second, 0.1)));
  auto due = Clock::now();
  while (!stop.load()) {
    std::this_thread::sleep_until(due);
    due += interval;
    if (Clock::now() > due + interval * 10) due = Clock::now();  // fell far behind: no burst
    if (!client || !client->usable()) {
      auto c = drill_connect(proxy);
      if (!c) {
        out.push_back({0, Clock::now(), Clock::now(), false, "connect: " + c.error().message()});
        std::this_thread::sleep_for(milliseconds(50));
        continue;
      }
      client = std::move(*c);
    }
    Write w;
    w.id = next_id.fetch_add(1);
    w.start = Clock::now();
    auto r = prepared ? client->exec_params(insert, {w.id, run})
                      : client->exec("INSERT INTO " + std::string(kTable) + " (id, run) VALUES (" +
                                     std::to_string(w.id) + ", " + std::to_string(run) + ")");
    w.end = Clock::now();
    w.ok = static_cast<bool>(r);
    if (!r) w.error = r.error().message();
    out.push_back(std::move(w));
  }
}

// Error messages without the varying parts (ids), for counting.
std::string error_kind(const std::string& e) {
  std::string out;
  for (char c : e) {
    if (c >= '0' && c <= '9') {
      if (out.empty() || out.back() != '#') out += '#';
    } else {
      out += c;
    }
  }
  return out.size() > 160 ? out.substr(0, 160) + "..." : out;
}

}  // namespace

Result<DrillOutcome> run_failover_drill(const DrillOptions& options) {
  const std::string config_path = (options.dir / kConfigFileName).string();
  auto cfg = config::load_config_file(config_path);
  if (!cfg) return cfg.error();
  if (cfg->admin().port() == 0) return make_error(config_path + " sets no admin.port");
  if (cfg->users_size() == 0 || cfg->listeners_size() == 0)
    return make_error(config_path + " has no user or no listener");
  const bool mysql = cfg->clusters(0).engine() == config::Cluster::MYSQL;
  const std::string admin = cfg->admin().address() + ":" + std::to_string(cfg->admin().port());
  DrillTarget proxy{mysql,
                    cfg->listeners(0).address(),
                    static_cast<int>(cfg->listeners(0).port()),
                    cfg->users(0).name(),
                    cfg->users(0).password(),
                    "app"};

  if ((options.lag_ms > 0 || options.lose_data) && options.fault != "kill" &&
      options.fault != "stop")
    return make_error("--lag-ms and --lose-data go with --kill or --stop");
  auto before = shard_view(admin, options.shard);
  if (!before) return before.error();
  if (!before->is_default)
    return make_error(
        "the drill writes an unsharded table, which lives on the default shard: "
        "choose that shard with --shard");
  const ShardMember* old_primary = before->primary();
  if (!old_primary) return make_error("shard " + options.shard + " has no primary");
  const std::string old_name = old_primary->name;
  if (options.fault == "partition") {
    for (const auto& shard : cfg->clusters(0).shards())
      for (const auto& b : shard.backends())
        if (b.name() == old_name && (!b.unix_socket_dir().empty() || !b.unix_socket().empty()))
          return make_error(
              "--partition primary: the proxy reaches " + old_name + " over its Unix socket (" +
              config_path + "), which a network partition does not cut; remove its unix_socket" +
              (mysql ? "" : "_dir") + " line and restart the proxy, so that it connects over TCP");
  }

  {
    auto setup = drill_connect(proxy);
    if (!setup) return make_error("cannot connect through the proxy: " + setup.error().message());
    auto made = (*setup)->exec("CREATE TABLE IF NOT EXISTS " + std::string(kTable) +
                               " (id BIGINT PRIMARY KEY, run BIGINT NOT NULL)");
    if (!made) return make_error("creating " + std::string(kTable) + ": " + made.error().message());
  }

  const std::int64_t run = unix_ms();
  std::atomic<std::int64_t> next_id{run * 1000};
  std::atomic<bool> stop{false};
  std::vector<std::vector<Write>> writes(static_cast<std::size_t>(std::max(options.writers, 1)));
  std::vector<std::thread> threads;
  const auto started = Clock::now();
  const double per_writer = static_cast<double>(options.load) / writes.size();
  for (auto& w : writes)
    threads.emplace_back(
        [&, out = &w] { writer(proxy, options.prepared, run, per_writer, next_id, stop, *out); });

  std::this_thread::sleep_until(started + std::chrono::seconds(options.duration) / 3);
  std::string fault_error;
  if (options.lag_ms > 0) {
    const auto& monitor = cfg->clusters(0).monitor();
    for (const auto& m : before->members) {
      if (m.name == old_name || !fault_error.empty()) continue;
      auto r = stop_receiving(
          DrillTarget{mysql, m.host, m.port, monitor.user(), monitor.password(), ""});
      if (!r) fault_error = "cannot make " + m.name + " lag: " + r.error().message();
    }
    std::this_thread::sleep_for(milliseconds(options.lag_ms));
  }
  const int old_primary_port = old_primary->port;
  std::unique_ptr<PortPartition> partition;
  const auto fault_at = Clock::now();
  const std::int64_t fault_unix_ms = unix_ms();
  if (!fault_error.empty()) {
  } else if (options.fault == "kill" || options.fault == "stop") {
    auto sent =
        sandbox_signal_member(options.dir, old_name, options.fault == "kill" ? SIGKILL : SIGTERM);
    if (!sent) fault_error = sent.error().message();
    if (sent && options.lose_data) {
      auto lost = sandbox_destroy_member_data(options.dir, old_name, *sent);
      if (!lost) fault_error = lost.error().message();
    }
  } else if (options.fault == "partition") {
    auto cut = PortPartition::cut(old_primary_port);
    if (cut) {
      partition = std::move(*cut);
    } else {
      fault_error = cut.error().message();
    }
  } else if (options.fault == "pause") {
    for (int i = 0; i < options.pauses && fault_error.empty(); ++i) {
      if (i > 0) std::this_thread::sleep_for(milliseconds(options.pause_ms / 2));
      auto sent = sandbox_signal_member(options.dir, old_name, SIGSTOP);
      if (!sent) {
        fault_error = sent.error().message();
      } else {
        std::this_thread::sleep_for(milliseconds(options.pause_ms));
        sandbox_signal_member(options.dir, old_name, SIGCONT);
      }
    }
  } else if (options.fault == "switchover") {
    auto reply = admin_request(admin, true, "/api/v1/failover?shard=" + options.shard);
    if (!reply) fault_error = reply.error().message();
  } else {
    fault_error = "unknown fault '" + options.fault + "'";
  }

  // The proxy's report of this failover (none is expected for a pause).
  std::optional<json::object> report;
  const auto give_up = std::max(started + std::chrono::seconds(options.duration),
                                fault_at + std::chrono::seconds(options.fault == "pause" ? 3 : 20));
  while (fault_error.empty() && Clock::now() < give_up) {
    report = failover_report(admin, options.shard, fault_unix_ms - 1000);
    if (report && report->at("finished").as_bool()) break;
    std::this_thread::sleep_for(milliseconds(50));
  }
  const bool promoted = report && report->at("outcome").as_string() == "promoted";
  // The partition heals once the shard has failed over: the old primary,
  // still running and still writable, is reachable again and must be
  // fenced before anything reaches it.
  std::string fenced_after_heal;
  if (partition) {
    if (auto healed = partition->heal(); !healed) {
      fault_error = healed.error().message();
    } else if (promoted) {
      fenced_after_heal = old_primary_read_only(
          DrillTarget{mysql, old_primary->host, old_primary_port, cfg->clusters(0).monitor().user(),
                      cfg->clusters(0).monitor().password(), ""});
    }
  }
  std::optional<std::int64_t> fenced_statements_before;
  if (promoted) {
    auto n = statements_to(admin, old_name);
    if (n) fenced_statements_before = *n;
  }

  std::string rejoin_status = "not asked";
  std::optional<double> rejoin_ms;
  if (options.rejoin && promoted) {
    const std::string new_name(report->at("new_primary").as_string());
    auto now_view = shard_view(admin, options.shard);
    const ShardMember* np = now_view ? now_view->find(new_name) : nullptr;
    const auto t0 = Clock::now();
    auto r = np ? sandbox_rejoin_member(options.dir, old_name, np->port)
                : Result<void>(make_error("the new primary is not in the topology"));
    if (!r) {
      rejoin_status = "failed: " + r.error().message();
    } else {
      rejoin_status = "no: still fenced after 30 s";
      while (Clock::now() < t0 + std::chrono::seconds(30)) {
        auto v = shard_view(admin, options.shard);
        const ShardMember* m = v ? v->find(old_name) : nullptr;
        if (m && !m->fenced) {
          rejoin_status = "yes";
          rejoin_ms = ms_since(t0, Clock::now());
          break;
        }
        std::this_thread::sleep_for(milliseconds(100));
      }
    }
  }
  // The rejoin may have applied on the new primary what only the old one had.
  if (options.rejoin && promoted) {
    if (auto again = failover_report(admin, options.shard, fault_unix_ms - 1000)) report = again;
  }
  std::this_thread::sleep_until(started + std::chrono::seconds(options.duration));
  stop = true;
  for (auto& t : threads) t.join();
  std::optional<std::int64_t> fenced_statements_after;
  if (fenced_statements_before) {
    auto n = statements_to(admin, old_name);
    if (n) fenced_statements_after = *n;
  }

  // What the writers saw.
  std::vector<Write> all;
  for (auto& w : writes) all.insert(all.end(), w.begin(), w.end());
  std::vector<Clock::time_point> acked_at;
  std::set<std::int64_t> acked, failed_ids;
  std::map<std::int64_t, Clock::time_point> acked_end;
  std::map<std::string, int> errors;
  double slowest_ack_ms = 0;
  for (const auto& w : all) {
    if (w.ok) {
      acked.insert(w.id);
      acked_end[w.id] = w.end;
      acked_at.push_back(w.end);
      slowest_ack_ms = std::max(slowest_ack_ms, ms_since(w.start, w.end));
    } else {
      if (w.id) failed_ids.insert(w.id);
      ++errors[error_kind(w.error)];
    }
  }
  std::sort(acked_at.begin(), acked_at.end());
  // The longest stretch without an acknowledged write that reaches past the fault.
  double unavailable_ms = 0;
  for (std::size_t i = 0; i + 1 < acked_at.size(); ++i)
    if (acked_at[i + 1] > fault_at)
      unavailable_ms = std::max(unavailable_ms, ms_since(acked_at[i], acked_at[i + 1]));

  // Every acknowledged id must be on the shard's primary now, read directly.
  auto after = shard_view(admin, options.shard);
  std::string new_name = after && after->primary() ? after->primary()->name : "";
  std::optional<std::size_t> missing, in_doubt_committed;
  // How far from the fault the latest-acknowledged missing write was: a write
  // lost to asynchronous replication was acknowledged just before the crash;
  // one acknowledged long after it was lost by the proxy.
  double missing_farthest_from_fault_ms = 0;
  std::string verify_error;
  if (after && after->primary()) {
    DrillTarget direct = proxy;
    direct.host = after->primary()->host;
    direct.port = after->primary()->port;
    direct.user = cfg->users(0).server_user().empty() ? proxy.user : cfg->users(0).server_user();
    direct.password =
        cfg->users(0).server_password().empty() ? proxy.password : cfg->users(0).server_password();
    auto c = drill_connect(direct);
    if (!c) {
      verify_error = "cannot connect to " + new_name + ": " + c.error().message();
    } else {
      auto ids = (*c)->column("SELECT id FROM " + std::string(kTable) +
                              " WHERE run = " + std::to_string(run));
      if (!ids) {
        verify_error = ids.error().message();
      } else {
        std::set<std::int64_t> present;
        for (const auto& id : *ids) present.insert(std::atoll(id.c_str()));
        missing = 0;
        in_doubt_committed = 0;
        for (auto id : acked) {
          if (present.count(id)) continue;
          ++*missing;
          const double off = std::abs(ms_since(fault_at, acked_end[id]));
          missing_farthest_from_fault_ms = std::max(missing_farthest_from_fault_ms, off);
        }
        for (auto id : failed_ids) *in_doubt_committed += present.count(id);
      }
    }
  } else {
    verify_error = "the shard has no primary after the drill";
  }

  const bool expect_failover = options.fault != "pause";
  const std::int64_t to_fenced = fenced_statements_before && fenced_statements_after
                                     ? *fenced_statements_after - *fenced_statements_before
                                     : 0;
  bool passed = fault_error.empty() && verify_error.empty() && missing && *missing == 0 &&
                to_fenced == 0 && (expect_failover ? promoted : !report);
  if (options.rejoin && expect_failover) passed = passed && rejoin_status == "yes";
  if (partition && promoted) passed = passed && fenced_after_heal == "yes";

  json::object o;
  o["engine"] = mysql ? "mysql" : "postgres";
  o["shard"] = options.shard;
  o["fault"] = options.fault;
  o["load_per_second"] = options.load;
  if (options.lag_ms > 0) o["replicas_lagged_ms"] = options.lag_ms;
  if (options.lose_data) o["old_primary_data_lost"] = true;
  if (options.prepared) o["prepared_statements"] = true;
  o["duration_s"] = options.duration;
  if (options.fault == "pause") {
    o["pause_ms"] = options.pause_ms;
    o["pauses"] = options.pauses;
  }
  o["old_primary"] = old_name;
  o["new_primary"] = new_name;
  if (!fault_error.empty()) o["fault_error"] = fault_error;
  o["failed_over"] = promoted;
  if (report) {
    o["failover_outcome"] = report->at("outcome");
    o["detect_ms"] = report->at("detect_ms");
    o["promote_ms"] = report->at("promote_ms");
    o["epoch"] = report->at("epoch");
    if (report->contains("journal_replayed")) {
      o["journal_replayed"] = report->at("journal_replayed");
      o["journal_replay_failed"] = report->at("journal_replay_failed");
    }
    if (report->contains("old_primary_applied")) {
      o["old_primary_applied"] = report->at("old_primary_applied");
      o["old_primary_apply_failed"] = report->at("old_primary_apply_failed");
    }
    if (report->contains("error")) o["failover_error"] = report->at("error");
  }
  o["write_unavailable_ms"] = unavailable_ms;
  o["slowest_acknowledged_write_ms"] = slowest_ack_ms;
  o["writes_acknowledged"] = acked.size();
  o["writes_failed"] = all.size() - acked.size();
  json::object error_counts;
  for (const auto& [kind, n] : errors) error_counts[kind] = n;
  o["client_errors"] = std::move(error_counts);
  if (missing) o["acknowledged_missing"] = *missing;
  if (missing && *missing)
    o["missing_acknowledged_within_ms_of_fault"] = missing_farthest_from_fault_ms;
  if (in_doubt_committed) o["failed_but_committed"] = *in_doubt_committed;
  if (!verify_error.empty()) o["verify_error"] = verify_error;
  o["statements_to_fenced_primary"] = to_fenced;
  if (!fenced_after_heal.empty()) o["old_primary_read_only_after_heal"] = fenced_after_heal;
  o["old_primary_rejoined"] = rejoin_status;
  if (rejoin_ms) o["rejoin_ms"] = *rejoin_ms;
  o["passed"] = passed;

  DrillOutcome outcome;
  outcome.passed = passed;
  if (options.json) {
    outcome.text = json::serialize(o) + "\n";
    return outcome;
  }
  std::ostringstream out;
  out << "failover drill: shard " << options.shard << ", " << options.fault << " of " << old_name
      << " under " << options.load << " writes/s for " << options.duration << " s\n";
  if (!fault_error.empty()) out << "  fault not injected: " << fault_error << "\n";
  if (report) {
    out << "  failover            " << std::string(report->at("outcome").as_string()) << " -> "
        << new_name << " (epoch " << json::serialize(report->at("epoch")) << ")\n"
        << "  detected after      " << static_cast<int>(report->at("detect_ms").to_number<double>())
        << " ms\n"
        << "  promoted after      "
        << static_cast<int>(report->at("promote_ms").to_number<double>()) << " ms\n";
    auto count = [&](const char* key) {
      const json::value* v = report->if_contains(key);
      return v ? v->to_number<std::int64_t>() : 0;
    };
    out << "  caught up           " << count("journal_replayed") << " from the write journal, "
        << count("old_primary_applied") << " from the old primary's binlog ("
        << count("old_primary_apply_failed") << " could not be applied)\n";
  } else {
    out << "  failover            none" << (expect_failover ? " (expected one)" : " (as expected)")
        << "\n";
  }
  out << "  writes unavailable  " << static_cast<int>(unavailable_ms)
      << " ms (longest gap between acknowledged writes)\n"
      << "  slowest ack         " << static_cast<int>(slowest_ack_ms) << " ms\n"
      << "  writes              " << acked.size() << " acknowledged, " << all.size() - acked.size()
      << " failed\n";
  for (const auto& [kind, n] : errors) out << "    " << n << " x " << kind << "\n";
  if (missing)
    out << "  acknowledged writes missing on " << new_name << ": " << *missing
        << (*missing ? " (all acknowledged within " +
                           std::to_string(static_cast<int>(missing_farthest_from_fault_ms)) +
                           " ms of the fault: asynchronous replication had not sent them)"
                     : std::string())
        << "\n"
        << "  failed writes that committed anyway: " << *in_doubt_committed << "\n";
  else
    out << "  could not verify: " << verify_error << "\n";
  out << "  statements sent to the fenced old primary: " << to_fenced << "\n"
      << "  old primary rejoined: " << rejoin_status;
  if (rejoin_ms) out << " (" << static_cast<int>(*rejoin_ms) << " ms)";
  out << "\nresult: " << (passed ? "PASS" : "FAIL") << "\n";
  outcome.text = out.str();
  return outcome;
}

}  // namespace shardgate::shardctl
