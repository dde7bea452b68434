// Health and replication-position monitor for MariaDB backends.
//
// The engine-neutral machinery (thread, rounds, snapshots) is Monitor
// (replication/monitor.h); this file adds the MariaDB probe, over MariaDB
// Connector/C's non-blocking API, and the pure reading of what it returns.
//
// Positions. A MariaDB GTID is domain-server_id-seq_no; seq_no grows by one
// per transaction within a domain, across failovers. shardgate's topologies
// replicate in one domain (0), so a backend's position is the seq_no of its
// domain-0 GTID, and BackendHealth::lag_bytes counts transactions behind.
//
// Written for MariaDB 10.11 (@@gtid_current_pos, SHOW ALL SLAVES STATUS);
// MySQL's GTIDs (uuid:interval sets) are not read here. The monitor user needs
// SLAVE MONITOR (for SHOW ALL SLAVES STATUS); a probe without it fails with
// the server's "Access denied" message rather than guess whether the server
// replicates.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "replication/health.h"
#include "replication/monitor.h"

namespace shardgate::replication {

// The seq_no of `domain`'s GTID in a MariaDB GTID list ("0-1-42,1-2-7" as in
// @@gtid_current_pos or Gtid_IO_Pos). nullopt when the list has no GTID of
// that domain (an empty list: no transaction yet). When the domain appears
// more than once (a gtid_binlog_state-style list, one GTID per server_id) the
// highest seq_no. Blanks around the commas are accepted (the server may print
// a newline there); anything else that is not domain-server_id-seq_no in
// decimal is an error, never a guess: a misread position could pick the wrong
// failover candidate.
Result<std::optional<uint64_t>> parse_gtid_seq(std::string_view gtid_list, uint32_t domain);

// What one probe statement returned, as the server's text; nullopt for NULL.
struct MySqlProbeRow {
  std::optional<std::string> read_only;         // @@global.read_only
  std::optional<std::string> log_bin;           // @@global.log_bin
  std::optional<std::string> gtid_current_pos;  // @@global.gtid_current_pos
  // One per replication connection (SHOW ALL SLAVES STATUS), usually 0 or 1.
  struct Replication {
    std::string io_running;   // Slave_IO_Running: Yes, No, Connecting, Preparing
    std::string sql_running;  // Slave_SQL_Running: Yes, No
    std::string gtid_io_pos;  // Gtid_IO_Pos: empty unless replicating by GTID
  };
  std::vector<Replication> replication;
};

// Pure: the outcome a probe row means, for replication domain `domain`.
//  - Replica when read_only is on or a replication connection is running
//    (its SQL thread runs, or its IO thread runs or is trying to connect,
//    as after its primary died); Primary otherwise.
//  - lsn: seq_no of @@gtid_current_pos, 0 when the domain has none yet. For a
//    replica that is what it has applied (gtid_slave_pos); for a primary, what
//    it has written; for a fenced old primary (read-only, not replicating),
//    its own binlog position where gtid_slave_pos would be stale. A primary
//    without a binlog has no position (nullopt).
//  - receive_lsn, replica only: the highest Gtid_IO_Pos seq_no, at least lsn.
// Any unreadable value makes an error, not a guessed role or position.
Result<ProbeOutcome> interpret_mysql_probe(const MySqlProbeRow& row, uint32_t domain = 0);

// A Monitor whose probes ask each MariaDB backend, in one round trip, its
// read_only flag, GTID position and replication connections.
class MySqlMonitor final : public Monitor {
 public:
  MySqlMonitor(std::vector<ProbeTarget> targets, MonitorOptions options);
};

// The MariaDB probe on its own, for a Monitor built by hand.
std::unique_ptr<ProbeConnection> make_mysql_probe(const ProbeTarget& target,
                                                  const MonitorOptions& options);

}  // namespace shardgate::replication
