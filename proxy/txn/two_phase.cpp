#include "proxy/txn/two_phase.h"

namespace shardgate::txn {

namespace {

// Transaction names are [a-z0-9_] (DecisionLog::next_gid), safe in quotes.
std::string quoted(const std::string& gid) {
  return "'" + gid + "'";
}

const TwoPhaseSql kPostgres{
    [](const std::string& gid) {
      return std::vector<std::string>{"PREPARE TRANSACTION " + quoted(gid)};
    },
    [](const std::string& gid) {
      return std::vector<std::string>{"COMMIT PREPARED " + quoted(gid)};
    },
    [](const std::string& gid) {
      return std::vector<std::string>{"ROLLBACK PREPARED " + quoted(gid)};
    },
    [](const std::string&) { return std::vector<std::string>{"COMMIT"}; },
    [](const std::string&) { return std::vector<std::string>{"ROLLBACK"}; },
};

// Every leg of a MySQL transaction over several shards is an XA branch from
// its first statement (a plain transaction cannot become one later).
const TwoPhaseSql kMySql{
    [](const std::string& gid) {
      return std::vector<std::string>{"XA END " + quoted(gid), "XA PREPARE " + quoted(gid)};
    },
    [](const std::string& gid) { return std::vector<std::string>{"XA COMMIT " + quoted(gid)}; },
    [](const std::string& gid) { return std::vector<std::string>{"XA ROLLBACK " + quoted(gid)}; },
    [](const std::string& gid) {
      return std::vector<std::string>{"XA END " + quoted(gid),
                                      "XA COMMIT " + quoted(gid) + " ONE PHASE"};
    },
    [](const std::string& gid) {
      return std::vector<std::string>{"XA END " + quoted(gid), "XA ROLLBACK " + quoted(gid)};
    },
};

const TwoPhaseSql kOnePhase{
    nullptr,
    nullptr,
    nullptr,
    [](const std::string&) { return std::vector<std::string>{"COMMIT"}; },
    [](const std::string&) { return std::vector<std::string>{"ROLLBACK"}; },
};

asio::awaitable<Result<void>> write_decision(DecisionLog& log, std::string gid,
                                             std::vector<std::string> shards) {
  co_return log.record_commit(gid, shards);
}

}  // namespace

const TwoPhaseSql& postgres_two_phase() {
  return kPostgres;
}
const TwoPhaseSql& mysql_two_phase() {
  return kMySql;
}
const TwoPhaseSql& one_phase_only() {
  return kOnePhase;
}

asio::awaitable<Result<void>> record_commit_async(DecisionLog& log, std::string gid,
                                                  std::vector<std::string> shards) {
  // Two threads, so that concurrent decisions share fsyncs (RocksDB groups
  // the writes that wait together) and no I/O thread ever blocks on a disk.
  static asio::thread_pool writers(2);
  co_return co_await asio::co_spawn(writers, write_decision(log, std::move(gid), std::move(shards)),
                                    asio::use_awaitable);
}

asio::awaitable<void> pause_if(const std::optional<TestPause>& pause, std::string_view point) {
  if (!pause || pause->point != point) co_return;
  asio::steady_timer timer(co_await asio::this_coro::executor, pause->duration);
  co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
}

}  // namespace shardgate::txn
