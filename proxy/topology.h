// Builds the data path's Topology from a validated config cluster.
#pragma once

#include "proxy/config/config.pb.h"
#include "router/topology.h"

namespace shardgate {

router::Topology topology_from_config(const config::Cluster& cluster);

}  // namespace shardgate
