#include "proxy/reshard/reshard_controller.h"

#include <rocksdb/db.h>

#include <boost/json.hpp>
#include <cstdio>
#include <map>

#include "common/rocksdb_store.h"
#include "proxy/failover_controller.h"
#include "proxy/proxy_context.h"
#include "proxy/topology.h"
#include "router/reshard_plan.h"
#include "router/shard_map.h"

namespace shardgate {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kJobKey = "job";
constexpr std::size_t kCopyChunkRows = 5000;
// Catch-up is "nearly there" below this many dirty keys: the cutover's
// pause then applies a few hundred keys at most.
constexpr std::size_t kCutoverDirtyKeys = 500;
constexpr auto kDrainLimit = std::chrono::milliseconds(2000);
constexpr auto kOldTransactionsLimit = std::chrono::seconds(30);
constexpr auto kReplicaCatchUpLimit = std::chrono::milliseconds(30000);
constexpr auto kReplicaInPauseLimit = std::chrono::milliseconds(300);

std::int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool active(const std::string& state) {
  return state == "copying" || state == "repairing" || state == "catching_up";
}

replication::ServerAddress primary_address(const router::Topology& t, std::uint32_t shard) {
  const router::BackendInfo& b = t.backends[t.shards[shard].primary];
  return {b.name, b.host, b.port, b.unix_socket_dir, b.unix_socket};
}

std::optional<std::uint32_t> shard_named(const router::Topology& t, const std::string& name) {
  for (std::uint32_t s = 0; s < t.shards.size(); ++s)
    if (t.shards[s].name == name) return s;
  return std::nullopt;
}

Result<router::ReshardPlan> make_plan(const router::Topology& t, const ReshardRequest& r) {
  std::optional<std::uint64_t> at;
  if (!r.at.empty()) {
    auto b = router::parse_key_boundary(r.at);
    if (!b) return b.error();
    at = *b;
  }
  if (r.kind == "split" || r.kind.empty()) return router::plan_split(t, r.source, r.target, at);
  if (r.kind == "merge") return router::plan_merge(t, r.source, r.target);
  if (r.kind == "isolate") return router::plan_isolate_key(t, r.table, r.key, r.target);
  if (r.kind == "rebalance") {
    if (!at) return make_error("rebalance needs the new boundary: --at HEX");
    return router::plan_rebalance(t, r.source, r.target, *at);
  }
  return make_error("unknown resharding kind '" + r.kind + "': split, merge, rebalance or isolate");
}

}  // namespace

ReshardController::ReshardController(ProxyContext& ctx, FailoverController& topology_owner,
                                     std::string data_dir, bool mysql, replication::CopyLogin login)
    : ctx_(ctx),
      owner_(topology_owner),
      dir_(std::move(data_dir)),
      mysql_(mysql),
      login_(std::move(login)) {}

ReshardController::~ReshardController() {
  stop();
}

Result<void> ReshardController::start() {
  if (!dir_.empty()) {
    auto db = open_rocksdb_store(dir_, "reshard", "resharding checkpoint store");
    if (!db) return db.error();
    db_ = std::move(*db);
    std::string bytes;
    if (db_->Get(rocksdb::ReadOptions(), kJobKey, &bytes).ok()) {
      config::ReshardJob job;
      if (!job.ParseFromString(bytes)) return make_error("resharding checkpoint is unreadable");
      if (active(job.state()) || job.state() == "paused") {
        // The writes made while no proxy watched were not seen: compare
        // and repair once the copy is complete.
        job.set_needs_repair(true);
        log("resharding job " + std::to_string(job.id()) + " (" + job.kind() + " " + job.source() +
            " -> " + job.target() + ") resumes from its checkpoint in state " + job.state());
        // A copy resumes and repairs at its end; a finished one repairs now.
        if (job.state() == "catching_up") job.set_state("repairing");
      }
      std::lock_guard lock(mutex_);
      job_ = job;
    }
  }
  thread_ = std::thread([this] { run(); });
  return {};
}

