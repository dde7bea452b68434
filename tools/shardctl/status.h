// `shardctl status`: the proxy's view of its backends, as a table.
#pragma once

#include <string>

#include "common/result.h"

namespace shardgate::shardctl {

// admin is "host:port" of the proxy's admin listener. Returns the table, or
// the raw JSON when json is set.
Result<std::string> fetch_status(const std::string& admin, bool json);

// `shardctl topology`: shards, key ranges, members and table sharding.
Result<std::string> fetch_topology(const std::string& admin, bool json);

// Reads admin.address/admin.port from a shardgate config file.
Result<std::string> admin_from_config(const std::string& config_path);

}  // namespace shardgate::shardctl
