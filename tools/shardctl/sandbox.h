// `shardctl sandbox up|down`: real database servers with replication on
// loopback, one primary and R replicas per shard, plus the shardgate.yaml that
// points the proxy at them.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>

#include "common/result.h"
#include "tools/shardctl/sandbox_config.h"

namespace shardgate::shardctl {

// Starts the sandbox of options.engine (or finds it already running exactly as
// asked), writes DIR/shardgate.yaml and returns its text. Progress goes to
// stderr. On failure the servers it started are stopped again and the error
// says what to do.
Result<std::string> sandbox_up(const SandboxOptions& options);

// Stops every server under DIR, whatever its engine (each wait bounded in
// time); with `destroy`, removes DIR afterwards. Nothing running is success.
Result<void> sandbox_down(const DownOptions& options);

// Failover drills on a running sandbox, one member (its directory name in
// DIR, e.g. pg-s0-primary) at a time:
// Sends `signal` to the member's server (SIGKILL: a crash; SIGTERM: a clean
// stop); an error when it does not run.
Result<pid_t> sandbox_signal_member(const std::filesystem::path& dir, const std::string& member,
                                    int signal);
// Stops the member's server cleanly (bounded waits).
Result<void> sandbox_stop_member(const std::filesystem::path& dir, const std::string& member);
// Starts the member's stopped server again and waits until it accepts connections.
Result<void> sandbox_start_member(const std::filesystem::path& dir, const std::string& member);
// Makes an old primary a replica of the server on primary_port (PostgreSQL:
// pg_rewind, then a standby; MariaDB: a start, the proxy repoints it; a
// rebuild from the new primary when it holds writes the new primary lacks,
// or has no data any more).
Result<void> sandbox_rejoin_member(const std::filesystem::path& dir, const std::string& member,
                                   int primary_port);
// A lost machine: waits (bounded) until the killed server `pid` is gone and
// deletes its data (its configuration stays, so that it can be rebuilt).
Result<void> sandbox_destroy_member_data(const std::filesystem::path& dir,
                                         const std::string& member, pid_t pid);

}  // namespace shardgate::shardctl
