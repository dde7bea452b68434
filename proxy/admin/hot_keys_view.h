// How the admin listener shows hot-key detection: GET /api/v1/hotkeys and
// the Prometheus lines. Pure renderings of one report.
#pragma once

#include <optional>
#include <string>

#include "proxy/hot_key_watch.h"
#include "router/topology.h"

namespace shardgate::admin {

// shard: only that shard's keys (by name); nullopt: every shard. An unknown
// shard name is an error message.
struct HotKeysQuery {
  std::optional<std::string> shard;
};

// The JSON document of GET /api/v1/hotkeys, or an error for the client.
Result<std::string> hot_keys_json(const HotKeyWatch* watch, const router::HotKeySettings* settings,
                                  const router::Topology& topology, const HotKeysQuery& query);

// Gauges of the top keys' rates, shard load shares and skew, and counters
// of hot/cool events; empty when detection is off.
std::string hot_keys_metrics(const HotKeyWatch* watch, const router::Topology& topology);

// "shard=s1" -> HotKeysQuery; an unknown parameter is an error.
Result<HotKeysQuery> parse_hot_keys_query(const std::string& query);

}  // namespace shardgate::admin
