// shardctl: the operator's command line. Exit status 0 on success, 1 when the
// command failed, 2 when it was typed wrong (the message says what to type).
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <exception>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tools/shardctl/admin_client.h"
#include "tools/shardctl/drill.h"
#include "tools/shardctl/hotkeys.h"
#include "tools/shardctl/reshard.h"
#include "tools/shardctl/sandbox.h"
#include "tools/shardctl/sandbox_config.h"
#include "tools/shardctl/status.h"

namespace shardgate::shardctl {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

constexpr const char* kUsage =
    "usage:\n"
    "  shardctl sandbox up   [--engine postgres|mysql] [--shards N] [--spare-shards N]\n"
    "                        [--replicas R]\n"
    "                        [--base-port PORT] [--dir DIR] [--proxy-port PORT]\n"
    "                        [--admin-port PORT]\n"
    "  shardctl sandbox down [--dir DIR] [--destroy]\n"
    "  shardctl sandbox start|stop --member NAME [--dir DIR]\n"
    "  shardctl sandbox rejoin --member NAME --primary-port PORT [--dir DIR]\n"
    "  shardctl status       [--admin HOST:PORT | --config FILE] [--json]\n"
    "  shardctl topology     [--admin HOST:PORT | --config FILE] [--json]\n"
    "  shardctl hotkeys      [--shard S] [--admin HOST:PORT | --config FILE] [--json]\n"
    "  shardctl reshard isolate --table T --key K [--new-shard NAME]\n"
    "                        [--admin HOST:PORT | --config FILE] [--json]\n"
    "  shardctl reshard plan|start --split S --into SPARE [--at HEX]\n"
    "                        | --merge S --into NEIGHBOUR | --rebalance LEFT --with RIGHT --at "
    "HEX\n"
    "                        [--database DB] [--auto-cutover] [--admin HOST:PORT | --config FILE]\n"
    "  shardctl reshard status|verify|cutover|abort|cleanup [--json] [--wait]\n"
    "                        [--admin HOST:PORT | --config FILE]\n"
    "  shardctl reshard add-shard --shard NAME --config FILE [--admin HOST:PORT]\n"
    "  shardctl failover     --shard S [--to NAME] [--admin HOST:PORT | --config FILE]\n"
    "  shardctl drill failover [--dir DIR] [--shard S]\n"
    "                        [--kill primary | --stop primary | --pause primary |\n"
    "                         --partition primary | --switchover]\n"
    "                        [--load QPS] [--duration SEC] [--writers N] [--pause-ms MS]\n"
    "                        [--pauses N]\n"
    "                        [--lag-ms MS] [--lose-data] [--prepared] [--rejoin] [--json]\n"
    "  shardctl help\n"
    "\n"
    "sandbox up defaults: --engine postgres --shards 1 --replicas 2 --dir ./sandbox\n"
    "                     --admin-port 9930\n"
    "  postgres: PostgreSQL 15 streaming replication; --base-port 15432 --proxy-port 6432\n"
    "  mysql:    MariaDB 10.11 GTID replication;      --base-port 13306 --proxy-port 6033\n"
    "  shards 1..4, replicas 0..4; member m of shard s listens on base-port + s*(R+1) + m\n"
    "  spare shards (0..2) follow the others and own no keys (key_range: none) until a\n"
    "  resharding cutover gives them a slice\n"
    "sandbox down stops the servers of either engine found in DIR; --destroy removes DIR\n"
    "hotkeys shows the statement rate of each shard and of the heaviest (table, key)\n"
    "  pairs, and which keys are hot (thresholds: sharding.hot_keys in the config)\n"
    "reshard isolate plans the key ranges (hash) or table ranges (range) that give one\n"
    "  key a shard of its own; `reshard start --isolate` carries it out (hash sharding)\n"
    "reshard start copies the moving slice's rows to the target while clients go on,\n"
    "  then catches up; cutover verifies, pauses writes briefly and switches the\n"
    "  topology; cleanup then deletes the moved rows from the source. --wait waits\n"
    "  for the copy to finish (start) before returning\n"
    "reshard add-shard tells the running proxy about a spare shard (key_range: none)\n"
    "  of FILE, e.g. one `sandbox up --spare-shards N+1` just started and wrote\n"
    "failover runs a planned switchover of shard S (to the most advanced replica, or NAME)\n"
    "drill failover runs writes through the sandbox's proxy, injects the fault on the\n"
    "  shard's primary a third of the way in (default --kill primary, --load 200,\n"
    "  --duration 10) and checks every acknowledged write on the new primary; exit 1\n"
    "  when it fails. --rejoin brings the old primary back as a replica. --lag-ms\n"
    "  stops the replicas receiving MS before the fault, and --lose-data deletes\n"
    "  the killed primary's data: only the proxy's write journal has the last\n"
    "  writes. --partition drops the primary's TCP traffic both ways (nftables)\n"
    "  until the shard has failed over, then heals it and checks that the old\n"
    "  primary was fenced (made read-only). --pause freezes the primary for\n"
    "  --pause-ms (SIGSTOP), --pauses times: it must not be failed over.\n";

using Args = std::vector<std::string>;

// A usage mistake: printed with a pointer to the usage text, exit status 2.
struct UsageError {
  std::string message;
};

int usage_error(const std::string& message) {
  std::cerr << "shardctl: " << message << "\n\n" << kUsage;
  return kExitUsage;
}

// Parses `--name value`, `--name=value` and bare flags. `with_value` lists the
// options that take a value, `flags` those that do not; anything else is an error.
std::optional<UsageError> parse_options(const Args& args,
                                        const std::vector<std::string>& with_value,
                                        const std::vector<std::string>& flags,
                                        std::map<std::string, std::string>& out) {
  auto known = [](const std::vector<std::string>& list, const std::string& name) {
    return std::find(list.begin(), list.end(), name) != list.end();
  };
  for (size_t i = 0; i < args.size(); ++i) {
    std::string name = args[i];
    std::optional<std::string> value;
    if (const auto eq = name.find('='); name.starts_with("--") && eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    }
    if (known(flags, name) && !value) {
      out[name] = "true";
    } else if (known(with_value, name)) {
      if (!value && i + 1 >= args.size()) return UsageError{name + " needs a value"};
      out[name] = value ? *value : args[++i];
    } else {
      return UsageError{"unknown option '" + args[i] + "'"};
    }
  }
  return std::nullopt;
}

std::optional<UsageError> parse_int(const std::map<std::string, std::string>& options,
                                    const std::string& name, int& target) {
  const auto it = options.find(name);
  if (it == options.end()) return std::nullopt;
  const std::string& text = it->second;
  int value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty())
    return UsageError{name + " expects a whole number, got '" + text + "'"};
  target = value;
  return std::nullopt;
}

