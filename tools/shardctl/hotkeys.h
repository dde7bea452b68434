// `shardctl hotkeys`: the proxy's hot-key report (GET /api/v1/hotkeys) as
// tables: shard load, then the heaviest keys with their rates and shares.
#pragma once

#include <optional>
#include <string>

#include "common/result.h"

namespace shardgate::shardctl {

// admin is "host:port" of the proxy's admin listener; shard limits the
// report to one shard (by name). Returns the tables, or the raw JSON.
Result<std::string> fetch_hot_keys(const std::string& admin,
                                   const std::optional<std::string>& shard, bool json);

}  // namespace shardgate::shardctl
