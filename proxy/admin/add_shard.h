// POST /api/v1/shards: a shard added to the running proxy as a spare
// (key_range: none), the target of a later resharding job. Its backends get
// pools, monitoring and failover like the others from the next topology
// version on; it owns no keys until a cutover gives it some.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace shardgate {
struct ProxyContext;
class FailoverController;
namespace replication {
class Monitor;
}

// `body`: {"name": "s2", "backends": [{"name", "host", "port", "role"
// ("primary" | "replica"), optional "unix_socket_dir", "unix_socket",
// "zone", "priority"}]}. Returns what was done, for the operator.
Result<std::string> add_spare_shard(ProxyContext& ctx, FailoverController& failover,
                                    replication::Monitor& monitor, std::string_view body);

}  // namespace shardgate
