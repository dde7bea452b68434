// What the monitor reports about each backend, for every engine.
//
// The monitor thread (replication/monitor.h) probes every backend each
// interval and publishes the result as an immutable HealthSnapshot. The data
// path only ever loads the latest snapshot (a shared_ptr copy): it never waits
// for a probe, and a hung server delays nothing but its own probe.
//
// Positions are one uint64 per backend, ordered within a shard, so failover
// and the read-your-writes rule compare them without knowing the engine:
//   PostgreSQL: a WAL LSN (bytes);
//   MySQL/MariaDB: the seq_no of the backend's GTID in replication domain 0
//   (transactions). See replication/mysql_monitor.h.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace shardgate::replication {

struct ProbeTarget {
  std::string name;
  std::string host;
  uint16_t port = 0;  // 0: the client library's default (5432, 3306)
  // When set, used instead of host. PostgreSQL: the directory holding the
  // socket. MySQL: the socket file itself (MariaDB names the file, not a dir).
  std::string unix_socket_dir;
  uint32_t shard = 0;
  bool configured_primary = false;
};

struct MonitorOptions {
  // database: PostgreSQL only (libpq needs one). The MySQL probe reads only
  // global variables and connects without a default schema, so a missing or
  // unreadable schema cannot make a healthy server look down.
  std::string user, password, database = "postgres";
  std::chrono::milliseconds interval{250};
  // Also the most a round waits for any one backend (with interval, whichever
  // is shorter): it bounds connecting and waiting for the probe's answer.
  std::chrono::milliseconds connect_timeout{1000};
  uint32_t failures_before_down = 3;  // 0 is treated as 1
};

enum class ObservedRole { Unknown, Primary, Replica };

struct BackendHealth {
  bool up = true;
  ObservedRole role = ObservedRole::Unknown;
  // The backend's position, 0 when unknown:
  //   PostgreSQL primary: pg_current_wal_lsn(); replica: pg_last_wal_replay_lsn().
  //   MySQL: seq_no of @@gtid_current_pos in domain 0; on a replica that is
  //   what it has applied (its gtid_slave_pos), on a primary what it wrote.
  // After a failed probe role, lsn and receive_lsn keep the values of the last
  // successful probe (failover wants the last known position); last_success
  // says how old they are.
  uint64_t lsn = 0;
  // Replica only, 0 when unknown. PostgreSQL: pg_last_wal_receive_lsn().
  // MySQL: seq_no of the IO thread's Gtid_IO_Pos (received, maybe not yet
  // applied), or lsn when the replica does not replicate by GTID.
  uint64_t receive_lsn = 0;
  // Replica only: its shard primary's lsn minus its own lsn, clamped at 0,
  // when both were probed successfully in the same round. The unit is the
  // position's: bytes of WAL for PostgreSQL, transactions (GTIDs) behind for
  // MySQL. The name stays for the existing users.
  std::optional<uint64_t> lag_bytes;
  // Replica only, as of the last successful probe: its replication stream
  // from the primary is connected (PostgreSQL: the WAL receiver streams;
  // MariaDB: Slave_IO_Running is Yes). Failover asks the replicas whether
  // they lost the primary too before it believes the primary is dead.
  bool upstream_connected = false;
  // As of the last successful probe: the server is set up to replicate from
  // somewhere (PostgreSQL: in recovery; MariaDB: SHOW ALL SLAVES STATUS has
  // a row, running or not). A read-only server without it is a primary that
  // restarted with read_only in its configuration, not a replica.
  bool replication_configured = false;
  uint32_t consecutive_failures = 0;
  std::string last_error;  // empty after a successful probe
  std::chrono::steady_clock::time_point last_success{};
};

struct HealthSnapshot {
  uint64_t generation = 0;  // rounds completed; 0 is the optimistic initial snapshot
  std::chrono::steady_clock::time_point round_started{};
  std::vector<BackendHealth> backends;  // same order as the targets
};

// What one probe of one backend found in one round.
struct ProbeOutcome {
  bool ok = false;
  ObservedRole role = ObservedRole::Unknown;
  std::optional<uint64_t> lsn;          // unknown (e.g. NULL from the server): nullopt
  std::optional<uint64_t> receive_lsn;  // unknown: nullopt
  bool upstream_connected = false;      // replica only; see BackendHealth
  bool replication_configured = false;  // see BackendHealth
  std::string error;                    // set when !ok
  std::chrono::steady_clock::time_point finished{};
};

// A failed outcome carrying `error`.
ProbeOutcome probe_failure(std::string error);

// Pure: the snapshot that follows `previous` given this round's outcomes (one
// per target, same order). Exposed so the up/down and lag rules can be tested
// without servers.
HealthSnapshot next_snapshot(const HealthSnapshot& previous,
                             const std::vector<ProbeTarget>& targets,
                             const std::vector<ProbeOutcome>& outcomes,
                             uint32_t failures_before_down,
                             std::chrono::steady_clock::time_point round_started);

}  // namespace shardgate::replication
