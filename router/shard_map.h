// From a sharding key to a shard: canonical key values, the keyspace hash, key
// ranges in Vitess notation ("-80", "40-80", "c0-"), and range rules. Pure
// functions; the key-to-shard mapping is part of the on-disk contract (rows
// live where it says), so it is documented in docs/sharding.md and pinned by
// unit tests.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "router/topology.h"

namespace shardgate::router {

// A sharding key value in the form that is hashed: an integer column's 7,
// '7', '+7' and 007 are one key.
struct KeyValue {
  KeyType type = KeyType::Integer;
  std::int64_t integer = 0;
  std::string text;

  bool operator==(const KeyValue&) const = default;
};

// Decimal integer text with optional sign and surrounding blanks, as
// PostgreSQL's and MySQL's integer input accept it; nullopt when it is not one
// or does not fit in 64 bits.
std::optional<std::int64_t> parse_int64(std::string_view text);

// The key value of `text` (a literal's value or a parameter sent as text) for
// a column of `type`; an error naming the table and column when an integer
// column gets something else.
Result<KeyValue> key_from_text(const ShardedTable& table, std::string_view text);

// xxh3-64 (seed 0) of the 8-byte big-endian two's complement of an integer
// key, or of the bytes of a text key.
std::uint64_t key_hash(const KeyValue& key);

// The shard that holds `key` of `table`, or an error when no shard's range
// (hash) or no range rule (range) covers it.
Result<std::uint32_t> shard_of(const ShardedTable& table, const KeyValue& key,
                               const Topology& topology);

// key_range: none marks a spare shard (ShardInfo::spare).
inline constexpr std::string_view kSpareKeyRange = "none";

// "-" (everything), "-80", "40-80", "c0-": hex digits are the leading nibbles
// of a 64-bit value; the start is inclusive, the end exclusive.
Result<KeyRange> parse_key_range(std::string_view text);
std::string format_key_range(const KeyRange& range);

// A shard's slices, comma-separated in keyspace order ("-40,48-80").
Result<std::vector<KeyRange>> parse_key_ranges(std::string_view text);
// "none" for a spare, else its slices as parse_key_ranges reads them.
std::string format_shard_ranges(const ShardInfo& shard);
std::string format_key_ranges(const std::vector<KeyRange>& ranges);

// `count` equal slices of the keyspace, in order.
std::vector<KeyRange> even_key_ranges(std::uint32_t count);

// The ranges, in keyspace order, must tile the keyspace: no gap, no
// overlap. Returns an error that says where it breaks.
Result<void> check_key_ranges_tile(const std::vector<KeyRange>& ranges);

}  // namespace shardgate::router
