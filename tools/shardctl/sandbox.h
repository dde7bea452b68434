// `shardctl sandbox up|down`: real database servers with replication on
// loopback, one primary and R replicas per shard, plus the shardgate.yaml that
// points the proxy at them.
#pragma once

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

}  // namespace shardgate::shardctl
