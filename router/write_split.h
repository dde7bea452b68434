// How one write statement that needs several shards runs on each of them.
// UPDATE and DELETE with keys of several shards (an IN list), a write to a
// reference table, a keyless write the config lets scatter: the same text on
// every target shard (rows of other shards are not there to match). A
// multi-row INSERT: each shard gets the rows it owns, in their order. Pure.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "router/shard_keys.h"
#include "router/shard_route.h"
#include "router/topology.h"

namespace shardgate::router {

struct ShardWrite {
  std::uint32_t shard = 0;
  std::string sql;
};

struct WritePlan {
  std::vector<ShardWrite> writes;  // in shard order
  // A reference table: every shard runs the same change, and the client
  // hears one shard's answer, not the sum.
  bool reference = false;
  // DDL (CREATE, ALTER, DROP, TRUNCATE ... of a sharded or reference table):
  // the same text on every shard, spares included (a spare takes rows later,
  // into the same schema). MySQL commits DDL implicitly, outside any XA.
  bool schema_change = false;
  // PostgreSQL DDL that cannot run inside a transaction block (CREATE INDEX
  // CONCURRENTLY, ALTER SYSTEM, CREATE DATABASE ...): each shard runs it on
  // its own, outside any transaction, like MariaDB's DDL.
  bool outside_transaction = false;
};

// The plan of a DDL statement that names a sharded or reference table.
WritePlan plan_schema_change(std::string_view sql, Dialect dialect, const Topology& topology);

// PostgreSQL refuses the statement inside a transaction block: CONCURRENTLY
// anywhere in it, CREATE / DROP DATABASE, CREATE / DROP TABLESPACE, ALTER
// SYSTEM.
bool runs_outside_transaction(std::string_view sql);

Result<WritePlan> plan_write(std::string_view sql, Dialect dialect, const ShardAnalysis& analysis,
                             const ShardTargets& targets, const Topology& topology);

// The byte spans of an INSERT's VALUES rows, "(..)" each, in order.
struct Span {
  std::size_t begin = 0;
  std::size_t end = 0;
};
struct InsertRows {
  bool insert = false;     // INSERT or REPLACE appears outside parentheses
  std::vector<Span> rows;  // when the text starts with it and has VALUES rows
};
InsertRows insert_row_spans(std::string_view sql, Dialect dialect);

// The write returns rows (RETURNING outside strings and comments); text
// that does not lex counts as returning, the cautious answer.
bool has_returning(std::string_view sql, Dialect dialect);

}  // namespace shardgate::router
