// `shardctl drill failover`: a failover rehearsal on a running sandbox and
// its proxy. Writers insert unique ids through the proxy at a steady rate; a
// third of the way in the shard's primary is killed (or stopped, or paused,
// or switched over); the drill waits for the proxy's failover report, then
// checks on the new primary, directly, that every acknowledged id is there.
#pragma once

#include <filesystem>
#include <string>

#include "common/result.h"

namespace shardgate::shardctl {

struct DrillOptions {
  std::filesystem::path dir = "./sandbox";  // the sandbox; its shardgate.yaml names the proxy
  std::string shard = "s0";
  // kill: SIGKILL of the primary (a crash); stop: a clean shutdown;
  // pause: SIGSTOP for pause_ms then SIGCONT (a hung primary the replicas
  // still hold: must NOT fail over), `pauses` times with pause_ms / 2 of
  // running between (a primary whose probes flap); switchover: shardctl
  // failover.
  std::string fault = "kill";
  int pause_ms = 1500;
  int pauses = 1;
  int load = 200;     // writes per second, all writers together
  int duration = 10;  // seconds of load
  int writers = 4;
  // After the failover: bring the old primary back as a replica (PostgreSQL:
  // pg_rewind; MariaDB: restart) and wait until the proxy serves it again.
  bool rejoin = false;
  // Replication made to lag on purpose: for lag_ms before the fault the
  // replicas receive nothing, so the primary alone acknowledges writes that
  // only the proxy's write journal can then supply.
  int lag_ms = 0;
  // A lost machine: the old primary's data directory is deleted after the
  // kill, so nothing can be fetched from it. MariaDB only.
  bool lose_data = false;
  // Writers use server-side prepared statements (MySQL) or the extended
  // protocol (PostgreSQL) instead of plain statement text.
  bool prepared = false;
  bool json = false;
};

struct DrillOutcome {
  std::string text;  // the report (JSON with DrillOptions::json)
  bool passed = false;
};

Result<DrillOutcome> run_failover_drill(const DrillOptions& options);

}  // namespace shardgate::shardctl