void ReshardController::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Result<std::string> ReshardController::request(const ReshardRequest& r) {
  if (r.op == "plan") {
    auto plan = make_plan(*ctx_.topology, r);
    if (!plan) return plan.error();
    return router::describe(*plan, *ctx_.topology);
  }
  if (r.op != "start" && r.op != "cutover" && r.op != "abort" && r.op != "cleanup" &&
      r.op != "verify")
    return make_error("unknown resharding operation '" + r.op +
                      "': plan, start, status, verify, cutover, abort or cleanup");
  if (dir_.empty())
    return make_error("resharding keeps its checkpoints in data_dir: set data_dir in the config");
  auto done = std::make_shared<std::promise<Result<std::string>>>();
  auto outcome = done->get_future();
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return make_error("the proxy is stopping");
    commands_.push_back({r, done});
  }
  cv_.notify_all();
  return outcome.get();
}

void ReshardController::run() {
  // Resumed job: tracking restarts before anything else is read.
  {
    std::lock_guard lock(mutex_);
    if (job_) work_ = *job_;
  }
  if (work_ && active(work_->state())) {
    auto started = resume_tracking();
    if (!started) set_state("paused", started.error().message());
  }
  for (;;) {
    std::optional<Command> command;
    {
      std::unique_lock lock(mutex_);
      const bool busy = work_ && active(work_->state());
      cv_.wait_for(lock, busy ? std::chrono::milliseconds(0) : std::chrono::milliseconds(200),
                   [&] { return stopping_ || !commands_.empty(); });
      if (stopping_) break;
      if (!commands_.empty()) {
        command = std::move(commands_.front());
        commands_.pop_front();
      }
    }
    if (command) {
      command->done->set_value(handle(command->request));
      continue;
    }
    if (work_ && active(work_->state())) {
      auto stepped = step();
      if (!stepped) {
        // A failed-over source breaks connections: say that, not how.
        const std::string why =
            source_failed_over() ? failover_message() : stepped.error().message();
        log("resharding paused: " + why);
        snapshot_.reset();
        source_.reset();
        target_.reset();
        target_replicas_.clear();
        work_->set_needs_repair(true);
        set_state("paused", why);
      }
    }
  }
  std::lock_guard lock(mutex_);
  for (auto& c : commands_) c.done->set_value(make_error("the proxy is stopping"));
  commands_.clear();
}

Result<std::string> ReshardController::handle(const ReshardRequest& r) {
  if (r.op == "start") {
    if (work_ && work_->state() == "paused") {
      auto resumed = resume_tracking();
      if (!resumed) return resumed.error();
      set_state(work_->copy_done_unix_ms() ? "repairing" : "copying", "resumed");
      return std::string("resumed job " + std::to_string(work_->id()));
    }
    auto begun = begin_job(r);
    if (!begun) return begun.error();
    return "started job " + std::to_string(work_->id()) + ": " + work_->message();
  }
  if (!work_) return make_error("no resharding job: start one with `shardctl reshard start`");
  if (r.op == "verify") {
    auto v = verify(false);
    if (!v) return v.error();
    return v->summary;
  }
  if (r.op == "cutover") {
    auto done = cutover();
    if (!done) return done.error();
    return work_->message();
  }
  if (r.op == "abort") {
    auto done = abort_job();
    if (!done) return done.error();
    return work_->message();
  }
  auto done = cleanup();
  if (!done) return done.error();
  return work_->message();
}

// ------------------------------------------------------------------ start

Result<void> ReshardController::begin_job(const ReshardRequest& r) {
  if (work_ && work_->state() != "cleaned" && work_->state() != "aborted")
    return make_error("resharding job " + std::to_string(work_->id()) + " is " + work_->state() +
                      (work_->state() == "cut_over"
                           ? ": run `shardctl reshard cleanup` before the next job"
                           : ": finish it (cutover) or abort it first"));
  const router::Topology& t = *ctx_.topology;
  auto plan = make_plan(t, r);
  if (!plan) return plan.error();
  config::ReshardJob job;
  job.set_id(work_ ? work_->id() + 1 : 1);
  job.set_kind(router::reshard_kind_name(plan->kind));
  job.set_source(t.shards[plan->source].name);
  job.set_target(t.shards[plan->target].name);
  job.set_moving_range(router::format_key_range(plan->moving));
  job.set_source_after(router::source_ranges_after(*plan));
  job.set_target_after(router::format_key_range(plan->target_after));
  job.set_database(r.database.empty() ? login_.database : r.database);
  job.set_started_unix_ms(unix_ms());
  job.set_source_epoch(t.shards[plan->source].epoch);
  job.set_auto_cutover(r.auto_cutover);
  // Every write is either in the snapshot or seen by the watch
  // (resume_tracking, copy_step); the copy is still compared with the source
  // once, as a check that costs one more read of the slice, and any row that
  // differs is repaired and counted (rows_repaired).
  job.set_needs_repair(true);
  for (const auto& name : plan->tables) job.add_tables()->set_table(name);
  job.set_message(router::describe(*plan, t));
  work_ = job;
  auto opened = open_connections();
  if (!opened) {
    work_.reset();
    std::lock_guard lock(mutex_);
    if (job_) work_ = *job_;
    return opened.error();
  }
  for (const auto& table : tables_) {
    auto n = source_->query("SELECT count(*) FROM " + source_->ident(table.shape.name));
    if (n && !n->empty() && n->front().front())
      work_->set_rows_estimate(work_->rows_estimate() + std::stoull(*n->front().front()));
  }
  work_->set_state("copying");
  log("resharding job " + std::to_string(job.id()) + " starts: " + job.message());
  auto tracking = resume_tracking();
  if (!tracking) {
    set_state("paused", tracking.error().message());
    return tracking.error();
  }
  save();
  return {};
}

