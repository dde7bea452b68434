// The MySQL session's side of the write journal (replication/write_journal.h):
// the writes a client sends its shard's primary are collected while their
// transaction runs, and stored under the commit's GTID when the server's OK
// reports it, before that OK is relayed: nothing is acknowledged that the
// journal does not hold. A write whose statement fails is dropped from the
// collection; a transaction that ends without a GTID (rolled back, or it
// changed nothing) leaves nothing behind.
#include <chrono>

#include "proxy/session/my_session.h"
#include "replication/mysql_monitor.h"

namespace shardgate::session {

void MySession::journal_statement(std::string_view sql, const router::Statement& stmt) {
  if (!ctx_.journal || txn_xa_ || server_.role != router::TargetRole::Primary ||
      !router::writes_data(stmt))
    return;
  // Server connections track session state only for clients that asked for
  // it (the OK packets are relayed as they are): without it no GTID comes.
  if (!(capabilities_ & mysql::kClientSessionTrack)) {
    bump(worker_.metrics().journal_unrecorded_commits_total);
    return;
  }
  if (journal_pending_.empty()) {
    journal_first_schema_ = journal_schema_ = database_;
  } else if (journal_schema_ != database_) {
    // The transaction moved on to another schema (USE) since its last write.
    replication::journal::Statement use;
    use.set_sql("USE `" + database_ + "`");
    journal_pending_.push_back(std::move(use));
    journal_schema_ = database_;
  }
  replication::journal::Statement s;
  s.set_sql(std::string(sql));
  journal_pending_.push_back(std::move(s));
  journal_differs_ = journal_differs_ || replication::replay_may_differ(sql);
  journal_awaiting_ = true;
}

void MySession::journal_commit(const std::string& gtid) {
  if (!ctx_.journal) return;
  if (journal_pending_.empty()) {
    // A commit of something the journal did not see (a prepared statement's
    // write, a transaction over several shards): counted, not kept.
    bump(worker_.metrics().journal_unrecorded_commits_total);
    return;
  }
  if (journal_awaiting_) journal_pending_.back().set_insert_id(tracker_.last_insert_id());
  journal_awaiting_ = false;
  auto seq = replication::parse_gtid_seq(gtid, 0);
  replication::journal::Entry e;
  e.set_shard(server_shard_);
  e.set_gtid(gtid);
  e.set_seq(seq && *seq ? **seq : 0);
  e.set_user(user_->name());
  e.set_database(journal_first_schema_);
  for (const auto& s : settings_) e.add_settings(s);
  e.set_timestamp_us(std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count());
  for (auto& s : journal_pending_) *e.add_statements() = std::move(s);
  e.set_nondeterministic(journal_differs_);
  drop_journal();
  if (e.seq() == 0 || !ctx_.journal->append(e)) {
    bump(worker_.metrics().journal_errors_total);
    return;
  }
  bump(worker_.metrics().journal_entries_total);
}

void MySession::settle_journal(bool failed) {
  if (journal_awaiting_) {
    // A failed statement changed nothing (MariaDB rolls back the statement).
    if (failed) {
      journal_pending_.pop_back();
    } else {
      journal_pending_.back().set_insert_id(tracker_.last_insert_id());
    }
    journal_awaiting_ = false;
  }
  if (!tracker_.in_transaction()) drop_journal();
}

void MySession::drop_journal() {
  journal_pending_.clear();
  journal_differs_ = false;
  journal_awaiting_ = false;
  journal_schema_.clear();
  journal_first_schema_.clear();
}

}  // namespace shardgate::session
