// Health and replication-position monitor for PostgreSQL backends.
//
// The engine-neutral machinery (thread, rounds, snapshots) is Monitor
// (replication/monitor.h); this file adds the PostgreSQL probe, over libpq's
// non-blocking API, and the pg_lsn text format.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "replication/health.h"
#include "replication/monitor.h"

namespace shardgate::replication {

// "16/B374D848" -> 0x16B374D848, as PostgreSQL's pg_lsn type reads it.
Result<uint64_t> parse_lsn(std::string_view text);
std::string format_lsn(uint64_t lsn);

// A Monitor whose probes ask each PostgreSQL backend, in one statement,
// whether it is in recovery and its WAL position.
class PgMonitor final : public Monitor {
 public:
  PgMonitor(std::vector<ProbeTarget> targets, MonitorOptions options);
};

// The PostgreSQL probe on its own, for a Monitor built by hand.
std::unique_ptr<ProbeConnection> make_pg_probe(const ProbeTarget& target,
                                               const MonitorOptions& options);

}  // namespace shardgate::replication
