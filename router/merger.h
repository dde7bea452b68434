// The merge of one statement's rows from several shards, sans-io: the session
// pushes each shard's rows as it reads them and pulls merged rows for the
// client. Memory stays bounded by what the plan needs: one row per shard for
// ORDER BY (k-way merge), nothing for concatenation, one row per group for
// GROUP BY, aggregates and DISTINCT. The merger says which shard it needs a
// row from next, so the session reads only that shard's socket.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "router/merge_plan.h"
#include "router/statement.h"

namespace shardgate::router {

// How a column's text values compare and add up.
enum class ValueKind : std::uint8_t {
  Integer,  // int2/4/8, MySQL integer types
  Number,   // numeric/decimal/float: compared and added as numbers
  Text,     // byte order (PostgreSQL C collation, MySQL binary collations)
  TextCi,   // MySQL case-insensitive collations: ASCII case folded
};

using Row = std::vector<std::optional<std::string>>;

class Merger {
 public:
  Merger(const MergePlan& plan, std::size_t shards, Dialect dialect);

  // The columns of the shards' rows (visible ones first, then the hidden
  // AVG counts). Resolves ORDER BY and GROUP BY names; an error refuses the
  // statement (a name that is not a result column).
  Result<void> set_columns(const std::vector<std::string>& names,
                           const std::vector<ValueKind>& kinds);

  // The shard to read a row from next, or nullopt when next() can go on.
  std::optional<std::size_t> wants() const;
  void push(std::size_t shard, Row row);
  void end(std::size_t shard);  // the shard's rows are over

  // The next row for the client (visible columns only); nullopt when more
  // input is needed or the result is complete (see finished()).
  std::optional<Row> next();
  bool finished() const;
  // Once the LIMIT is reached the remaining rows of the shards are not needed.
  bool limit_reached() const { return plan_.limit && emitted_ >= *plan_.limit; }
  std::size_t visible_columns() const { return plan_.aggregates.size(); }

 private:
  struct Group {
    Row values;                           // visible columns, combined so far
    std::vector<std::int64_t> avg_count;  // per avg_counts entry
  };
  int compare(const std::optional<std::string>& a, const std::optional<std::string>& b,
              ValueKind kind) const;
  bool before(const Row& a, const Row& b) const;  // ORDER BY
  void combine(Group& g, const Row& row);
  void finish_groups();
  std::optional<Row> emit(Row row);

  MergePlan plan_;
  std::size_t shards_;
  Dialect dialect_;
  enum class Mode { Concat, Ordered, Grouped } mode_;
  std::vector<ValueKind> kinds_;
  std::vector<std::size_t> order_columns_;
  std::vector<std::size_t> group_columns_;
  std::vector<bool> ended_;
  std::size_t concat_at_ = 0;
  std::vector<std::optional<Row>> heads_;  // Ordered: each shard's next row
  std::vector<Row> queue_;                 // Concat: rows ready
  std::map<std::vector<std::optional<std::string>>, Group> groups_;
  std::vector<Row> grouped_;  // Grouped: the result, once every shard ended
  std::size_t grouped_at_ = 0;
  bool groups_done_ = false;
  std::uint64_t skipped_ = 0;
  std::uint64_t emitted_ = 0;
};

}  // namespace shardgate::router
