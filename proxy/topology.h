// Builds the data path's Topology from a validated config cluster.
#pragma once

#include "common/result.h"
#include "proxy/config/config.pb.h"
#include "router/topology.h"

namespace shardgate {

router::Topology topology_from_config(const config::Cluster& cluster);
// The data path's view of a stored version: topology_from_config plus the
// record's version, reason and time.
router::Topology topology_from_record(const config::TopologyRecord& record);

// The version after a failover of shard `shard` to backend `new_primary`
// (by name): it becomes the primary, the old primary a fenced replica, the
// shard's epoch grows by one. Version + 1; the config digest stays, so a
// restart with the same config file keeps serving this version.
config::TopologyRecord promoted_record(const config::TopologyRecord& current, int shard,
                                       const std::string& new_primary, const std::string& reason);
// The version in which fenced backend `name` serves again, as a replica.
config::TopologyRecord rejoined_record(const config::TopologyRecord& current,
                                       const std::string& name, const std::string& reason);

// The version after a resharding cutover: every shard's key range written
// out explicitly (equal slices from the config become explicit), the
// source's and target's as the plan says. Version + 1.
config::TopologyRecord resharded_record(const config::TopologyRecord& current,
                                        const std::string& source, const std::string& source_range,
                                        const std::string& target, const std::string& target_range,
                                        const std::string& reason);

// The version with `shard` added as a spare (key_range: none) after the
// others: names must be new, one backend the primary, ports set. Version + 1.
Result<config::TopologyRecord> with_spare_shard(const config::TopologyRecord& current,
                                                const config::Shard& shard,
                                                const std::string& reason);

}  // namespace shardgate
