// The engine-neutral steps of a resharding job, over two ReshardConns (a
// source and a target primary) and one table: copy a chunk in primary-key
// order, compare and repair chunks, re-copy the rows of keys written since
// the snapshot, delete a moved slice. The slice is a range of the hashed
// keyspace (router/shard_map.h): no SQL can filter on shardgate's hash, so
// rows are read whole and filtered here.
//
// Every step is idempotent, which is what makes the job resumable: a chunk
// copied again replaces its rows on the target by primary key.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"
#include "replication/reshard_conn.h"
#include "router/shard_map.h"
#include "router/topology.h"

namespace shardgate::replication {

struct SliceTable {
  TableShape shape;            // the same columns on source and target
  router::ShardedTable table;  // its key type
  router::KeyRange slice;      // the hash range that moves
};

// Does the row's key hash into the slice?
bool row_in_slice(const SliceTable& t, const Row& row);

struct ChunkResult {
  std::uint64_t read = 0;     // source rows looked at
  std::uint64_t copied = 0;   // of them, in the slice and written to the target
  std::uint64_t bytes = 0;    // text bytes of the copied rows
  std::vector<Cell> last_pk;  // where the next chunk starts
  bool done = false;          // the source had no more rows
};

// Copies the slice's rows among the next `limit` source rows after
// `after_pk` (empty: from the start). The source reads in whatever
// transaction it is in (the job's snapshot); the target replaces the rows
// by primary key in a transaction of its own.
Result<ChunkResult> copy_chunk(ReshardConn& source, ReshardConn& target, const SliceTable& t,
                               const std::vector<Cell>& after_pk, std::size_t limit);

struct CompareResult {
  std::uint64_t source_rows = 0;      // in the slice
  std::uint64_t target_rows = 0;      // in the slice
  std::uint64_t source_checksum = 0;  // order-independent, over the slice's rows
  std::uint64_t target_checksum = 0;
  std::uint64_t differing = 0;              // rows missing, extra or different on the target
  std::uint64_t repaired = 0;               // of them, fixed (repair only)
  std::vector<std::string> examples;        // primary keys of a few differing rows
  std::vector<std::string> differing_keys;  // their sharding keys (text), all of them
};

// Compares the slice's rows on both sides chunk by chunk in primary-key
// order; with `repair`, makes the target's match the source's.
Result<CompareResult> compare_slice(ReshardConn& source, ReshardConn& target, const SliceTable& t,
                                    bool repair, std::size_t chunk = 2000);

// Makes the target's rows of these key values (the key column's text) what
// the source holds now; returns the source rows written.
Result<std::uint64_t> copy_keys(ReshardConn& source, ReshardConn& target, const SliceTable& t,
                                const std::vector<std::string>& keys);

// Deletes the slice's rows from `conn` (cleanup of the source after a
// cutover, or of the target after an abort); returns how many.
Result<std::uint64_t> delete_slice(ReshardConn& conn, const SliceTable& t,
                                   std::size_t chunk = 2000);

}  // namespace shardgate::replication
