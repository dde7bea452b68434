// The MariaDB servers of `shardctl sandbox up|down --engine mysql`: real
// servers with GTID replication on loopback, one primary and R replicas per
// shard. Each member's directory holds its my.cnf and data/; pid files and logs
// are in DIR/logs, sockets in DIR/run.
#pragma once

#include <memory>

#include "tools/shardctl/sandbox_common.h"

namespace shardgate::shardctl {

std::unique_ptr<SandboxEngine> make_mysql_engine();

}  // namespace shardgate::shardctl
