// `shardctl reshard isolate --table T --key K`: asks the proxy for its
// topology and prints the plan that gives the key a shard of its own
// (router/isolate_plan.h). Carrying plans out is online resharding (issue 7).
#pragma once

#include <string>

#include "common/result.h"

namespace shardgate::shardctl {

Result<std::string> plan_isolation(const std::string& admin, const std::string& table,
                                   const std::string& key, const std::string& new_shard, bool json);

}  // namespace shardgate::shardctl