std::optional<UsageError> parse_up_options(const Args& args, SandboxOptions& options) {
  std::map<std::string, std::string> given;
  if (auto e = parse_options(args,
                             {"--engine", "--shards", "--spare-shards", "--replicas", "--base-port",
                              "--dir", "--proxy-port", "--admin-port"},
                             {}, given))
    return e;
  // The engine first: it decides the defaults the other options override.
  if (given.count("--engine")) {
    const std::string& engine = given["--engine"];
    if (engine == "mysql")
      options = default_options(Engine::kMysql);
    else if (engine != "postgres")
      return UsageError{"--engine must be postgres or mysql, got '" + engine + "'"};
  }
  if (given.count("--dir")) options.dir = given["--dir"];
  if (options.dir.empty()) return UsageError{"--dir must not be empty"};
  for (const auto& [name, target] :
       std::vector<std::pair<std::string, int*>>{{"--shards", &options.shards},
                                                 {"--spare-shards", &options.spare_shards},
                                                 {"--replicas", &options.replicas},
                                                 {"--base-port", &options.base_port},
                                                 {"--proxy-port", &options.proxy_port},
                                                 {"--admin-port", &options.admin_port}}) {
    if (auto e = parse_int(given, name, *target)) return e;
  }
  // Out-of-range counts and ports are typing mistakes too, so they exit 2.
  if (auto valid = validate(options); !valid) return UsageError{valid.error().message()};
  return std::nullopt;
}

int sandbox_up_command(const Args& args) {
  SandboxOptions options = default_options(Engine::kPostgres);
  if (auto e = parse_up_options(args, options)) return usage_error(e->message);
  auto yaml = sandbox_up(options);
  if (!yaml) {
    std::cerr << "shardctl: sandbox up failed: " << yaml.error().message() << "\n";
    return kExitFailed;
  }
  std::cout << *yaml << connect_line(options) << "\n";
  return kExitOk;
}

int sandbox_down_command(const Args& args) {
  std::map<std::string, std::string> given;
  if (auto e = parse_options(args, {"--dir"}, {"--destroy"}, given)) return usage_error(e->message);
  DownOptions options;
  if (given.count("--dir")) options.dir = given["--dir"];
  if (options.dir.empty()) return usage_error("--dir must not be empty");
  options.destroy = given.count("--destroy") > 0;
  if (auto r = sandbox_down(options); !r) {
    std::cerr << "shardctl: sandbox down failed: " << r.error().message() << "\n";
    return kExitFailed;
  }
  return kExitOk;
}

