// How a read that needs several shards is run and its answers combined: the
// text each shard runs (LIMIT pushed down as LIMIT offset+limit, AVG split
// into SUM and a hidden COUNT) and what the merger does with the rows
// (concatenate, k-way merge by ORDER BY, aggregate by GROUP BY, DISTINCT,
// then OFFSET/LIMIT). Pure; a statement it cannot combine correctly is an
// error that says why, never a guess.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "router/statement.h"

namespace shardgate::router {

enum class Aggregate : std::uint8_t { None, Count, Sum, Min, Max, Avg };

// A column named by ORDER BY or GROUP BY: a 1-based position in the select
// list, or a name matched against the result's column names at run time.
struct ColumnRef {
  std::size_t position = 0;  // 0 when by name
  std::string name;          // lower case (PostgreSQL folds unquoted names)
};

struct OrderKey {
  ColumnRef column;
  bool descending = false;
};

struct MergePlan {
  std::string shard_sql;  // what every shard runs
  // One entry per select-list item the client sees, in order: how groups
  // combine it (None: a grouping column or plain value).
  std::vector<Aggregate> aggregates;
  bool aggregating = false;  // GROUP BY or any aggregate: rows combine per group
  std::vector<ColumnRef> group_by;
  std::vector<OrderKey> order_by;
  bool distinct = false;
  std::uint64_t offset = 0;
  std::optional<std::uint64_t> limit;
  // AVG items: for item i, the hidden COUNT column the shards append (its
  // 0-based index in the shards' rows); the client sees the first
  // aggregates.size() columns.
  std::vector<std::pair<std::size_t, std::size_t>> avg_counts;
};

Result<MergePlan> plan_merge(std::string_view sql, Dialect dialect);

}  // namespace shardgate::router
