// `shardctl reshard ...`: isolate asks the proxy for its topology and prints
// the plan that gives a key a shard of its own (router/isolate_plan.h);
// plan, start, status, verify, cutover, abort and cleanup drive the proxy's
// resharding job (proxy/reshard) through the admin API.
#pragma once

#include <map>
#include <string>

#include "common/result.h"

namespace shardgate::shardctl {

Result<std::string> plan_isolation(const std::string& admin, const std::string& table,
                                   const std::string& key, const std::string& new_shard, bool json);

// POST /api/v1/reshard?op=OP&...: the proxy's answer (its message), or its error.
Result<std::string> reshard_step(const std::string& admin, const std::string& op,
                                 const std::map<std::string, std::string>& params);
// Tells the running proxy about shard `shard` of the config file at
// `config_path` (a spare, key_range: none): POST /api/v1/shards.
Result<std::string> add_shard_from_config(const std::string& admin, const std::string& config_path,
                                          const std::string& shard);
// The job's progress: state, a bar of rows copied, rate, ETA, pending keys,
// write pauses; the raw JSON with `json`.
Result<std::string> reshard_status(const std::string& admin, bool json);

}  // namespace shardgate::shardctl
