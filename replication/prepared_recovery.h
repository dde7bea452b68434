// Resolves the transactions a proxy left prepared on its shards (two-phase
// commit, proxy/txn): each one named with this proxy's prefix is committed
// when the coordinator decided so, and rolled back otherwise (presumed
// abort), except the running process's own undecided ones. Runs at start-up, before clients are
// served, and from the resolver thread for decided commits whose second phase did not finish.
//
// Control plane: blocking libpq / MariaDB Connector/C with a connect timeout.
// A prepared transaction can be finished by the user who prepared it (or a
// superuser), in its database: the proxy logs in with each configured
// server login in turn.
#pragma once

#include <chrono>
#include <functional>
#include <set>
#include <string>
#include <vector>

namespace shardgate::replication {

struct RecoveryServer {
  std::string shard;  // name, for messages
  std::string host;   // or, when set, the socket below
  unsigned port = 0;
  std::string unix_socket_dir;  // PostgreSQL
  std::string unix_socket;      // MySQL
};

struct RecoveryLogin {
  std::string user;
  std::string password;
};

struct RecoveryOptions {
  bool mysql = false;
  std::string prefix;         // only names starting with it are touched
  std::string list_database;  // PostgreSQL: where to read pg_prepared_xacts
  std::chrono::milliseconds connect_timeout{2000};
  // Names of the running proxy's own transactions, which its sessions may
  // still be deciding: left alone unless decided. What carries the prefix
  // but not this one is an earlier run's, and rolls back without a decision.
  std::string live_prefix;
};

struct RecoveryReport {
  int committed = 0;
  int rolled_back = 0;
  std::set<std::string> still_prepared;  // names left prepared (an error, or not decided)
  std::vector<std::string> errors;
  bool every_server_read = true;  // false: some server could not be listed
};

RecoveryReport resolve_prepared(const std::vector<RecoveryServer>& primaries,
                                const std::vector<RecoveryLogin>& logins,
                                const RecoveryOptions& options,
                                const std::function<bool(const std::string& gid)>& decided_commit);

}  // namespace shardgate::replication
