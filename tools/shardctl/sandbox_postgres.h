// `shardctl sandbox up|down` for PostgreSQL: real servers with streaming
// replication on loopback, one primary and R replicas per shard, plus the
// shardgate.yaml that points the proxy at them.
#pragma once

#include <string>

#include "common/result.h"
#include "tools/shardctl/sandbox_config.h"

namespace shardgate::shardctl {

// Starts the sandbox (or finds it already running exactly as asked), writes
// DIR/shardgate.yaml and returns its text. Progress goes to stderr. On failure
// the servers it started are stopped again and the error says what to do.
Result<std::string> postgres_sandbox_up(SandboxOptions options);

// Stops every server under DIR (fast, then immediate, then SIGKILL, each bounded
// in time); with `destroy`, removes DIR afterwards. Nothing running is success.
Result<void> postgres_sandbox_down(DownOptions options);

}  // namespace shardgate::shardctl
