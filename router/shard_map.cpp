#include "router/shard_map.h"

#include <xxhash.h>

#include <algorithm>
#include <array>
#include <charconv>

namespace shardgate::router {

std::optional<std::int64_t> parse_int64(std::string_view text) {
  auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!text.empty() && blank(text.front())) text.remove_prefix(1);
  while (!text.empty() && blank(text.back())) text.remove_suffix(1);
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  if (text.empty() || text.front() == '+') return std::nullopt;
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

Result<KeyValue> key_from_text(const ShardedTable& table, std::string_view text) {
  KeyValue key;
  key.type = table.key_type;
  if (table.key_type == KeyType::Text) {
    key.text.assign(text);
    return key;
  }
  const auto value = parse_int64(text);
  if (!value) {
    std::string shown(text.substr(0, 40));
    return make_error("the sharding key " + table.name + "." + table.column +
                      " is an integer column, but the statement gives it '" + shown +
                      "': compare it with an integer");
  }
  key.integer = *value;
  return key;
}

std::uint64_t key_hash(const KeyValue& key) {
  if (key.type == KeyType::Text) return XXH3_64bits(key.text.data(), key.text.size());
  std::array<unsigned char, 8> bytes;
  const auto u = static_cast<std::uint64_t>(key.integer);
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<unsigned char>(u >> (56 - 8 * i));
  return XXH3_64bits(bytes.data(), bytes.size());
}

Result<std::uint32_t> shard_of(const ShardedTable& table, const KeyValue& key,
                               const Topology& topology) {
  if (table.strategy == ShardStrategy::Hash) {
    const std::uint64_t h = key_hash(key);
    for (std::uint32_t s = 0; s < topology.shards.size(); ++s)
      if (topology.shards[s].owns(h)) return s;
    return make_error("no shard owns the keyspace point of this " + table.name + "." +
                      table.column + " value: the shards' key ranges leave a gap");
  }
  for (const RangeRule& r : table.ranges) {
    if (r.has_from && key.integer < r.from) continue;
    if (r.has_to && key.integer >= r.to) continue;
    return r.shard;
  }
  return make_error("no range of " + table.name + "." + table.column + " holds the key " +
                    std::to_string(key.integer) + ": extend its ranges in the configuration");
}

namespace {

Result<std::optional<std::uint64_t>> parse_bound(std::string_view hex, std::string_view whole) {
  if (hex.empty()) return std::optional<std::uint64_t>{};
  if (hex.size() > 16)
    return make_error("key range '" + std::string(whole) + "': more than 16 hex digits");
  std::uint64_t v = 0;
  for (char c : hex) {
    int d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      d = c - 'A' + 10;
    else
      return make_error("key range '" + std::string(whole) + "': '" + std::string(1, c) +
                        "' is not a hex digit");
    v = (v << 4) | static_cast<std::uint64_t>(d);
  }
  v <<= 4 * (16 - hex.size());
  return std::optional<std::uint64_t>{v};
}

}  // namespace

Result<KeyRange> parse_key_range(std::string_view text) {
  const auto dash = text.find('-');
  if (dash == std::string_view::npos || text.find('-', dash + 1) != std::string_view::npos)
    return make_error("key range '" + std::string(text) +
                      "': write START-END in hex, either side may be empty (\"-80\", \"80-\")");
  auto start = parse_bound(text.substr(0, dash), text);
  if (!start) return start.error();
  auto end = parse_bound(text.substr(dash + 1), text);
  if (!end) return end.error();
  KeyRange r;
  r.start = start->value_or(0);
  r.end_is_max = !end->has_value();
  r.end = end->value_or(0);
  if (!r.end_is_max && r.end <= r.start)
    return make_error("key range '" + std::string(text) + "': its end is not after its start");
  return r;
}

std::string format_key_range(const KeyRange& range) {
  auto hex = [](std::uint64_t v) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string s;
    for (int i = 15; i >= 0; --i) s.push_back(kDigits[(v >> (4 * i)) & 0xf]);
    while (s.size() > 2 && s.ends_with("00")) s.resize(s.size() - 2);
    return s;
  };
  std::string out = range.start == 0 ? "" : hex(range.start);
  out += '-';
  if (!range.end_is_max) out += hex(range.end);
  return out;
}

Result<std::vector<KeyRange>> parse_key_ranges(std::string_view text) {
  std::vector<KeyRange> out;
  std::size_t start = 0;
  for (;;) {
    const auto comma = text.find(',', start);
    std::string_view part =
        text.substr(start, comma == std::string_view::npos ? comma : comma - start);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    auto r = parse_key_range(part);
    if (!r) return r.error();
    out.push_back(*r);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  std::sort(out.begin(), out.end(),
            [](const KeyRange& a, const KeyRange& b) { return a.start < b.start; });
  return out;
}

std::string format_key_ranges(const std::vector<KeyRange>& ranges) {
  std::vector<KeyRange> sorted = ranges;
  std::sort(sorted.begin(), sorted.end(),
            [](const KeyRange& a, const KeyRange& b) { return a.start < b.start; });
  std::string out;
  for (const KeyRange& r : sorted) out += (out.empty() ? "" : ",") + format_key_range(r);
  return out;
}

std::string format_shard_ranges(const ShardInfo& shard) {
  if (shard.spare) return std::string(kSpareKeyRange);
  std::vector<KeyRange> all{shard.key_range};
  all.insert(all.end(), shard.more_ranges.begin(), shard.more_ranges.end());
  return format_key_ranges(all);
}

std::vector<KeyRange> even_key_ranges(std::uint32_t count) {
  std::vector<KeyRange> out;
  if (count == 0) return out;
  // Boundaries at floor(i * 2^64 / count), computed without 128-bit overflow.
  const unsigned __int128 space = static_cast<unsigned __int128>(1) << 64;
  for (std::uint32_t i = 0; i < count; ++i) {
    KeyRange r;
    r.start = static_cast<std::uint64_t>(space * i / count);
    r.end_is_max = i + 1 == count;
    r.end = r.end_is_max ? 0 : static_cast<std::uint64_t>(space * (i + 1) / count);
    out.push_back(r);
  }
  return out;
}

Result<void> check_key_ranges_tile(const std::vector<KeyRange>& ranges) {
  std::uint64_t next = 0;
  for (std::size_t i = 0; i < ranges.size(); ++i) {
    const KeyRange& r = ranges[i];
    if (r.start != next)
      return make_error("key range " + format_key_range(r) +
                        (r.start > next ? " leaves a gap before it" : " overlaps the one before"));
    if (r.end_is_max) {
      if (i + 1 != ranges.size())
        return make_error("key range " + format_key_range(r) +
                          " runs to the end of the keyspace, but more ranges follow");
      return {};
    }
    next = r.end;
  }
  return make_error(ranges.empty() ? "no key ranges"
                                   : "the last key range must run to the end (\"..-\")");
}

}  // namespace shardgate::router