// Tracking of written keys starts, then the snapshot is taken only once no
// transaction older than the tracking is open on the source: every write
// is then either in the snapshot or seen by the watch.
Result<void> ReshardController::resume_tracking() {
  const router::Topology& t = *ctx_.topology;
  auto source = shard_named(t, work_->source());
  if (!source) return make_error("shard " + work_->source() + " is gone from the topology");
  if (!source_) {
    auto opened = open_connections();
    if (!opened) return opened.error();
  }
  MovingSlice slice;
  slice.source = *source;
  slice.range = *router::parse_key_range(work_->moving_range());
  slice.tables.assign(t.sharding.tables.size(), false);
  for (std::uint32_t i = 0; i < t.sharding.tables.size(); ++i)
    for (const auto& c : work_->tables())
      if (c.table() == t.sharding.tables[i].name) slice.tables[i] = true;
  ctx_.reshard.start(std::move(slice));
  work_->set_source_epoch(t.shards[*source].epoch);
  // A write routed before the tracking began noted nothing: it must have
  // reached the source before the transactions still open there are
  // counted (copy_step), or it could commit after the snapshot unseen.
  std::int64_t left = 0;
  if (!ctx_.reshard.wait_unwatched_rounds(kOldTransactionsLimit, left)) {
    ctx_.reshard.stop();
    return make_error(std::to_string(left) +
                      " statements routed before the job began still wait for their answer "
                      "after " +
                      std::to_string(kOldTransactionsLimit.count()) + " s; start the job again");
  }
  tracking_since_ms_ = unix_ms();
  return {};
}

Result<void> ReshardController::open_connections() {
  const router::Topology& t = *ctx_.topology;
  auto source = shard_named(t, work_->source());
  auto target = shard_named(t, work_->target());
  if (!source || !target) return make_error("the job's shards are gone from the topology");
  replication::CopyLogin login = login_;
  login.database = work_->database();
  auto connect = [&](std::uint32_t shard) {
    return mysql_ ? replication::connect_my_reshard(primary_address(t, shard), login)
                  : replication::connect_pg_reshard(primary_address(t, shard), login);
  };
  auto s = connect(*source);
  if (!s) return s.error();
  auto d = connect(*target);
  if (!d) return d.error();
  tables_.clear();
  for (const auto& c : work_->tables()) {
    const router::ShardedTable* st = nullptr;
    for (const auto& table : t.sharding.tables)
      if (table.name == c.table()) st = &table;
    if (!st) return make_error("table " + c.table() + " is no longer sharded");
    auto on_source = (*s)->describe(st->name, st->column);
    if (!on_source) return on_source.error();
    auto on_target = (*d)->describe(st->name, st->column);
    if (!on_target) return on_target.error();
    if (on_source->columns != on_target->columns)
      return make_error("table " + st->name + " has other columns on " + work_->target() +
                        " than on " + work_->source() +
                        ": create it there with the same definition");
    replication::SliceTable slice_table;
    slice_table.shape = *on_source;
    slice_table.table = *st;
    slice_table.slice = *router::parse_key_range(work_->moving_range());
    tables_.push_back(std::move(slice_table));
  }
  source_ = std::move(*s);
  target_ = std::move(*d);
  return {};
}

// ------------------------------------------------------------------ steps

