// The proxy's result cache: answers of cacheable reads (router/cache_plan.h)
// as the client received them, keyed by everything that shapes the answer
// (statement text, shard, user, database, session settings), kept for a time
// to live within a memory bound (least recently used first out).
//
// Never stale after a write through this proxy: every table has a
// generation that each write to it bumps (before it runs and again once its
// transaction ended). An entry remembers the generations of its tables from
// before its statement ran; it is kept only if none moved while it ran, and
// served only while none has moved since. Writes that bypass this proxy
// (another proxy, a direct client, a trigger on another table) are bounded
// only by the time to live.
//
// Shared by all worker threads under one mutex, held for map operations
// only (never while bytes go to a socket: a hit hands out a shared_ptr).
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace shardgate::cache {

struct CachedResult {
  std::string bytes;          // the answer as the client received it
  std::uint8_t last_seq = 0;  // MySQL: sequence id of its last packet
};

// The generations of some tables, and of "every table", at one moment.
struct Stamp {
  std::uint64_t every = 0;
  std::vector<std::uint64_t> tables;
  bool operator==(const Stamp&) const = default;
};

struct CacheStats {
  std::uint64_t hits = 0, misses = 0, inserts = 0, evictions = 0, expired = 0, stale = 0,
                invalidations = 0, refused = 0;
  std::size_t entries = 0, bytes = 0;
};

class ResultCache {
 public:
  using Clock = std::chrono::steady_clock;

  ResultCache(std::size_t max_bytes, std::size_t max_entry_bytes);

  // `tables` are cache_table_key()s, sorted (CachePlan::tables).
  Stamp stamp(const std::vector<std::string>& tables) const;
  std::shared_ptr<const CachedResult> lookup(const std::string& key,
                                             const std::vector<std::string>& tables,
                                             Clock::time_point now);
  // Keeps the result unless a table was written since `before` was taken, or
  // it is larger than max_entry_bytes. Returns whether it was kept.
  bool insert(const std::string& key, CachedResult result, const std::vector<std::string>& tables,
              const Stamp& before, std::chrono::milliseconds ttl, Clock::time_point now);
  // A write to these tables is about to run, or its transaction just ended.
  void invalidate(const std::vector<std::string>& tables);
  // A write whose tables are not known (a procedure call, unreadable text).
  void invalidate_all();

  std::size_t max_entry_bytes() const { return max_entry_bytes_; }
  CacheStats stats() const;

 private:
  struct Entry {
    std::shared_ptr<const CachedResult> result;
    Stamp stamp;
    Clock::time_point expires;
    std::size_t bytes = 0;
    std::list<std::string>::iterator lru;
  };
  Stamp stamp_locked(const std::vector<std::string>& tables) const;
  void erase_locked(std::unordered_map<std::string, Entry>::iterator it);

  const std::size_t max_bytes_;
  const std::size_t max_entry_bytes_;
  mutable std::mutex mutex_;
  std::uint64_t every_ = 0;
  std::unordered_map<std::string, std::uint64_t> generations_;  // tables ever written
  std::list<std::string> lru_;                                  // most recent first
  std::unordered_map<std::string, Entry> entries_;
  std::size_t bytes_ = 0;
  CacheStats stats_;
};

}  // namespace shardgate::cache
