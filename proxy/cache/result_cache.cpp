#include "proxy/cache/result_cache.h"

namespace shardgate::cache {
namespace {

// Bookkeeping per entry beyond its key and bytes (map node, list node, stamp).
constexpr std::size_t kEntryOverhead = 160;

}  // namespace

ResultCache::ResultCache(std::size_t max_bytes, std::size_t max_entry_bytes)
    : max_bytes_(max_bytes), max_entry_bytes_(max_entry_bytes) {}

Stamp ResultCache::stamp_locked(const std::vector<std::string>& tables) const {
  Stamp s;
  s.every = every_;
  s.tables.reserve(tables.size());
  for (const std::string& t : tables) {
    auto it = generations_.find(t);
    s.tables.push_back(it == generations_.end() ? 0 : it->second);
  }
  return s;
}

Stamp ResultCache::stamp(const std::vector<std::string>& tables) const {
  std::lock_guard lock(mutex_);
  return stamp_locked(tables);
}

void ResultCache::erase_locked(std::unordered_map<std::string, Entry>::iterator it) {
  bytes_ -= it->second.bytes;
  lru_.erase(it->second.lru);
  entries_.erase(it);
}

std::shared_ptr<const CachedResult> ResultCache::lookup(const std::string& key,
                                                        const std::vector<std::string>& tables,
                                                        Clock::time_point now) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    ++stats_.misses;
    return nullptr;
  }
  if (it->second.expires <= now) {
    ++stats_.expired;
    ++stats_.misses;
    erase_locked(it);
    return nullptr;
  }
  if (!(it->second.stamp == stamp_locked(tables))) {
    ++stats_.stale;
    ++stats_.misses;
    erase_locked(it);
    return nullptr;
  }
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  ++stats_.hits;
  return it->second.result;
}

bool ResultCache::insert(const std::string& key, CachedResult result,
                         const std::vector<std::string>& tables, const Stamp& before,
                         std::chrono::milliseconds ttl, Clock::time_point now) {
  const std::size_t bytes = key.size() + result.bytes.size() + kEntryOverhead;
  std::lock_guard lock(mutex_);
  if (result.bytes.size() > max_entry_bytes_ || bytes > max_bytes_ ||
      !(stamp_locked(tables) == before)) {
    ++stats_.refused;
    return false;
  }
  if (auto old = entries_.find(key); old != entries_.end()) erase_locked(old);
  while (bytes_ + bytes > max_bytes_ && !lru_.empty()) {
    erase_locked(entries_.find(lru_.back()));
    ++stats_.evictions;
  }
  lru_.push_front(key);
  Entry e;
  e.result = std::make_shared<const CachedResult>(std::move(result));
  e.stamp = before;
  e.expires = now + ttl;
  e.bytes = bytes;
  e.lru = lru_.begin();
  entries_.emplace(key, std::move(e));
  bytes_ += bytes;
  ++stats_.inserts;
  return true;
}

void ResultCache::invalidate(const std::vector<std::string>& tables) {
  std::lock_guard lock(mutex_);
  for (const std::string& t : tables) ++generations_[t];
  ++stats_.invalidations;
}

void ResultCache::invalidate_all() {
  std::lock_guard lock(mutex_);
  ++every_;
  ++stats_.invalidations;
}

CacheStats ResultCache::stats() const {
  std::lock_guard lock(mutex_);
  CacheStats s = stats_;
  s.entries = entries_.size();
  s.bytes = bytes_;
  return s;
}

}  // namespace shardgate::cache
