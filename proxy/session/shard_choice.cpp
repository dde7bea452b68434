#include "proxy/session/shard_choice.h"

#include <algorithm>
#include <cctype>
#include <chrono>

#include "router/shard_keys.h"
#include "router/shard_map.h"

namespace shardgate::session {

void ShardChoice::add(const router::Statement& stmt, std::string_view sql, router::Dialect dialect,
                      std::span<const router::ParamValue> params) {
  if (error_) return;
  // A BEGIN that leads the round (JDBC sends it with the transaction's
  // first statement) leaves that statement alone in it.
  if (statements_ == 0 && !begin_led_ && stmt.kind == router::StatementKind::Begin &&
      !stmt.multi_statement) {
    begin_led_ = true;
    return;
  }
  ++statements_;
  if (needs_several()) {
    error_ = "a statement over several shards must be sent alone";
    return;
  }
  const router::ShardAnalysis analysis = plans_.analyze(sql, dialect, stmt, topology_);
  // DDL: every shard holds the same schema, spares too (they take rows
  // later). Only DDL that names unsharded tables alone stays on the default
  // shard; DDL that names no table (DROP INDEX, CREATE FUNCTION ...) cannot
  // say where its object lives, so it goes everywhere like the rest.
  const bool schema_wide =
      stmt.kind == router::StatementKind::Ddl && !analysis.refusal &&
      (analysis.scope == router::ShardScope::AllShards || analysis.writes_reference ||
       (analysis.scope == router::ShardScope::None && stmt.tables.empty()));
  if (schema_wide && topology_.shards.size() > 1) {
    if (statements_ == 1 && !shard_ && !stmt.multi_statement) {
      write_plan_ = router::plan_schema_change(sql, dialect, topology_);
      return;
    }
    error_ = "DDL runs on every shard (" +
             std::string(analysis.keyless ? "it names sharded table " + analysis.keyless->name
                                          : std::string("all of them hold the schema")) +
             "), which shardgate does only for a statement of its own sent as a simple query "
             "(PostgreSQL Query, MySQL COM_QUERY)";
    return;
  }
  // Reference-table reads and table-less statements run on any shard.
  const bool free = !analysis.refusal && !analysis.writes_reference &&
                    (analysis.scope == router::ShardScope::Reference ||
                     (analysis.scope == router::ShardScope::None && stmt.tables.empty()));
  if (free) return;
  auto targets = router::resolve_shards(analysis, params, topology_, hot_keys_.recorder || slice_);
  if (!targets) {
    error_ = targets.error().message();
    return;
  }
  count(*targets, !analysis.writes && stmt.kind == router::StatementKind::Read);
  if (slice_ && (analysis.writes || stmt.kind != router::StatementKind::Read))
    note_moves(analysis, *targets);
  if (targets->shards.size() > 1) {
    const bool read = !analysis.writes && !analysis.writes_reference &&
                      stmt.kind == router::StatementKind::Read && !stmt.multi_statement;
    const bool lone = statements_ == 1 && !shard_ && !stmt.multi_statement;
    if (lone && read) {
      several_ = targets->shards;
      return;
    }
    const bool write = analysis.writes || analysis.writes_reference;
    if (lone && write && !params.empty()) {
      unplanned_write_ = true;
      return;
    }
    if (lone && write) {
      auto plan = router::plan_write(sql, dialect, analysis, *targets, topology_);
      if (!plan) {
        error_ = plan.error().message();
        return;
      }
      write_plan_ = std::move(*plan);
      return;
    }
    error_ = several_shards_refusal(analysis, targets->shards);
    return;
  }
  const std::uint32_t shard = targets->shards.front();
  if (shard_ && *shard_ != shard) {
    error_ = "the statements sent together need different shards (" +
             topology_.shards[*shard_].name + " and " + topology_.shards[shard].name +
             "): send them separately";
    return;
  }
  shard_ = shard;
}

// Feeds the hot-key detector, and notes a read of a hot key that may spread.
void ShardChoice::count(const router::ShardTargets& targets, bool read) {
  if (!hot_keys_.recorder) return;
  const double now =
      std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  if (targets.keys.empty()) {
    for (std::uint32_t s : targets.shards) hot_keys_.recorder->record_unkeyed(s, now);
    return;
  }
  const bool one_read = read && targets.shards.size() == 1 && !hot_keys_.hot.empty();
  bool spread = one_read, cacheable = one_read, any_hot = false, all_hot = true;
  std::uint32_t ttl = UINT32_MAX;
  for (const router::ResolvedKey& k : targets.keys) {
    hot_keys_.recorder->record_key(k.shard, k.table, k.value, now);
    if (!one_read) continue;
    const router::ShardedTable& table = topology_.sharding.tables[k.table];
    spread = spread && table.spread_hot_reads;
    cacheable = cacheable && table.hot_key_cache_ttl_ms > 0;
    ttl = std::min(ttl, table.hot_key_cache_ttl_ms);
    const bool hot = std::binary_search(hot_keys_.hot.begin(), hot_keys_.hot.end(),
                                        router::hot_key_id(k.table, k.value));
    any_hot = any_hot || hot;
    all_hot = all_hot && hot;
  }
  if (spread && any_hot) ++hot_reads_;
  // Only hot keys' answers are cached: a cold key among them keeps the read out.
  if (cacheable && all_hot) {
    ++hot_cacheable_;
    hot_cache_ttl_ = std::min(hot_cache_ttl_, ttl);
  }
}

// Keys this write puts into the moving slice; a write to a moving table
// without a key may change any of its rows on the source.
void ShardChoice::note_moves(const router::ShardAnalysis& analysis,
                             const router::ShardTargets& targets) {
  const MovingSlice& slice = *slice_;
  for (const router::ResolvedKey& k : targets.keys) {
    if (k.shard != slice.source || k.table >= slice.tables.size() || !slice.tables[k.table])
      continue;
    if (!slice.range.contains(router::key_hash(k.value))) continue;
    moved_.keys.push_back({k.table, k.value.type == router::KeyType::Integer
                                        ? std::to_string(k.value.integer)
                                        : k.value.text});
  }
  if (targets.keys.empty() && analysis.keyless) {
    const auto table =
        static_cast<std::uint32_t>(analysis.keyless - topology_.sharding.tables.data());
    const bool on_source =
        std::binary_search(targets.shards.begin(), targets.shards.end(), slice.source);
    if (table < slice.tables.size() && slice.tables[table] && on_source)
      moved_.tables.push_back(table);
  }
}

std::string ShardChoice::several_shards_refusal(const router::ShardAnalysis& analysis,
                                                const std::vector<std::uint32_t>& shards) const {
  std::string names;
  for (std::uint32_t s : shards) names += (names.empty() ? "" : ", ") + topology_.shards[s].name;
  if (analysis.writes || analysis.writes_reference)
    return "the statement writes on shards " + names +
           ", which shardgate runs only as a statement of its own (not among other "
           "statements)";
  const std::string what = analysis.keyless
                               ? "the statement reads sharded table " + analysis.keyless->name +
                                     " without its sharding key " + analysis.keyless->column +
                                     ", which needs shards " + names
                               : "the statement reads shards " + names;
  return "the statement needs shards " + names +
         " together with other statements; send a read over several shards alone";
}

Result<std::optional<std::uint32_t>> ShardChoice::result() const {
  if (error_) return make_error(*error_);
  return shard_;
}

bool plain_transaction_end(std::string_view sql) {
  std::string lower(sql);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* word : {"prepared", "chain", "release"})
    if (lower.find(word) != std::string::npos) return false;
  return true;
}

}  // namespace shardgate::session
