// PostgreSQL failover steps over libpq: fence with a read-only default and
// terminated sessions, promote with pg_promote(), follow by rewriting
// primary_conninfo and reloading (PostgreSQL 13 and later reload it without
// a restart; recovery_target_timeline 'latest' follows the new timeline).
#include <libpq-fe.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "replication/client_handles.h"
#include "replication/failover_ops.h"
#include "replication/pg_monitor.h"
#include "replication/pg_old_primary.h"

namespace shardgate::replication {
namespace {

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// A libpq conninfo value in single quotes (backslash and quote escaped).
std::string conninfo_value(const std::string& v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

// A SQL string literal (standard_conforming_strings is on since 9.1).
std::string sql_literal(const std::string& v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

class PgFailoverOps final : public FailoverOps {
 public:
  explicit PgFailoverOps(FailoverLogin login) : login_(std::move(login)) {}

  Result<void> fence(const ServerAddress& server) override {
    auto conn = connect(server);
    if (!conn) return conn.error();
    // Each on its own: ALTER SYSTEM cannot run inside a transaction block.
    for (const char* sql :
         {"ALTER SYSTEM SET default_transaction_read_only = on", "SELECT pg_reload_conf()",
          "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
          "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"}) {
      if (auto r = exec(conn->get(), server, sql); !r) return r.error();
    }
    return {};
  }

  // As the user that wrote it, in its database, after its SET statements,
  // in one transaction. now() and the like give the replay's time
  // (PostgreSQL cannot be told another): such entries are counted as
  // nondeterministic.
  // One connection per (user, database) serves the whole catch-up: a
  // connection per transaction cost ~4 ms each, most of a 120-transaction
  // replay. RESET ALL clears the previous entry's settings.
  Result<void> replay(const ServerAddress& primary, const journal::Entry& entry,
                      const std::string& user, const std::string& password) override {
    const auto key = std::make_tuple(primary.name, user, entry.database());
    auto cached = replay_conns_.find(key);
    if (cached != replay_conns_.end() && PQstatus(cached->second.get()) != CONNECTION_OK) {
      replay_conns_.erase(cached);
      cached = replay_conns_.end();
    }
    if (cached == replay_conns_.end()) {
      auto conn = connect(primary, user, password, entry.database());
      if (!conn) return conn.error();
      cached = replay_conns_.emplace(key, std::move(*conn)).first;
    }
    PGconn* c = cached->second.get();
    auto fail = [&](const Error& e) {
      exec(c, primary, "ROLLBACK");
      return make_error("replaying " + entry.gtid() + ": " + e.message());
    };
    if (auto r = exec(c, primary, "RESET ALL"); !r) return fail(r.error());
    for (const auto& sql : entry.settings())
      if (auto r = exec(c, primary, sql); !r) return fail(r.error());
    if (auto r = exec(c, primary, "BEGIN"); !r) return fail(r.error());
    for (const auto& st : entry.statements()) {
      auto r = st.prepared() ? exec_params(c, primary, st) : exec(c, primary, st.sql());
      if (!r) return fail(r.error());
    }
    if (auto r = exec(c, primary, "COMMIT"); !r) return fail(r.error());
    return {};
  }

  // A promoted replica knows each transaction id it replayed: committed,
  // aborted (it ended recovery without the commit), or past every id it
  // saw. pg_xact_status raises an error for an id "in the future", so that
  // case is sorted out first. "Past every id it saw" is judged by the xmax
  // promote() read just before pg_promote: an id at or past it is one the
  // new primary may have given out itself since (an autovacuum's ANALYZE),
  // never one it received. Replay order: the WAL position each transaction
  // read after its last write.
  Result<std::vector<journal::Entry>> lacking(const ServerAddress& primary,
                                              std::vector<journal::Entry> entries,
                                              std::uint64_t) override {
    if (entries.empty()) return entries;
    auto conn = connect(primary);
    if (!conn) return conn.error();
    std::string ids = "{";
    for (const auto& e : entries) ids += (ids.size() > 1 ? "," : "") + std::to_string(e.xid());
    ids += "}";
    auto before = xmax_before_promotion_.find(primary.name);
    const std::string xmax = before != xmax_before_promotion_.end()
                                 ? "'" + std::to_string(before->second) + "'::xid8"
                                 : "pg_snapshot_xmax(pg_current_snapshot())";
    if (before != xmax_before_promotion_.end()) xmax_before_promotion_.erase(before);
    const std::string sql = "SELECT x::text, CASE WHEN x < " + xmax +
                            " THEN coalesce(pg_xact_status(x), 'unknown') ELSE 'future' END "
                            "FROM unnest('" +
                            ids + "'::xid8[]) AS x";
    PgResult r(PQexec(conn->get(), sql.c_str()));
    if (PQresultStatus(r.get()) != PGRES_TUPLES_OK)
      return make_error(primary.name + ": cannot ask which journaled transactions it has: " +
                        trimmed(PQresultErrorMessage(r.get())));
    std::map<std::uint64_t, std::string> status;
    for (int i = 0; i < PQntuples(r.get()); ++i)
      status[std::stoull(PQgetvalue(r.get(), i, 0))] = PQgetvalue(r.get(), i, 1);
    std::vector<journal::Entry> out;
    for (auto& e : entries) {
      // "committed": it has it. "unknown": older than what it keeps status
      // for, long since replicated.
      const std::string& st = status[e.xid()];
      if (st != "committed" && st != "unknown") out.push_back(std::move(e));
    }
    std::sort(out.begin(), out.end(), [](const journal::Entry& a, const journal::Entry& b) {
      return std::make_pair(a.wal_position(), a.xid()) < std::make_pair(b.wal_position(), b.xid());
    });
    return out;
  }

  void replay_done() override { replay_conns_.clear(); }

  // Every PostgreSQL server answers the journal's SELECT.
  Result<void> check_journal(const ServerAddress&) override { return {}; }

  Result<void> keep_catch_up_point(const ServerAddress& primary,
                                   std::uint64_t received_by_all) override {
    return keep_catch_up_slots(connector(), primary, login_.database, received_by_all);
  }

  Result<OldPrimaryCatchUp> catch_up_from_old_primary(
      const ServerAddress& old_primary, const ServerAddress& new_primary,
      std::uint64_t took_over_at, const std::set<std::uint64_t>& replayed) override {
    return apply_from_catch_up_slots(connector(), old_primary, new_primary, login_.database,
                                     took_over_at, replayed);
  }

  Result<void> unfence(const ServerAddress& server) override {
    auto conn = connect(server);
    if (!conn) return conn.error();
    for (const char* sql :
         {"ALTER SYSTEM RESET default_transaction_read_only", "SELECT pg_reload_conf()"}) {
      if (auto r = exec(conn->get(), server, sql); !r) return r.error();
    }
    return {};
  }

  Result<std::uint64_t> write_position(const ServerAddress& server) override {
    auto conn = connect(server);
    if (!conn) return conn.error();
    auto v = value(conn->get(), server, "SELECT pg_current_wal_flush_lsn()");
    if (!v) return v.error();
    return parse_lsn(*v);
  }

  Result<std::uint64_t> promote(const ServerAddress& replica, std::optional<std::uint64_t> at_least,
                                Clock::time_point deadline) override {
    auto conn = connect(replica);
    if (!conn) return conn.error();
    // pg_promote replays whatever WAL the replica holds before it ends
    // recovery; what it must wait for is WAL that is still on its way.
    if (at_least) {
      for (;;) {
        auto v = value(conn->get(), replica, "SELECT pg_last_wal_replay_lsn()");
        if (!v) return v.error();
        auto lsn = parse_lsn(*v);
        if (!lsn) return lsn.error();
        if (*lsn >= *at_least) break;
        if (Clock::now() >= deadline)
          return make_error(replica.name + " replayed only up to " + *v + ", short of " +
                            format_lsn(*at_least) + ", when the promotion time ran out");
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
    // A switchover (at_least) never asks lacking(), and must not wait here.
    if (!at_least)
      note_xmax_before_promotion(conn->get(), replica,
                                 Clock::now() + (deadline - Clock::now()) / 2);
    const auto left = std::chrono::duration_cast<std::chrono::seconds>(deadline - Clock::now());
    const std::string sql =
        "SELECT pg_promote(true, " + std::to_string(std::max<long long>(1, left.count())) + ")";
    auto done = value(conn->get(), replica, sql);
    if (!done) return done.error();
    if (*done != "t") return make_error(replica.name + " did not finish promoting in time");
    // It may have been fenced as a primary once: a promoted server writes.
    for (const char* reset :
         {"ALTER SYSTEM RESET default_transaction_read_only", "SELECT pg_reload_conf()"}) {
      if (auto r = exec(conn->get(), replica, reset); !r) return r.error();
    }
    auto at = value(conn->get(), replica, "SELECT pg_current_wal_flush_lsn()");
    if (!at) return at.error();
    return parse_lsn(*at);
  }

  Result<void> follow(const ServerAddress& replica, const ServerAddress& primary, bool was_primary,
                      std::optional<std::uint64_t>) override {
    if (was_primary)
      return make_error(replica.name +
                        " was a primary: PostgreSQL turns it into a replica only by a restart "
                        "(pg_rewind, then standby.signal); it stays fenced until it streams "
                        "from the new primary");
    auto conn = connect(replica);
    if (!conn) return conn.error();
    const std::string info = "host=" + conninfo_value(primary.host) +
                             " port=" + std::to_string(primary.port) +
                             " user=" + conninfo_value(login_.replication_user) +
                             " password=" + conninfo_value(login_.replication_password) +
                             " application_name=" + conninfo_value(replica.name);
    const std::string set = "ALTER SYSTEM SET primary_conninfo = " + sql_literal(info);
    for (const std::string& sql : {set, std::string("SELECT pg_reload_conf()")}) {
      if (auto r = exec(conn->get(), replica, sql); !r) return r.error();
    }
    return {};
  }

 private:
  // For lacking(): the replica's snapshot xmax, past every transaction id
  // it will have once promoted, read while it still gives out none of its
  // own. What it received is replayed first (pg_promote would replay it
  // anyway); when that does not finish by `until` (half the promotion's
  // time), nothing is noted and lacking() reads the xmax after the promotion.
  void note_xmax_before_promotion(PGconn* c, const ServerAddress& replica,
                                  Clock::time_point until) {
    xmax_before_promotion_.erase(replica.name);
    for (;;) {
      auto caught_up = value(c, replica,
                             "SELECT coalesce(pg_last_wal_replay_lsn() >= "
                             "pg_last_wal_receive_lsn(), true)");
      if (!caught_up) return;
      if (*caught_up == "t") break;
      if (Clock::now() >= until) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (auto xmax = value(c, replica, "SELECT pg_snapshot_xmax(pg_current_snapshot())"))
      xmax_before_promotion_[replica.name] = std::strtoull(xmax->c_str(), nullptr, 10);
  }

  // Open only between the first replay() of a catch-up and replay_done().
  std::map<std::tuple<std::string, std::string, std::string>, PgConn> replay_conns_;
  // By server name: its snapshot's xmax read just before pg_promote.
  std::map<std::string, std::uint64_t> xmax_before_promotion_;

  PgConnector connector() const {
    return [this](const ServerAddress& server, const std::string& database) {
      return connect(server, login_.user, login_.password, database);
    };
  }

  Result<PgConn> connect(const ServerAddress& server) const {
    return connect(server, login_.user, login_.password, login_.database);
  }

  Result<PgConn> connect(const ServerAddress& server, const std::string& user,
                         const std::string& password, const std::string& database) const {
    const std::string host = server.unix_socket_dir.empty() ? server.host : server.unix_socket_dir;
    const std::string port = std::to_string(server.port);
    const std::string timeout =
        std::to_string(std::max<long long>(1, (login_.connect_timeout.count() + 999) / 1000));
    const char* keys[] = {
        "host", "port", "user", "password", "dbname", "connect_timeout", "application_name",
        nullptr};
    const char* values[] = {host.c_str(),         port.c_str(),     user.c_str(),
                            password.c_str(),     database.c_str(), timeout.c_str(),
                            "shardgate-failover", nullptr};
    PgConn conn(PQconnectdbParams(keys, values, 0));
    if (!conn || PQstatus(conn.get()) != CONNECTION_OK)
      return make_error("cannot connect to " + server.name + ": " +
                        trimmed(conn ? PQerrorMessage(conn.get()) : "out of memory"));
    return conn;
  }

  static Result<void> exec(PGconn* c, const ServerAddress& server, const std::string& sql) {
    PgResult r(PQexec(c, sql.c_str()));
    const auto status = PQresultStatus(r.get());
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
      return make_error(server.name + ": " + sql + ": " + trimmed(PQresultErrorMessage(r.get())));
    return {};
  }

  // An extended-protocol execution, with the types and formats it had.
  static Result<void> exec_params(PGconn* c, const ServerAddress& server,
                                  const journal::Statement& st) {
    const int n = st.pg_params_size();
    std::vector<Oid> types(static_cast<std::size_t>(n), 0);
    for (int i = 0; i < n && i < st.pg_param_types_size(); ++i) types[i] = st.pg_param_types(i);
    std::vector<const char*> values(static_cast<std::size_t>(n));
    std::vector<int> lengths(static_cast<std::size_t>(n)), formats(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
      const auto& p = st.pg_params(i);
      values[i] = p.is_null() ? nullptr : p.value().data();
      lengths[i] = static_cast<int>(p.value().size());
      formats[i] = p.binary() ? 1 : 0;
    }
    PgResult r(PQexecParams(c, st.sql().c_str(), n, types.data(), values.data(), lengths.data(),
                            formats.data(), 0));
    const auto status = PQresultStatus(r.get());
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
      return make_error(server.name + ": " + st.sql() + ": " +
                        trimmed(PQresultErrorMessage(r.get())));
    return {};
  }

  static Result<std::string> value(PGconn* c, const ServerAddress& server, const std::string& sql) {
    PgResult r(PQexec(c, sql.c_str()));
    if (PQresultStatus(r.get()) != PGRES_TUPLES_OK || PQntuples(r.get()) != 1)
      return make_error(server.name + ": " + sql + ": " + trimmed(PQresultErrorMessage(r.get())));
    if (PQgetisnull(r.get(), 0, 0)) return make_error(server.name + ": " + sql + " returned NULL");
    return std::string(PQgetvalue(r.get(), 0, 0));
  }

  FailoverLogin login_;
};

}  // namespace

std::unique_ptr<FailoverOps> make_pg_failover_ops(FailoverLogin login) {
  return std::make_unique<PgFailoverOps>(std::move(login));
}

}  // namespace shardgate::replication