// sandbox start|rejoin: one member of a running sandbox, for failover drills.
enum class MemberAction { kStart, kStop, kRejoin };

int sandbox_member_command(const Args& args, MemberAction action) {
  const bool rejoin = action == MemberAction::kRejoin;
  std::map<std::string, std::string> given;
  std::vector<std::string> with_value{"--dir", "--member"};
  if (rejoin) with_value.push_back("--primary-port");
  if (auto e = parse_options(args, with_value, {}, given)) return usage_error(e->message);
  if (!given.count("--member")) return usage_error("--member NAME is required");
  int primary_port = 0;
  if (rejoin) {
    if (!given.count("--primary-port")) return usage_error("--primary-port PORT is required");
    if (auto e = parse_int(given, "--primary-port", primary_port)) return usage_error(e->message);
  }
  const std::string dir = given.count("--dir") ? given["--dir"] : "./sandbox";
  auto r = rejoin ? sandbox_rejoin_member(dir, given["--member"], primary_port)
           : action == MemberAction::kStart ? sandbox_start_member(dir, given["--member"])
                                            : sandbox_stop_member(dir, given["--member"]);
  if (!r) {
    const char* name = rejoin ? "rejoin" : action == MemberAction::kStart ? "start" : "stop";
    std::cerr << "shardctl: sandbox " << name << " failed: " << r.error().message() << "\n";
    return kExitFailed;
  }
  return kExitOk;
}

int sandbox(const Args& args) {
  if (args.empty())
    return usage_error("sandbox needs a subcommand: up, down, start, stop or rejoin");
  const Args rest(args.begin() + 1, args.end());
  if (args[0] == "up") return sandbox_up_command(rest);
  if (args[0] == "down") return sandbox_down_command(rest);
  if (args[0] == "start") return sandbox_member_command(rest, MemberAction::kStart);
  if (args[0] == "stop") return sandbox_member_command(rest, MemberAction::kStop);
  if (args[0] == "rejoin") return sandbox_member_command(rest, MemberAction::kRejoin);
  return usage_error("unknown sandbox subcommand '" + args[0] +
                     "': use up, down, start, stop or rejoin");
}

// status and topology: one admin API call, printed as a table or JSON.
int admin_view(const Args& args,
               const std::function<Result<std::string>(const std::string&, bool)>& fetch) {
  std::map<std::string, std::string> given;
  if (auto e = parse_options(args, {"--admin", "--config"}, {"--json"}, given))
    return usage_error(e->message);
  std::string admin = given.count("--admin") ? given["--admin"] : "127.0.0.1:9930";
  if (given.count("--config")) {
    auto a = admin_from_config(given["--config"]);
    if (!a) {
      std::cerr << "shardctl: " << a.error().message() << "\n";
      return kExitFailed;
    }
    admin = *a;
  }
  auto table = fetch(admin, given.count("--json") > 0);
  if (!table) {
    std::cerr << "shardctl: " << table.error().message() << "\n";
    return kExitFailed;
  }
  std::cout << *table;
  return kExitOk;
}

int status(const Args& args) {
  return admin_view(args, fetch_status);
}
int topology(const Args& args) {
  return admin_view(args, fetch_topology);
}
std::optional<std::string> admin_address(std::map<std::string, std::string>& given) {
  if (!given.count("--config")) return given.count("--admin") ? given["--admin"] : "127.0.0.1:9930";
  auto a = admin_from_config(given["--config"]);
  if (!a) {
    std::cerr << "shardctl: " << a.error().message() << "\n";
    return std::nullopt;
  }
  return *a;
}

int hotkeys(const Args& args) {
  std::map<std::string, std::string> given;
  if (auto e = parse_options(args, {"--admin", "--config", "--shard"}, {"--json"}, given))
    return usage_error(e->message);
  auto admin = admin_address(given);
  if (!admin) return kExitFailed;
  const auto shard =
      given.count("--shard") ? std::optional<std::string>(given["--shard"]) : std::nullopt;
  auto out = fetch_hot_keys(*admin, shard, given.count("--json") > 0);
  if (!out) {
    std::cerr << "shardctl: " << out.error().message() << "\n";
    return kExitFailed;
  }
  std::cout << *out;
  return kExitOk;
}

