// Ending a transaction that ran on several shards, whatever the protocol.
//
// One shard that wrote (the others only read): every leg commits in one
// phase; there is nothing to make atomic. Two or more that wrote: two-phase
// commit. Each writer prepares; if all did, the decision is written to the
// DecisionLog and synced, and only then is each told to commit. A failed
// prepare rolls back every leg and the client gets that shard's error. A leg
// that fails after the decision is committed later by the resolver (at
// start-up, and while running), so the client's COMMIT stands.
//
// The protocol session supplies a Runner: given statements per leg it sends
// them (all legs at once) and reports what each server said. The SQL of each
// step comes from the engine's TwoPhaseSql.
#pragma once

#include <boost/asio.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "proxy/txn/decision_log.h"

namespace shardgate::txn {

namespace asio = boost::asio;

// What one server answered to the statements sent to it.
struct LegAnswer {
  bool ok = false;        // every statement succeeded
  bool lost = false;      // the connection failed: the server's state is unknown
  std::string tag;        // PostgreSQL: the last CommandComplete tag
  std::string error;      // why not ok, for the log and the client
  std::string raw_error;  // the error as the server sent it (relayed to the client)
  // MySQL: what the OK packets said (affected rows summed, the first insert id).
  std::uint64_t affected_rows = 0;
  std::uint64_t insert_id = 0;
};

// A leg whose connection failed: its server's state is unknown.
inline LegAnswer lost_answer(std::string why) {
  LegAnswer a;
  a.lost = true;
  a.error = std::move(why);
  return a;
}

struct Leg {
  std::string shard;  // name, for the decision log
  bool wrote = false;
};

// The statements of each step for one engine (gid: the transaction's name).
struct TwoPhaseSql {
  std::vector<std::string> (*prepare)(const std::string& gid);
  std::vector<std::string> (*commit_prepared)(const std::string& gid);
  std::vector<std::string> (*rollback_prepared)(const std::string& gid);
  std::vector<std::string> (*commit)(const std::string& gid);    // a leg in one phase
  std::vector<std::string> (*rollback)(const std::string& gid);  // a leg not prepared
};

const TwoPhaseSql& postgres_two_phase();
const TwoPhaseSql& mysql_two_phase();
// COMMIT / ROLLBACK on each leg, nothing prepared: a read-only transaction.
const TwoPhaseSql& one_phase_only();

// Statements for some legs: (leg index, statements in order).
using Steps = std::vector<std::pair<std::size_t, std::vector<std::string>>>;

enum class Outcome : std::uint8_t {
  Committed,
  RolledBack,  // what the client asked for, or a transaction already failed
  Failed,      // COMMIT asked, and a shard refused: every leg rolled back
};

struct EndResult {
  Outcome outcome = Outcome::Committed;
  std::size_t failed_leg = 0;  // Failed: whose answer is `failure`
  std::string failed_shard;
  LegAnswer failure;
  bool two_phase = false;
  bool decision_pending = false;  // some leg did not confirm phase two yet
  std::string gid;
};

// A pause for tests that kill the proxy between the phases (point:
// "after_prepare" or "after_decision").
struct TestPause {
  std::string point;
  std::chrono::milliseconds duration{0};
};

// Writes the decision on the log's own threads (it waits for an fsync) and
// resumes the caller on its executor.
asio::awaitable<Result<void>> record_commit_async(DecisionLog& log, std::string gid,
                                                  std::vector<std::string> shards);

asio::awaitable<void> pause_if(const std::optional<TestPause>& pause, std::string_view point);

inline bool prepared(const LegAnswer& a) {
  return a.ok && a.tag != "ROLLBACK";
}

// `commit` false: the client asked for ROLLBACK (or its transaction failed).
// `gid`: the name the legs already carry (MySQL XA); else a new one.
template <class Runner>
asio::awaitable<EndResult> end_transaction(const std::vector<Leg>& legs, bool commit,
                                           DecisionLog* log, const TwoPhaseSql& sql, Runner& run,
                                           const std::optional<TestPause>& pause,
                                           std::optional<std::string> gid = std::nullopt) {
  EndResult result;
  std::vector<std::size_t> writers;
  for (std::size_t i = 0; i < legs.size(); ++i)
    if (legs[i].wrote) writers.push_back(i);
  result.gid = gid ? *gid : log ? log->next_gid() : std::string("sg_local");
  if (!commit) {
    Steps steps;
    for (std::size_t i = 0; i < legs.size(); ++i) steps.emplace_back(i, sql.rollback(result.gid));
    co_await run(steps);
    result.outcome = Outcome::RolledBack;
    co_return result;
  }
  if (writers.size() < 2 || !sql.prepare) {
    Steps steps;
    for (std::size_t i = 0; i < legs.size(); ++i) steps.emplace_back(i, sql.commit(result.gid));
    std::vector<LegAnswer> answers = co_await run(steps);
    // Only a writer's answer matters: the others changed nothing.
    for (std::size_t i = 0; i < answers.size(); ++i) {
      if (legs[i].wrote && !prepared(answers[i])) {
        result.outcome = answers[i].ok ? Outcome::RolledBack : Outcome::Failed;
        result.failed_leg = i;
        result.failed_shard = legs[i].shard;
        result.failure = answers[i];
      }
    }
    co_return result;
  }

  result.two_phase = true;
  Steps prepare;
  for (std::size_t i = 0; i < legs.size(); ++i)
    prepare.emplace_back(i, legs[i].wrote ? sql.prepare(result.gid) : sql.commit(result.gid));
  std::vector<LegAnswer> answers = co_await run(prepare);
  std::optional<std::size_t> refused;
  for (std::size_t i : writers)
    if (!prepared(answers[i]) && !refused) refused = i;
  std::optional<Error> unlogged;
  if (!refused) {
    co_await pause_if(pause, "after_prepare");
    std::vector<std::string> shards;
    for (std::size_t i : writers) shards.push_back(legs[i].shard);
    auto logged = co_await record_commit_async(*log, result.gid, shards);
    if (!logged) unlogged = logged.error();
  }
  if (refused || unlogged) {
    // Presumed abort: without a decision every prepared writer rolls back.
    Steps undo;
    for (std::size_t i : writers)
      if (prepared(answers[i])) undo.emplace_back(i, sql.rollback_prepared(result.gid));
    co_await run(undo);
    result.outcome = Outcome::Failed;
    if (refused) {
      result.failed_leg = *refused;
      result.failure = answers[*refused];
    } else {
      result.failed_leg = writers.front();
      result.failure.error = unlogged->message();
    }
    result.failed_shard = legs[result.failed_leg].shard;
    co_return result;
  }
  co_await pause_if(pause, "after_decision");
  Steps finish;
  for (std::size_t i : writers) finish.emplace_back(i, sql.commit_prepared(result.gid));
  std::vector<LegAnswer> done = co_await run(finish);
  bool all = true;
  for (const auto& a : done) all = all && a.ok;
  if (all)
    (void)log->forget(result.gid);
  else
    result.decision_pending = true;  // the resolver commits the rest
  result.outcome = Outcome::Committed;
  co_return result;
}

}  // namespace shardgate::txn