Result<void> ReshardController::step() {
  if (source_failed_over()) return make_error(failover_message());
  if (!source_) {
    auto opened = open_connections();
    if (!opened) return opened.error();
  }
  if (work_->state() == "copying") return copy_step();
  if (work_->state() == "repairing") return repair_step();
  // catching_up
  auto applied = apply_dirty(true);
  if (!applied) return applied.error();
  if (work_->auto_cutover() && ctx_.reshard.dirty_keys() < kCutoverDirtyKeys) {
    auto done = cutover();
    if (!done) log("automatic cutover refused: " + done.error().message());
  }
  std::unique_lock lock(mutex_);
  cv_.wait_for(lock, std::chrono::milliseconds(100),
               [&] { return stopping_ || !commands_.empty(); });
  return {};
}

Result<void> ReshardController::copy_step() {
  if (!snapshot_) {
    // Wait (bounded) for transactions older than the tracking to end.
    const auto give_up = Clock::now() + kOldTransactionsLimit;
    for (;;) {
      auto old = source_->transactions_older_than(tracking_since_ms_);
      if (!old) return old.error();
      if (*old == 0) break;
      if (Clock::now() > give_up)
        return make_error(std::to_string(*old) + " transactions on " + work_->source() +
                          " have been open since before the job began; end them and start "
                          "again");
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    replication::CopyLogin login = login_;
    login.database = work_->database();
    const router::Topology& t = *ctx_.topology;
    auto source = shard_named(t, work_->source());
    auto conn = mysql_ ? replication::connect_my_reshard(primary_address(t, *source), login)
                       : replication::connect_pg_reshard(primary_address(t, *source), login);
    if (!conn) return conn.error();
    if (auto ok = (*conn)->begin_snapshot(); !ok) return ok.error();
    snapshot_ = std::move(*conn);
    copy_started_ = Clock::now();
  }
  for (int i = 0; i < work_->tables_size(); ++i) {
    config::TableCopy* c = work_->mutable_tables(i);
    if (c->done()) continue;
    std::vector<replication::Cell> after(c->last_pk().begin(), c->last_pk().end());
    auto chunk = replication::copy_chunk(*snapshot_, *target_, tables_[i], after, kCopyChunkRows);
    if (!chunk) return chunk.error();
    c->clear_last_pk();
    for (const auto& v : chunk->last_pk) c->add_last_pk(v.value_or(""));
    c->set_rows(c->rows() + chunk->copied);
    c->set_done(chunk->done);
    work_->set_rows_read(work_->rows_read() + chunk->read);
    work_->set_rows_copied(work_->rows_copied() + chunk->copied);
    work_->set_bytes_copied(work_->bytes_copied() + chunk->bytes);
    work_->set_copy_seconds(work_->copy_seconds() +
                            std::chrono::duration<double>(Clock::now() - copy_started_).count());
    copy_started_ = Clock::now();
    save();
    return {};
  }
  snapshot_->rollback();  // read-only: nothing to keep
  snapshot_.reset();
  work_->set_copy_done_unix_ms(unix_ms());
  set_state(work_->needs_repair() ? "repairing" : "catching_up",
            "copied " + std::to_string(work_->rows_copied()) + " rows in " +
                std::to_string(work_->copy_seconds()) + " s");
  log("resharding job " + std::to_string(work_->id()) + ": " + work_->message());
  return {};
}

Result<void> ReshardController::repair_step() {
  ctx_.reshard.take();  // the comparison covers every key written so far
  std::uint64_t repaired = 0;
  for (auto& t : tables_) {
    auto compared = replication::compare_slice(*source_, *target_, t, true);
    if (!compared) return compared.error();
    repaired += compared->repaired;
  }
  work_->set_rows_repaired(work_->rows_repaired() + repaired);
  work_->set_needs_repair(false);
  set_state("catching_up",
            "compared the copy with the source: " + std::to_string(repaired) + " rows repaired");
  log("resharding job " + std::to_string(work_->id()) + ": " + work_->message());
  return {};
}

Result<std::uint64_t> ReshardController::apply_dirty(bool include_tables) {
  ReshardWatch::Dirty dirty = ctx_.reshard.take();
  if (dirty.keys.empty() && dirty.tables.empty()) return std::uint64_t{0};
  const router::Topology& t = *ctx_.topology;
  std::map<std::uint32_t, std::vector<std::string>> by_table;
  for (const MovedKey& k : dirty.keys) by_table[k.table].push_back(k.key);
  std::uint64_t applied = 0;
  auto slice_of = [&](std::uint32_t table) -> replication::SliceTable* {
    for (auto& s : tables_)
      if (table < t.sharding.tables.size() && s.table.name == t.sharding.tables[table].name)
        return &s;
    return nullptr;
  };
  for (const auto& [table, keys] : by_table) {
    replication::SliceTable* s = slice_of(table);
    if (!s) continue;
    auto n = replication::copy_keys(*source_, *target_, *s, keys);
    if (!n) return n.error();  // the caller pauses the job; repair covers the lost keys
    applied += keys.size();
  }
  if (include_tables) {
    for (std::uint32_t table : dirty.tables) {
      replication::SliceTable* s = slice_of(table);
      if (!s) continue;
      auto compared = replication::compare_slice(*source_, *target_, *s, true);
      if (!compared) return compared.error();
      work_->set_rows_repaired(work_->rows_repaired() + compared->repaired);
    }
  }
  work_->set_keys_applied(work_->keys_applied() + applied);
  return applied;
}

std::string ReshardController::failover_message() const {
  return "shard " + work_->source() +
         " failed over during resharding: the job is paused; `shardctl reshard start` resumes "
         "it against the new primary (the copy is compared and repaired first)";
}

Result<void> ReshardController::wait_for_target_replicas(std::chrono::milliseconds limit) {
  const router::Topology& t = *ctx_.topology;
  auto target = shard_named(t, work_->target());
  if (!target) return make_error("shard " + work_->target() + " is gone from the topology");
  if (target_replicas_.size() != t.shards[*target].replicas.size()) {
    target_replicas_.clear();
    replication::CopyLogin login = login_;
    login.database = work_->database();
    for (std::uint32_t b : t.shards[*target].replicas) {
      const router::BackendInfo& info = t.backends[b];
      auto conn =
          mysql_ ? replication::connect_my_reshard(
                       {info.name, info.host, info.port, info.unix_socket_dir, info.unix_socket},
                       login)
                 : replication::connect_pg_reshard(
                       {info.name, info.host, info.port, info.unix_socket_dir, info.unix_socket},
                       login);
      // A replica that is down gets no reads; only answering ones must catch up.
      if (conn) target_replicas_.push_back(std::move(*conn));
    }
  }
  auto position = target_->write_position();
  if (!position) return position.error();
  const auto give_up = Clock::now() + limit;
  for (auto& replica : target_replicas_) {
    for (;;) {
      auto done = replica->replayed(*position);
      if (!done) {
        target_replicas_.clear();  // reconnect next time
        return done.error();
      }
      if (*done) break;
      if (Clock::now() > give_up)
        return make_error("a replica of " + work_->target() + " has not replayed " + *position +
                          " within " + std::to_string(limit.count()) + " ms");
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  return {};
}

bool ReshardController::source_failed_over() {
  auto source = shard_named(*ctx_.topology, work_->source());
  return !source || ctx_.topology->shards[*source].epoch != work_->source_epoch();
}

// ------------------------------------------------------------------ verify, cutover

Result<ReshardVerify> ReshardController::verify(bool explained_by_dirty) {
  if (!source_) {
    auto opened = open_connections();
    if (!opened) return opened.error();
  }
  ReshardVerify v;
  v.ok = true;
  for (auto& t : tables_) {
    auto c = replication::compare_slice(*source_, *target_, t, false);
    if (!c) return c.error();
    std::uint64_t unexplained = c->differing;
    if (explained_by_dirty && c->differing > 0) {
      // Rows written since the last catch-up differ until it applies them.
      unexplained = 0;
      for (const auto& key : c->differing_keys)
        if (!ctx_.reshard.is_dirty(table_index(t.table.name), key)) ++unexplained;
    }
    if (unexplained > 0) v.ok = false;
    v.summary += t.shape.name + ": source " + std::to_string(c->source_rows) + " rows (checksum " +
                 std::to_string(c->source_checksum) + "), target " +
                 std::to_string(c->target_rows) + " rows (checksum " +
                 std::to_string(c->target_checksum) + "), " + std::to_string(c->differing) +
                 " differ";
    if (explained_by_dirty) v.summary += " (" + std::to_string(unexplained) + " unexplained)";
    if (!c->examples.empty()) {
      v.summary += ", e.g. primary key";
      for (const auto& e : c->examples) v.summary += " " + e;
    }
    v.summary += "\n";
  }
  std::lock_guard lock(mutex_);
  last_verify_ = v;
  return v;
}

std::uint32_t ReshardController::table_index(const std::string& name) const {
  const router::Topology& t = *ctx_.topology;
  for (std::uint32_t i = 0; i < t.sharding.tables.size(); ++i)
    if (t.sharding.tables[i].name == name) return i;
  return UINT32_MAX;
}

Result<void> ReshardController::cutover() {
  if (work_->state() == "copying" || work_->state() == "repairing")
    return make_error("the copy is not complete (state " + work_->state() +
                      "): wait until `shardctl reshard status` says catching_up");
  if (work_->state() != "catching_up")
    return make_error("job " + std::to_string(work_->id()) + " is " + work_->state() +
                      ": only a job that is catching up can cut over");
  for (int round = 0; round < 10; ++round) {
    auto applied = apply_dirty(true);
    if (!applied) return applied.error();
    if (ctx_.reshard.dirty_keys() < kCutoverDirtyKeys) break;
  }
  auto v = verify(true);
  if (!v) return v.error();
  if (!v->ok) {
    set_state("catching_up",
              "cutover refused: verification found rows that differ and that no "
              "write through shardgate explains (written directly to a server?):\n" +
                  v->summary);
    return make_error(work_->message());
  }
  // Writes went on during the verification: catch up again, so that the
  // pause applies only what arrives in the last moments.
  for (int round = 0; round < 5; ++round) {
    auto applied = apply_dirty(true);
    if (!applied) return applied.error();
    if (ctx_.reshard.dirty_keys() < kCutoverDirtyKeys / 5) break;
  }
  // Rows copied long ago must be on the target's replicas before reads may
  // go there.
  if (auto caught_up = wait_for_target_replicas(kReplicaCatchUpLimit); !caught_up) {
    set_state("catching_up", "cutover refused: " + caught_up.error().message());
    return make_error(work_->message());
  }
  // The pause: new rounds outside transactions wait at the proxy.
  const auto paused_at = Clock::now();
  ctx_.reshard.set_paused(true);
  auto resume = [&] {
    ctx_.reshard.set_paused(false);
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - paused_at).count();
    work_->add_pauses_ms(ms);
    return ms;
  };
  if (!ctx_.reshard.wait_drained(kDrainLimit)) {
    const double ms = resume();
    set_state("catching_up",
              "cutover refused: transactions writing into the moving slice did "
              "not end within " +
                  std::to_string(kDrainLimit.count()) + " ms (writes paused " + std::to_string(ms) +
                  " ms, now resumed); try again");
    return make_error(work_->message());
  }
  auto applied = apply_dirty(true);
  if (!applied) {
    resume();
    return applied.error();
  }
  // ... and so must the last keys: usually a few milliseconds. Past the
  // bound the cutover goes on, and those rows read as a lagging replica's do.
  if (auto caught_up = wait_for_target_replicas(kReplicaInPauseLimit); !caught_up)
    log("cutover: " + caught_up.error().message() + "; going on");
  const std::string reason = "resharding job " + std::to_string(work_->id()) + ": " +
                             work_->kind() + ", " + work_->moving_range() + " moved from " +
                             work_->source() + " to " + work_->target();
  const config::ReshardJob job = *work_;
  auto version = owner_.change_topology(
      [&job, &reason](const config::TopologyRecord& current) -> Result<config::TopologyRecord> {
        return resharded_record(current, job.source(), job.source_after(), job.target(),
                                job.target_after(), reason);
      });
  if (!version) {
    resume();
    set_state("catching_up",
              "cutover failed to publish the topology: " + version.error().message());
    return version.error();
  }
  ctx_.reshard.stop();
  const double ms = resume();
  work_->set_topology_version(*version);
  set_state("cut_over", "cut over to topology v" + std::to_string(*version) + " with writes " +
                            "paused " + std::to_string(ms) + " ms (" + std::to_string(*applied) +
                            " keys applied in the pause); the " +
                            "source still holds the moved rows: run `shardctl reshard cleanup`");
  log("resharding job " + std::to_string(work_->id()) + ": " + work_->message());
  return {};
}

// ------------------------------------------------------------------ abort, cleanup

Result<void> ReshardController::abort_job() {
  if (work_->state() == "cut_over" || work_->state() == "cleaned")
    return make_error("job " + std::to_string(work_->id()) +
                      " has cut over: the new topology "
                      "serves; moving the rows back is a new job the other way");
  if (work_->state() == "aborted") return make_error("the job is aborted already");
  ctx_.reshard.stop();
  if (snapshot_) snapshot_->rollback();
  snapshot_.reset();
  std::uint64_t removed = 0;
  if (!target_) (void)open_connections();
  if (target_) {
    for (auto& t : tables_) {
      auto n = replication::delete_slice(*target_, t);
      if (n) removed += *n;
    }
  }
  set_state("aborted", "aborted; the old topology serves on; " + std::to_string(removed) +
                           " copied rows removed from " + work_->target());
  log("resharding job " + std::to_string(work_->id()) + ": " + work_->message());
  return {};
}

Result<void> ReshardController::cleanup() {
  if (work_->state() != "cut_over")
    return make_error("cleanup removes the moved rows from the source after a cutover; job " +
                      std::to_string(work_->id()) + " is " + work_->state());
  if (!source_) {
    auto opened = open_connections();
    if (!opened) return opened.error();
  }
  std::uint64_t removed = 0;
  for (auto& t : tables_) {
    auto n = replication::delete_slice(*source_, t);
    if (!n) return n.error();
    removed += *n;
  }
  work_->set_rows_cleaned(removed);
  set_state("cleaned",
            "removed " + std::to_string(removed) + " moved rows from " + work_->source());
  log("resharding job " + std::to_string(work_->id()) + ": " + work_->message());
  source_.reset();
  target_.reset();
  target_replicas_.clear();
  return {};
}

// ------------------------------------------------------------------ state

void ReshardController::set_state(const std::string& state, const std::string& message) {
  work_->set_state(state);
  if (!message.empty()) work_->set_message(message);
  save();
}

void ReshardController::save() {
  if (db_) {
    rocksdb::WriteOptions options;
    options.sync = true;
    const auto s = db_->Put(options, kJobKey, work_->SerializeAsString());
    if (!s.ok()) log("cannot checkpoint the resharding job: " + s.ToString());
  }
  std::lock_guard lock(mutex_);
  job_ = *work_;
}

std::string ReshardController::status_json() const {
  std::lock_guard lock(mutex_);
  json::object o;
  if (!job_) {
    o["state"] = "none";
    return json::serialize(o) + "\n";
  }
  const config::ReshardJob& j = *job_;
  o["id"] = j.id();
  o["kind"] = j.kind();
  o["source"] = j.source();
  o["target"] = j.target();
  o["moving_range"] = j.moving_range();
  o["source_after"] = j.source_after();
  o["target_after"] = j.target_after();
  o["database"] = j.database();
  o["state"] = j.state();
  o["message"] = j.message();
  o["rows_estimate"] = j.rows_estimate();
  o["rows_read"] = j.rows_read();
  o["rows_copied"] = j.rows_copied();
  o["bytes_copied"] = j.bytes_copied();
  o["copy_seconds"] = j.copy_seconds();
  const double rate = j.copy_seconds() > 0 ? j.rows_read() / j.copy_seconds() : 0;
  o["rows_per_second"] = rate;
  o["eta_seconds"] = rate > 0 && j.rows_estimate() > j.rows_read()
                         ? (j.rows_estimate() - j.rows_read()) / rate
                         : 0.0;
  o["keys_applied"] = j.keys_applied();
  o["keys_pending"] = ctx_.reshard.dirty_keys();
  // A cutover in its pause: new writes into the slice wait at the proxy.
  o["writes_paused"] = ctx_.reshard.paused();
  o["sessions_holding_writes"] = ctx_.reshard.holding();
  o["rows_repaired"] = j.rows_repaired();
  o["rows_cleaned"] = j.rows_cleaned();
  json::array pauses;
  for (double p : j.pauses_ms()) pauses.push_back(p);
  o["pauses_ms"] = std::move(pauses);
  o["topology_version"] = j.topology_version();
  json::array tables;
  for (const auto& t : j.tables()) {
    json::object to;
    to["table"] = t.table();
    to["rows"] = t.rows();
    to["done"] = t.done();
    tables.push_back(std::move(to));
  }
  o["tables"] = std::move(tables);
  if (last_verify_) {
    o["last_verify_ok"] = last_verify_->ok;
    o["last_verify"] = last_verify_->summary;
  }
  return json::serialize(o) + "\n";
}

void ReshardController::log(const std::string& line) const {
  std::fprintf(stderr, "shardgate: %s\n", line.c_str());
}

}  // namespace shardgate