int reshard(const Args& args) {
  if (args.empty())
    return usage_error(
        "reshard needs a subcommand: isolate, plan, start, status, verify, cutover, abort or "
        "cleanup");
  const std::string sub = args[0];
  const Args rest(args.begin() + 1, args.end());
  std::map<std::string, std::string> given;
  if (sub == "isolate") {
    if (auto e = parse_options(rest, {"--admin", "--config", "--table", "--key", "--new-shard"},
                               {"--json"}, given))
      return usage_error(e->message);
    if (!given.count("--table") || !given.count("--key"))
      return usage_error("reshard isolate needs --table T and --key K");
    auto admin = admin_address(given);
    if (!admin) return kExitFailed;
    auto out = plan_isolation(*admin, given["--table"], given["--key"], given["--new-shard"],
                              given.count("--json") > 0);
    if (!out) {
      std::cerr << "shardctl: " << out.error().message() << "\n";
      return kExitFailed;
    }
    std::cout << *out;
    return kExitOk;
  }
  if (sub == "add-shard") {
    if (auto e = parse_options(rest, {"--config", "--shard", "--admin"}, {}, given))
      return usage_error(e->message);
    if (!given.count("--config") || !given.count("--shard"))
      return usage_error(
          "reshard add-shard needs --shard NAME and --config FILE (which defines it)");
    const std::string config_path = given["--config"];
    if (given.count("--admin")) given.erase("--config");  // the proxy to tell is given
    auto admin = admin_address(given);
    if (!admin) return kExitFailed;
    auto out = add_shard_from_config(*admin, config_path, given["--shard"]);
    if (!out) {
      std::cerr << "shardctl: " << out.error().message() << "\n";
      return kExitFailed;
    }
    std::cout << *out;
    return kExitOk;
  }
  if (auto e = parse_options(rest,
                             {"--admin", "--config", "--split", "--merge", "--rebalance", "--into",
                              "--with", "--at", "--database", "--table", "--key"},
                             {"--json", "--wait", "--auto-cutover", "--isolate"}, given))
    return usage_error(e->message);
  auto admin = admin_address(given);
  if (!admin) return kExitFailed;
  if (sub == "status") {
    auto out = reshard_status(*admin, given.count("--json") > 0);
    if (!out) {
      std::cerr << "shardctl: " << out.error().message() << "\n";
      return kExitFailed;
    }
    std::cout << *out;
    return kExitOk;
  }
  std::map<std::string, std::string> params;
  if (sub == "plan" || sub == "start") {
    const int kinds = static_cast<int>(given.count("--split") + given.count("--merge") +
                                       given.count("--rebalance") + given.count("--isolate"));
    if (kinds != 1)
      return usage_error("reshard " + sub +
                         " needs one of --split S --into SPARE, --merge S --into NEIGHBOUR, "
                         "--rebalance LEFT --with RIGHT --at HEX, --isolate --table T --key K "
                         "--into SPARE");
    if (given.count("--isolate")) {
      if (!given.count("--table") || !given.count("--key"))
        return usage_error("--isolate needs --table T and --key K");
      params = {{"kind", "isolate"},
                {"table", given["--table"]},
                {"key", given["--key"]},
                {"target", given["--into"]}};
    } else if (given.count("--split")) {
      params = {{"kind", "split"}, {"source", given["--split"]}, {"target", given["--into"]}};
    } else if (given.count("--merge")) {
      params = {{"kind", "merge"}, {"source", given["--merge"]}, {"target", given["--into"]}};
    } else {
      params = {
          {"kind", "rebalance"}, {"source", given["--rebalance"]}, {"target", given["--with"]}};
    }
    if (params["target"].empty()) return usage_error("name the other shard (--into / --with)");
    params["at"] = given["--at"];
    params["database"] = given["--database"];
    if (given.count("--auto-cutover")) params["auto_cutover"] = "1";
  } else if (sub != "verify" && sub != "cutover" && sub != "abort" && sub != "cleanup") {
    return usage_error("unknown reshard subcommand '" + sub + "'");
  }
  auto out = reshard_step(*admin, sub, params);
  if (!out) {
    std::cerr << "shardctl: " << out.error().message() << "\n";
    return kExitFailed;
  }
  std::cout << *out;
  if (sub == "start" && given.count("--wait")) {
    for (;;) {
      auto status = reshard_status(*admin, false);
      if (!status) {
        std::cerr << "shardctl: " << status.error().message() << "\n";
        return kExitFailed;
      }
      const bool copying = status->find("state: copying") != std::string::npos ||
                           status->find("state: repairing") != std::string::npos;
      if (!copying) {
        std::cout << *status;
        return status->find("state: paused") != std::string::npos ? kExitFailed : kExitOk;
      }
      if (isatty(STDERR_FILENO)) {
        const auto bar = status->find("copy:");
        std::cerr << "\r" << status->substr(bar, status->find('\n', bar) - bar) << std::flush;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  }
  return kExitOk;
}

// A planned switchover: the proxy pauses the shard's writes, fences the
// primary, promotes a replica once it has every write, and answers the report.
int failover(const Args& args) {
  std::map<std::string, std::string> given;
  if (auto e = parse_options(args, {"--shard", "--to", "--admin", "--config"}, {}, given))
    return usage_error(e->message);
  if (!given.count("--shard")) return usage_error("--shard S is required");
  auto admin = admin_address(given);
  if (!admin) return kExitFailed;
  std::string target = "/api/v1/failover?shard=" + given["--shard"];
  if (given.count("--to")) target += "&to=" + given["--to"];
  auto reply = admin_request(*admin, true, target);
  if (!reply) {
    std::cerr << "shardctl: " << reply.error().message() << "\n";
    return kExitFailed;
  }
  std::cout << reply->body;
  return reply->status == 200 ? kExitOk : kExitFailed;
}

int drill(const Args& args) {
  if (args.empty() || args[0] != "failover")
    return usage_error("drill needs a subcommand: failover");
  std::map<std::string, std::string> given;
  if (auto e =
          parse_options(Args(args.begin() + 1, args.end()),
                        {"--dir", "--shard", "--kill", "--stop", "--pause", "--partition", "--load",
                         "--duration", "--writers", "--pause-ms", "--pauses", "--lag-ms"},
                        {"--switchover", "--rejoin", "--lose-data", "--prepared", "--json"}, given))
    return usage_error(e->message);
  DrillOptions o;
  if (given.count("--dir")) o.dir = given["--dir"];
  if (given.count("--shard")) o.shard = given["--shard"];
  int faults = 0;
  for (const char* f : {"--kill", "--stop", "--pause", "--partition"}) {
    if (!given.count(f)) continue;
    ++faults;
    if (given[f] != "primary") return usage_error(std::string(f) + " takes 'primary'");
    o.fault = std::string(f).substr(2);
  }
  if (given.count("--switchover")) {
    ++faults;
    o.fault = "switchover";
  }
  if (faults > 1) return usage_error("choose one fault");
  for (const auto& [name, target] :
       std::vector<std::pair<std::string, int*>>{{"--load", &o.load},
                                                 {"--duration", &o.duration},
                                                 {"--writers", &o.writers},
                                                 {"--pause-ms", &o.pause_ms},
                                                 {"--pauses", &o.pauses},
                                                 {"--lag-ms", &o.lag_ms}}) {
    if (auto e = parse_int(given, name, *target)) return usage_error(e->message);
  }
  if (o.load < 1 || o.duration < 3 || o.writers < 1 || o.pauses < 1)
    return usage_error("--load >= 1, --duration >= 3, --writers >= 1 and --pauses >= 1");
  o.rejoin = given.count("--rejoin") > 0;
  o.lose_data = given.count("--lose-data") > 0;
  o.prepared = given.count("--prepared") > 0;
  o.json = given.count("--json") > 0;
  auto outcome = run_failover_drill(o);
  if (!outcome) {
    std::cerr << "shardctl: drill failover: " << outcome.error().message() << "\n";
    return kExitFailed;
  }
  std::cout << outcome->text;
  return outcome->passed ? kExitOk : kExitFailed;
}

int help(const Args&) {
  std::cout << kUsage;
  return kExitOk;
}

// One row per top-level command; new commands (status, failover...) go here.
const std::map<std::string, std::function<int(const Args&)>>& commands() {
  static const std::map<std::string, std::function<int(const Args&)>> table{
      {"sandbox", sandbox}, {"status", status},   {"topology", topology},
      {"hotkeys", hotkeys}, {"reshard", reshard}, {"failover", failover},
      {"drill", drill},     {"help", help},       {"--help", help},
      {"-h", help}};
  return table;
}

int run(const Args& args) {
  if (args.empty()) return usage_error("no command given");
  const auto it = commands().find(args[0]);
  if (it == commands().end()) return usage_error("unknown command '" + args[0] + "'");
  return it->second(Args(args.begin() + 1, args.end()));
}

}  // namespace
}  // namespace shardgate::shardctl

int main(int argc, char** argv) {
  // Exceptions (filesystem errors, allocation failure) end here, at the top,
  // as one readable line instead of std::terminate.
  try {
    return shardgate::shardctl::run(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const std::exception& e) {
    std::cerr << "shardctl: " << e.what() << "\n";
    return 1;
  }
}
