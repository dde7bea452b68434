// One control-plane connection of a resharding job to a source or target
// primary, whatever the engine: text rows in, SQL text out. Blocking (libpq,
// Connector/C); used only on the resharding thread. The engines differ in
// quoting, catalog queries and how a consistent snapshot begins; the copy,
// repair and catch-up algorithms (replication/reshard_copy.h) are shared.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "replication/failover_ops.h"

namespace shardgate::replication {

using Cell = std::optional<std::string>;  // nullopt: SQL NULL
using Row = std::vector<Cell>;

struct TableShape {
  std::string name;                      // as configured
  std::vector<std::string> columns;      // in table order
  std::vector<std::size_t> primary_key;  // positions in columns, in key order
  std::size_t key_column = 0;            // position of the sharding key
};

struct CopyLogin {
  std::string user, password, database;
  std::chrono::milliseconds connect_timeout{3000};
};

class ReshardConn {
 public:
  virtual ~ReshardConn() = default;
  virtual Result<void> exec(const std::string& sql) = 0;
  virtual Result<std::vector<Row>> query(const std::string& sql) = 0;
  // Rows affected by the last exec.
  virtual std::uint64_t affected() const = 0;
  virtual std::string ident(std::string_view name) const = 0;  // a quoted identifier
  virtual std::string literal(const Cell& value) const = 0;    // NULL or a quoted literal
  // Columns, primary key and the key column's place; an error that says
  // what to do when the table is missing or has no primary key.
  virtual Result<TableShape> describe(const std::string& table, const std::string& key_column) = 0;
  // A read-only transaction whose reads all see one consistent snapshot.
  virtual Result<void> begin_snapshot() = 0;
  virtual Result<void> begin() = 0;
  virtual Result<void> commit() = 0;
  virtual void rollback() = 0;
  // A primary's current write position (WAL LSN, GTID position), and
  // whether a replica has applied everything up to one.
  virtual Result<std::string> write_position() = 0;
  virtual Result<bool> replayed(const std::string& position) = 0;
  // Open transactions on the server that began before `unix_ms`, other than
  // this connection's (the job waits for them before its snapshot).
  virtual Result<int> transactions_older_than(std::int64_t unix_ms) = 0;
};

// The shape from catalog rows: column names in order, primary-key column
// names in key order (both one text cell per row).
Result<TableShape> table_shape(const std::string& table, const std::vector<Row>& columns,
                               const std::vector<Row>& primary_key, const std::string& key_column,
                               const std::string& server);

Result<std::unique_ptr<ReshardConn>> connect_pg_reshard(const ServerAddress& server,
                                                        const CopyLogin& login);
Result<std::unique_ptr<ReshardConn>> connect_my_reshard(const ServerAddress& server,
                                                        const CopyLogin& login);

}  // namespace shardgate::replication
