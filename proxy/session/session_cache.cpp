#include "proxy/session/session_cache.h"

#include <algorithm>

namespace shardgate::session {
namespace {

void add_part(std::string& key, std::string_view part) {
  key += std::to_string(part.size());
  key += ':';
  key += part;
}

}  // namespace

std::string cache_key(char protocol, std::string_view user, std::string_view database,
                      std::uint32_t shard, std::string_view settings, std::string_view sql) {
  std::string key(1, protocol);
  add_part(key, user);
  add_part(key, database);
  add_part(key, std::to_string(shard));
  add_part(key, settings);
  add_part(key, sql);
  return key;
}

SessionCache::~SessionCache() {
  // The session's last writes may have committed after all.
  round_done(false);
}

void SessionCache::note_statement(const router::Statement& stmt) {
  if (cache_ && router::writes_data(stmt)) note_write(stmt.tables);
}

void SessionCache::note_write(const std::vector<std::string>& written) {
  if (!cache_) return;
  if (written.empty()) {
    cache_->invalidate_all();
    wrote_unknown_ = true;
    return;
  }
  std::vector<std::string> tables;
  for (const std::string& t : written) tables.push_back(router::cache_table_key(t));
  cache_->invalidate(tables);
  for (std::string& t : tables)
    if (std::find(written_.begin(), written_.end(), t) == written_.end())
      written_.push_back(std::move(t));
}

void SessionCache::round_done(bool transaction_open) {
  if (!cache_ || transaction_open) return;
  if (!written_.empty()) cache_->invalidate(written_);
  if (wrote_unknown_) cache_->invalidate_all();
  written_.clear();
  wrote_unknown_ = false;
}

std::shared_ptr<const cache::CachedResult> SessionCache::lookup(const router::CachePlan& plan,
                                                                const std::string& key) {
  if (!cache_) return nullptr;
  auto hit = cache_->lookup(key, plan.tables, cache::ResultCache::Clock::now());
  bump(hit ? metrics_.result_cache_hits_total : metrics_.result_cache_misses_total);
  return hit;
}

void SessionCache::begin_fill(router::CachePlan plan, std::string key) {
  if (!cache_) return;
  fill_ = std::make_unique<Fill>();
  fill_->stamp = cache_->stamp(plan.tables);
  fill_->plan = std::move(plan);
  fill_->key = std::move(key);
}

void SessionCache::capture(std::string_view bytes) {
  if (!fill_ || fill_->too_big) return;
  if (fill_->bytes.size() + bytes.size() > cache_->max_entry_bytes()) {
    fill_->too_big = true;
    fill_->bytes = std::string();
    return;
  }
  fill_->bytes.append(bytes);
}

void SessionCache::finish_fill(bool succeeded, std::string_view tail, std::uint8_t last_seq) {
  if (!fill_) return;
  Fill f = std::move(*fill_);
  fill_.reset();

  if (!succeeded || f.too_big || !std::string_view(f.bytes).ends_with(tail)) return;
  f.bytes.resize(f.bytes.size() - tail.size());
  cache::CachedResult result{std::move(f.bytes), last_seq};
  if (cache_->insert(f.key, std::move(result), f.plan.tables, f.stamp,
                     std::chrono::milliseconds(f.plan.ttl_ms), cache::ResultCache::Clock::now()))
    bump(metrics_.result_cache_stores_total);
}

}  // namespace shardgate::session
