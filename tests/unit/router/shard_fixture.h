// Shared by the sharding unit tests: ok() and a four-shard topology with hash-sharded
// users(id) and orders(user_id), text-keyed accounts(email), range-sharded
// events(id) and items(id) (with different ranges), reference table
// countries, and everything else unsharded on shard s0.
#pragma once

#include <gtest/gtest.h>

#include "router/shard_map.h"
#include "router/topology.h"

namespace shardgate::router::testing {

// The value of a Result the test expects to succeed (a failure is reported).
template <class T>
T ok(Result<T> r) {
  EXPECT_TRUE(r) << (r ? "" : r.error().message());
  return r ? *r : T{};
}

inline Topology four_shards() {
  Topology t;
  const auto ranges = even_key_ranges(4);
  for (std::uint32_t s = 0; s < 4; ++s) {
    ShardInfo info;
    info.name = "s" + std::to_string(s);
    info.primary = s;
    info.key_range = ranges[s];
    t.shards.push_back(info);
    BackendInfo b;
    b.index = s;
    b.name = info.name + "-primary";
    b.role = MemberRole::Primary;
    b.shard = s;
    t.backends.push_back(b);
  }
  auto table = [](std::string name, std::string column) {
    ShardedTable st;
    st.name = std::move(name);
    st.column = std::move(column);
    return st;
  };
  t.sharding.tables.push_back(table("users", "id"));
  t.sharding.tables.push_back(table("orders", "user_id"));
  ShardedTable accounts = table("accounts", "email");
  accounts.key_type = KeyType::Text;
  t.sharding.tables.push_back(accounts);
  ShardedTable events = table("events", "id");
  events.strategy = ShardStrategy::Range;
  events.ranges = {{false, 0, true, 100, 0}, {true, 100, true, 200, 1}, {true, 200, false, 0, 2}};
  t.sharding.tables.push_back(events);
  ShardedTable items = table("items", "id");
  items.strategy = ShardStrategy::Range;
  items.ranges = {{false, 0, true, 1000, 3}, {true, 1000, false, 0, 2}};
  t.sharding.tables.push_back(items);
  t.sharding.reference_tables = {"countries"};
  return t;
}

}  // namespace shardgate::router::testing
