#include "replication/reshard_conn.h"

namespace shardgate::replication {

Result<TableShape> table_shape(const std::string& table, const std::vector<Row>& columns,
                               const std::vector<Row>& primary_key, const std::string& key_column,
                               const std::string& server) {
  TableShape s;
  s.name = table;
  for (const Row& r : columns) s.columns.push_back(r.at(0).value_or(""));
  auto position = [&](const std::string& c) -> std::optional<std::size_t> {
    for (std::size_t i = 0; i < s.columns.size(); ++i)
      if (s.columns[i] == c) return i;
    return std::nullopt;
  };
  if (primary_key.empty())
    return make_error("table " + table + " on " + server +
                      " has no primary key: resharding copies and verifies rows in primary-key "
                      "order; add one");
  for (const Row& r : primary_key) {
    auto p = position(r.at(0).value_or(""));
    if (!p)
      return make_error("table " + table + " on " + server + ": primary key column " +
                        r.at(0).value_or("") + " is not among its columns");
    s.primary_key.push_back(*p);
  }
  auto key = position(key_column);
  if (!key)
    return make_error("table " + table + " on " + server + " has no sharding key column " +
                      key_column);
  s.key_column = *key;
  return s;
}

}  // namespace shardgate::replication
