// The MySQL session's side of the write journal (replication/write_journal.h):
// the writes a client sends its shard's primary are collected while their
// transaction runs, and stored under the commit's GTID when the server's OK
// reports it, before that OK is relayed: nothing is acknowledged that the
// journal does not hold. A write whose statement fails is dropped from the
// collection; a transaction that ends without a GTID (rolled back, or it
// changed nothing) leaves nothing behind.
#include <chrono>
#include <map>

#include "proxy/session/my_session.h"
#include "replication/mysql_monitor.h"

namespace shardgate::session {

namespace {

using replication::journal::Param;

// A parameter as the binary protocol carried it, for replay as a parameter.
Result<Param> journal_param(mysql::PayloadReader& reader, mysql::BinaryType type) {
  Param p;
  p.set_type(type.type);
  p.set_is_unsigned(type.is_unsigned);
  auto value = mysql::read_binary_value(reader, type);
  if (!value) return value.error();
  auto time_of_day = [&p](const auto& v) {
    p.set_hour(v.hour);
    p.set_minute(v.minute);
    p.set_second(v.second);
    p.set_microsecond(v.microsecond);
  };
  if (auto* i = std::get_if<std::int64_t>(&*value)) {
    p.set_kind(Param::INT);
    p.set_int_value(*i);
  } else if (auto* u = std::get_if<std::uint64_t>(&*value)) {
    p.set_kind(Param::UINT);
    p.set_uint_value(*u);
  } else if (auto* f = std::get_if<float>(&*value)) {
    p.set_kind(Param::FLOAT);
    p.set_real_value(*f);
  } else if (auto* d = std::get_if<double>(&*value)) {
    p.set_kind(Param::DOUBLE);
    p.set_real_value(*d);
  } else if (auto* dt = std::get_if<mysql::DateTime>(&*value)) {
    p.set_kind(Param::DATETIME);
    p.set_year(dt->year);
    p.set_month(dt->month);
    p.set_day(dt->day);
    time_of_day(*dt);
  } else if (auto* t = std::get_if<mysql::TimeValue>(&*value)) {
    p.set_kind(Param::TIME);
    p.set_negative(t->negative);
    p.set_days(t->days);
    time_of_day(*t);
  } else if (auto* bytes = std::get_if<std::string_view>(&*value)) {
    p.set_kind(Param::BYTES);
    p.set_bytes_value(std::string(*bytes));
  }
  return p;
}

}  // namespace

bool MySession::journal_wanted(const router::Statement& stmt) {
  if (!ctx_.journal || txn_xa_ || server_.role != router::TargetRole::Primary ||
      !router::writes_data(stmt))
    return false;
  // Server connections track session state only for clients that asked for
  // it (the OK packets are relayed as they are): without it no GTID comes.
  if (!(capabilities_ & mysql::kClientSessionTrack)) {
    bump(worker_.metrics().journal_unrecorded_commits_total);
    return false;
  }
  return true;
}

void MySession::journal_statement(std::string_view sql, const router::Statement& stmt) {
  if (!journal_wanted(stmt)) return;
  replication::journal::Statement s;
  s.set_sql(std::string(sql));
  journal_add(std::move(s));
  journal_differs_ = journal_differs_ || replication::replay_may_differ(sql);
}

// The parameters come from the execute (or, for those sent ahead with
// COM_STMT_SEND_LONG_DATA, from those chunks); their types from the execute
// or the statement's previous one.
void MySession::journal_execute(const MyClientStatement& st, const mysql::StmtExecute& exec) {
  if (!journal_wanted(st.routing)) return;
  replication::journal::Statement s;
  s.set_sql(st.query);
  s.set_prepared(true);
  std::vector<mysql::BinaryType> types = exec.param_types;
  for (std::size_t i = 0; types.empty() && i + 1 < st.param_types.size(); i += 2)
    types.push_back({static_cast<std::uint8_t>(st.param_types[i]),
                     (static_cast<std::uint8_t>(st.param_types[i + 1]) & 0x80) != 0});
  std::map<std::uint16_t, std::string> long_data;
  for (const std::string& chunk : st.long_data) {
    if (chunk.size() < 7) continue;
    const auto param = static_cast<std::uint16_t>(static_cast<std::uint8_t>(chunk[5]) |
                                                  static_cast<std::uint8_t>(chunk[6]) << 8);
    long_data[param].append(chunk, 7);
  }
  bool decoded = types.size() >= st.num_params;
  mysql::PayloadReader reader(exec.values);
  for (std::uint16_t i = 0; decoded && i < st.num_params; ++i) {
    const bool null = i / 8 < exec.null_bitmap.size() &&
                      (static_cast<std::uint8_t>(exec.null_bitmap[i / 8]) >> (i % 8)) & 1;
    Param* p = s.add_params();
    p->set_type(types[i].type);
    p->set_is_unsigned(types[i].is_unsigned);
    // Long data wins over the NULL bit, as in the server: Connector/C sets
    // the bit for a parameter bound without a buffer, sent as long data.
    if (auto it = long_data.find(i); it != long_data.end()) {
      p->set_kind(Param::BYTES);
      p->set_bytes_value(std::move(it->second));
      continue;
    }
    if (null) continue;  // NULL_VALUE
    auto param = journal_param(reader, types[i]);
    if (!param) {
      decoded = false;
      break;
    }
    *p = std::move(*param);
  }
  if (!decoded) {
    // Keeping the rest of the transaction without it would replay something
    // that never was: the whole transaction goes unrecorded.
    journal_broken_ = true;
    return;
  }
  journal_add(std::move(s));
  journal_differs_ = journal_differs_ || replication::replay_may_differ(st.query);
}

void MySession::journal_add(replication::journal::Statement s) {
  if (journal_pending_.empty()) {
    journal_first_schema_ = journal_schema_ = database_;
  } else if (journal_schema_ != database_) {
    // The transaction moved on to another schema (USE) since its last write.
    replication::journal::Statement use;
    use.set_sql("USE `" + database_ + "`");
    journal_pending_.push_back(std::move(use));
    journal_schema_ = database_;
  }
  journal_pending_.push_back(std::move(s));
  journal_awaiting_ = true;
}

void MySession::journal_commit(const std::string& gtid) {
  // A GTID reported while a transaction is still open is not its commit's
  // (a value tracked from before): the commit's OK ends the transaction.
  if (!ctx_.journal || tracker_.in_transaction()) return;
  if (journal_pending_.empty() || journal_broken_) {
    drop_journal();
    // A commit of something the journal did not see (a transaction over
    // several shards, a parameter it could not decode): counted, not kept.
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
  journal_broken_ = false;
  journal_schema_.clear();
  journal_first_schema_.clear();
}

}  // namespace shardgate::session
