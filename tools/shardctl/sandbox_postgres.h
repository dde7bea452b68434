// The PostgreSQL servers of `shardctl sandbox up|down`: real servers with
// streaming replication on loopback, one primary and R replicas per shard.
#pragma once

#include <memory>

#include "tools/shardctl/sandbox_common.h"

namespace shardgate::shardctl {

std::unique_ptr<SandboxEngine> make_postgres_engine();

}  // namespace shardgate::shardctl
