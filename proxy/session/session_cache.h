// One client session's side of the result cache, whatever its protocol: it
// looks a cacheable read up, captures the answer of a miss as it is relayed
// and keeps it, and invalidates the tables the session writes (before each
// write, and again once its transaction ended, so that no read that ran in
// between can be kept). The protocol sessions decide when a read qualifies
// and how an answer is framed.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proxy/cache/result_cache.h"
#include "proxy/metrics.h"
#include "router/cache_plan.h"

namespace shardgate::session {

// Everything that shapes an answer besides the server's data: the same
// statement under another user, database, shard or session setting is
// another entry.
std::string cache_key(char protocol, std::string_view user, std::string_view database,
                      std::uint32_t shard, std::string_view settings, std::string_view sql);

class SessionCache {
 public:
  SessionCache(cache::ResultCache* cache, Metrics& metrics) : cache_(cache), metrics_(metrics) {}
  ~SessionCache();
  SessionCache(const SessionCache&) = delete;
  SessionCache& operator=(const SessionCache&) = delete;

  bool enabled() const { return cache_ != nullptr; }

  // Every statement the session sends to a server: a write invalidates its
  // tables (all tables when it names none).
  void note_statement(const router::Statement& stmt);
  // A write to `tables` (as the classifier names them; none: unknown).
  void note_write(const std::vector<std::string>& tables);
  // After each answered round; once no transaction is open, the tables
  // written in it are invalidated again (their writes are now visible).
  void round_done(bool transaction_open);

  // The next statement reads only hot keys cached for this long (0: none);
  // taken by the next cache_key_of.
  void note_hot_key_ttl(std::uint32_t ttl_ms) { hot_key_ttl_ms_ = ttl_ms; }
  std::uint32_t take_hot_key_ttl() { return std::exchange(hot_key_ttl_ms_, 0); }

  // A hit, or nullptr (then begin_fill() to keep this read's answer).
  std::shared_ptr<const cache::CachedResult> lookup(const router::CachePlan& plan,
                                                    const std::string& key);
  void begin_fill(router::CachePlan plan, std::string key);
  bool filling() const { return fill_ != nullptr; }
  // Bytes of the answer as they are relayed to the client.
  void capture(std::string_view bytes);
  // The answer is complete: kept when it succeeded and ends with `tail`,
  // which is dropped (PostgreSQL's ReadyForQuery, which a hit makes anew).
  void finish_fill(bool succeeded, std::string_view tail, std::uint8_t last_seq = 0);
  void abandon_fill() { fill_.reset(); }

 private:
  struct Fill {
    router::CachePlan plan;
    std::string key;
    cache::Stamp stamp;
    std::string bytes;
    bool too_big = false;
  };
  cache::ResultCache* cache_;
  Metrics& metrics_;
  std::unique_ptr<Fill> fill_;  // a miss being captured (held only then: idle sessions stay small)
  std::vector<std::string> written_;  // tables written in the open transaction
  bool wrote_unknown_ = false;        // ... or a write whose tables are unknown
  std::uint32_t hot_key_ttl_ms_ = 0;
};

}  // namespace shardgate::session
