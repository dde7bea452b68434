// The differential sharding test both engines run: one seeded random workload
// (inserts, point reads, keyless ranges, ORDER BY/LIMIT/OFFSET, aggregates,
// GROUP BY, DISTINCT, IN lists, updates, deletes, transactions) through
// shardgate over several shards and directly against one unsharded database.
// Every read must answer the same rows: as sets, or in order where ORDER BY
// fixes it. The table is orders(id, user_id, total, note), sharded by user_id.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace shardgate::it {

// Result rows, every column as text (NULL as the side's own spelling).
using Table = std::vector<std::vector<std::string>>;

// One database as the workload sees it.
struct DifferentialSide {
  // Runs a statement that returns no rows; false (and the error) on failure.
  std::function<bool(const std::string& sql, std::string* error)> exec;
  std::function<std::optional<Table>(const std::string& sql, std::string* error)> rows;
};

struct DifferentialDialect {
  std::string begin;  // "BEGIN" / "START TRANSACTION"
  // "LIMIT 10 OFFSET 5" in PostgreSQL, "LIMIT 5, 10" in MySQL
  std::function<std::string(int offset, int count)> limit;
  // Notes the rows carry; mixed case where the collation ignores case.
  std::vector<std::string> notes;
};

// Runs the workload; returns how many reads were compared (mismatches are
// gtest failures that show both results).
int run_differential_workload(const DifferentialSide& sharded, const DifferentialSide& single,
                              const DifferentialDialect& dialect, unsigned seed);

}  // namespace shardgate::it
