// MariaDB failover steps over Connector/C: fence with read_only and killed
// client sessions, promote by letting the SQL thread apply the relay log and
// dropping the replication connection, follow with CHANGE MASTER TO ...
// MASTER_USE_GTID. Written for MariaDB 10.11 with GTIDs in domain 0 (the
// monitor's positions, replication/mysql_monitor.h).
#include <mysql.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <sstream>
#include <thread>
#include <vector>

#include "replication/client_handles.h"
#include "replication/failover_ops.h"
#include "replication/my_binlog_catch_up.h"
#include "replication/mysql_monitor.h"

namespace shardgate::replication {
namespace {

std::string quoted(const std::string& v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

class MyFailoverOps final : public FailoverOps {
 public:
  explicit MyFailoverOps(FailoverLogin login) : login_(std::move(login)) {}

  Result<void> fence(const ServerAddress& server) override {
    auto conn = connect(server);
    if (!conn) return conn.error();
    if (auto r = exec(conn->get(), server, "SET GLOBAL read_only = ON"); !r) return r;
    // Sessions that already began writing would still commit: end them. The
    // binlog dump threads stay, so the replicas receive everything.
    auto ids = column(conn->get(), server,
                      "SELECT id FROM information_schema.processlist WHERE id <> CONNECTION_ID() "
                      "AND command NOT IN ('Binlog Dump', 'Daemon') AND user <> 'system user'");
    if (!ids) return ids.error();
    for (const auto& id : *ids) exec(conn->get(), server, "KILL CONNECTION " + id);
    return {};
  }

  Result<void> unfence(const ServerAddress& server) override {
    auto conn = connect(server);
    if (!conn) return conn.error();
    return exec(conn->get(), server, "SET GLOBAL read_only = OFF");
  }

  Result<std::uint64_t> write_position(const ServerAddress& server) override {
    auto conn = connect(server);
    if (!conn) return conn.error();
    return domain_seq(conn->get(), server, "SELECT @@global.gtid_binlog_pos");
  }

  Result<std::uint64_t> promote(const ServerAddress& replica, std::optional<std::uint64_t> at_least,
                                Clock::time_point deadline) override {
    auto conn = connect(replica);
    if (!conn) return conn.error();
    // Stop receiving, then let the SQL thread apply what was received.
    if (auto r = exec(conn->get(), replica, "STOP SLAVE IO_THREAD"); !r) return r.error();
    auto received = received_seq(conn->get(), replica);
    if (!received) return received.error();
    const std::uint64_t target = std::max(*received, at_least.value_or(0));
    std::uint64_t took_over_at = 0;
    for (;;) {
      auto applied = domain_seq(conn->get(), replica, "SELECT @@global.gtid_slave_pos");
      if (!applied) return applied.error();
      took_over_at = *applied;
      if (*applied >= target) break;
      if (Clock::now() >= deadline) {
        exec(conn->get(), replica, "START SLAVE IO_THREAD");
        return make_error(replica.name + " applied only up to seq_no " + std::to_string(*applied) +
                          " of " + std::to_string(target) + " when the promotion time ran out");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    for (const char* sql : {"STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only = OFF"}) {
      if (auto r = exec(conn->get(), replica, sql); !r) {
        exec(conn->get(), replica, "START SLAVE");  // stays a replica; a retry may succeed
        return r.error();
      }
    }
    return took_over_at;
  }

  Result<void> follow(const ServerAddress& replica, const ServerAddress& primary, bool was_primary,
                      std::optional<std::uint64_t> took_over_at) override {
    auto conn = connect(replica);
    if (!conn) return conn.error();
    if (was_primary && took_over_at) {
      auto own = own_last_seq(conn->get(), replica);
      if (!own) return own.error();
      if (*own > *took_over_at)
        return make_error("needs rebuild: its binlog holds transactions " +
                          std::to_string(*took_over_at + 1) + ".." + std::to_string(*own) +
                          " (domain 0) that " + primary.name + " never received");
    }
    // A former primary's own transactions are in its binlog, not in its
    // (stale) slave position: it resumes from current_pos.
    const std::string change =
        "CHANGE MASTER TO MASTER_HOST=" + quoted(primary.host) +
        ", MASTER_PORT=" + std::to_string(primary.port) +
        ", MASTER_USER=" + quoted(login_.replication_user) +
        ", MASTER_PASSWORD=" + quoted(login_.replication_password) +
        ", MASTER_CONNECT_RETRY=1, MASTER_USE_GTID=" + (was_primary ? "current_pos" : "slave_pos");
    if (was_primary) {
      if (auto r = exec(conn->get(), replica, "SET GLOBAL read_only = ON"); !r) return r;
    }
    for (const std::string& sql : {std::string("STOP SLAVE"), change, std::string("START SLAVE")}) {
      if (auto r = exec(conn->get(), replica, sql); !r) return r;
    }
    return {};
  }

  // The binlog keeps everything until it is purged.
  Result<void> keep_catch_up_point(const ServerAddress&, std::uint64_t) override { return {}; }

  Result<OldPrimaryCatchUp> catch_up_from_old_primary(
      const ServerAddress& old_primary, const ServerAddress& new_primary,
      std::uint64_t took_over_at, const std::set<std::uint64_t>& replayed) override {
    auto conn = connect(old_primary);
    if (!conn) return conn.error();
    auto own = own_last_seq(conn->get(), old_primary);
    if (!own) return own.error();
    if (*own <= took_over_at) return OldPrimaryCatchUp{};
    auto id = column(conn->get(), old_primary, "SELECT @@global.server_id");
    if (!id) return id.error();
    auto logs = column(conn->get(), old_primary, "SHOW BINARY LOGS");
    if (!logs) return logs.error();
    if (id->empty() || logs->empty()) return make_error(old_primary.name + " has no binlog");
    const BinlogSource source{old_primary, std::strtoul(id->front().c_str(), nullptr, 10),
                              logs->front()};
    return apply_old_binlog(source, new_primary, login_, took_over_at, *own, replayed);
  }

  // As the user that wrote it, in its schema, after its SET statements, at
  // its commit time, with the auto-increment values it generated.
  Result<void> replay(const ServerAddress& primary, const journal::Entry& entry,
                      const std::string& user, const std::string& password) override {
    auto conn = connect(primary, user, password, entry.database(), CLIENT_MULTI_STATEMENTS);
    if (!conn) return conn.error();
    MYSQL* m = conn->get();
    const auto ts = entry.timestamp_us();
    std::vector<std::string> script(entry.settings().begin(), entry.settings().end());
    script.push_back("SET TIMESTAMP = " + std::to_string(ts / 1000000) + "." +
                     std::to_string(1000000 + ts % 1000000).substr(1));
    script.push_back("START TRANSACTION");
    auto fail = [&](const Error& e) {
      exec_all(m, primary, "ROLLBACK");
      return make_error("replaying " + entry.gtid() + ": " + e.message());
    };
    for (const auto& sql : script)
      if (auto r = exec_all(m, primary, sql); !r) return fail(r.error());
    for (const auto& st : entry.statements()) {
      if (st.insert_id()) {
        if (auto r = exec_all(m, primary, "SET INSERT_ID = " + std::to_string(st.insert_id())); !r)
          return fail(r.error());
      }
      auto r = st.prepared() ? execute_prepared(m, primary, st) : exec_all(m, primary, st.sql());
      if (!r) return fail(r.error());
    }
    if (auto r = exec_all(m, primary, "COMMIT"); !r) return fail(r.error());
    return {};
  }

  // GTID sequence numbers order commits: those past the promoted replica's
  // position, in the journal's (commit) order.
  Result<std::vector<journal::Entry>> lacking(const ServerAddress&,
                                              std::vector<journal::Entry> entries,
                                              std::uint64_t took_over_at) override {
    std::erase_if(entries, [&](const journal::Entry& e) { return e.seq() <= took_over_at; });
    return entries;
  }

  Result<void> check_journal(const ServerAddress& server) override {
    auto conn = connect(server);
    if (!conn) return make_error(conn.error().message() + " (cannot check it tracks last_gtid)");
    auto tracked = column(conn->get(), server, "SELECT @@global.session_track_system_variables");
    if (!tracked) return tracked.error();
    const std::string value = tracked->empty() ? "" : tracked->front();
    if (value.find("last_gtid") != std::string::npos || value.find('*') != std::string::npos)
      return {};
    return make_error(server.name + " does not report the GTIDs of commits, so no write to it is " +
                      "journaled: add last_gtid to its session_track_system_variables (now '" +
                      value + "')");
  }

 private:
  Result<MyConn> connect(const ServerAddress& server) const {
    return connect(server, login_.user, login_.password, "", 0);
  }

  Result<MyConn> connect(const ServerAddress& server, const std::string& user,
                         const std::string& password, const std::string& database,
                         unsigned long flags) const {
    MyConn conn(mysql_init(nullptr));
    if (!conn) return make_error("out of memory");
    const unsigned timeout =
        std::max<unsigned>(1, static_cast<unsigned>((login_.connect_timeout.count() + 999) / 1000));
    mysql_optionsv(conn.get(), MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
    const unsigned io_timeout = 10;
    mysql_optionsv(conn.get(), MYSQL_OPT_READ_TIMEOUT, &io_timeout);
    mysql_optionsv(conn.get(), MYSQL_OPT_WRITE_TIMEOUT, &io_timeout);
    const char* socket = server.unix_socket.empty() ? nullptr : server.unix_socket.c_str();
    if (!mysql_real_connect(conn.get(), socket ? nullptr : server.host.c_str(), user.c_str(),
                            password.c_str(), database.empty() ? nullptr : database.c_str(),
                            server.port, socket, flags))
      return make_error("cannot connect to " + server.name + " as " + user + ": " +
                        mysql_error(conn.get()));
    return conn;
  }

  // A prepared statement's execution again, its parameters bound as the
  // client bound them (integers widened to 64 bits, strings with their type).
  static Result<void> execute_prepared(MYSQL* m, const ServerAddress& server,
                                       const journal::Statement& st) {
    std::unique_ptr<MYSQL_STMT, decltype(&mysql_stmt_close)> stmt(mysql_stmt_init(m),
                                                                  &mysql_stmt_close);
    auto failed = [&](const char* what) {
      return make_error(server.name + ": " + what + " " + st.sql().substr(0, 200) + ": " +
                        (stmt ? mysql_stmt_error(stmt.get()) : "out of memory"));
    };
    if (!stmt || mysql_stmt_prepare(stmt.get(), st.sql().data(), st.sql().size()) != 0)
      return failed("preparing");
    const int n = st.params_size();
    if (mysql_stmt_param_count(stmt.get()) != static_cast<unsigned long>(n))
      return make_error(server.name + ": " + st.sql().substr(0, 200) + " takes " +
                        std::to_string(mysql_stmt_param_count(stmt.get())) +
                        " parameters, the journal has " + std::to_string(n));
    std::vector<MYSQL_BIND> binds(static_cast<std::size_t>(n));
    std::vector<long long> ints(n);
    std::vector<double> reals(n);
    std::vector<float> floats(n);
    std::vector<MYSQL_TIME> times(n);
    std::vector<unsigned long> lengths(n);
    for (int i = 0; i < n; ++i) {
      const auto& p = st.params(i);
      MYSQL_BIND& b = binds[i];
      std::memset(&b, 0, sizeof b);
      b.is_unsigned = p.is_unsigned();
      switch (p.kind()) {
        case journal::Param::INT:
        case journal::Param::UINT:
          ints[i] = p.kind() == journal::Param::INT ? p.int_value()
                                                    : static_cast<long long>(p.uint_value());
          b.buffer_type = MYSQL_TYPE_LONGLONG;
          b.buffer = &ints[i];
          break;
        case journal::Param::FLOAT:
          floats[i] = static_cast<float>(p.real_value());
          b.buffer_type = MYSQL_TYPE_FLOAT;
          b.buffer = &floats[i];
          break;
        case journal::Param::DOUBLE:
          reals[i] = p.real_value();
          b.buffer_type = MYSQL_TYPE_DOUBLE;
          b.buffer = &reals[i];
          break;
        case journal::Param::DATETIME:
        case journal::Param::TIME: {
          MYSQL_TIME& t = times[i];
          std::memset(&t, 0, sizeof t);
          const bool time = p.kind() == journal::Param::TIME;
          t.year = p.year();
          t.month = p.month();
          t.day = time ? 0 : p.day();
          t.hour = time ? p.days() * 24 + p.hour() : p.hour();
          t.minute = p.minute();
          t.second = p.second();
          t.second_part = p.microsecond();
          t.neg = p.negative();
          t.time_type = time ? MYSQL_TIMESTAMP_TIME : MYSQL_TIMESTAMP_DATETIME;
          b.buffer_type = time ? MYSQL_TYPE_TIME : static_cast<enum_field_types>(p.type());
          b.buffer = &t;
          break;
        }
        case journal::Param::BYTES: {
          const auto type = static_cast<enum_field_types>(p.type());
          const bool blob = type == MYSQL_TYPE_TINY_BLOB || type == MYSQL_TYPE_MEDIUM_BLOB ||
                            type == MYSQL_TYPE_LONG_BLOB || type == MYSQL_TYPE_BLOB;
          // As a character string unless the client sent bytes: DECIMAL, JSON,
          // BIT ... travel as text too.
          b.buffer_type = blob ? type : MYSQL_TYPE_STRING;
          b.buffer = const_cast<char*>(p.bytes_value().data());
          lengths[i] = p.bytes_value().size();
          b.buffer_length = lengths[i];
          b.length = &lengths[i];
          break;
        }
        default:
          b.buffer_type = MYSQL_TYPE_NULL;
      }
    }
    if (n > 0 && mysql_stmt_bind_param(stmt.get(), binds.data()) != 0) return failed("binding");
    if (mysql_stmt_execute(stmt.get()) != 0) return failed("executing");
    mysql_stmt_store_result(stmt.get());
    return {};
  }

  // Every result of a statement that may hold several (multi-statements).
  static Result<void> exec_all(MYSQL* m, const ServerAddress& server, const std::string& sql) {
    if (mysql_real_query(m, sql.data(), sql.size()) != 0)
      return make_error(server.name + ": " + sql.substr(0, 200) + ": " + mysql_error(m));
    for (;;) {
      MyResult discard(mysql_store_result(m));
      const int next = mysql_next_result(m);
      if (next > 0)
        return make_error(server.name + ": " + sql.substr(0, 200) + ": " + mysql_error(m));
      if (next < 0) return {};
    }
  }

  static Result<void> exec(MYSQL* m, const ServerAddress& server, const std::string& sql) {
    if (mysql_real_query(m, sql.data(), sql.size()) != 0)
      return make_error(server.name + ": " + sql + ": " + mysql_error(m));
    MyResult discard(mysql_store_result(m));
    return {};
  }

  static Result<std::vector<std::string>> column(MYSQL* m, const ServerAddress& server,
                                                 const std::string& sql) {
    if (mysql_real_query(m, sql.data(), sql.size()) != 0)
      return make_error(server.name + ": " + sql + ": " + mysql_error(m));
    MyResult res(mysql_store_result(m));
    if (!res) return make_error(server.name + ": " + sql + ": no result");
    std::vector<std::string> out;
    while (MYSQL_ROW row = mysql_fetch_row(res.get())) out.emplace_back(row[0] ? row[0] : "");
    return out;
  }

  static Result<std::uint64_t> domain_seq(MYSQL* m, const ServerAddress& server,
                                          const std::string& sql) {
    auto values = column(m, server, sql);
    if (!values) return values.error();
    if (values->size() != 1) return make_error(server.name + ": " + sql + ": no row");
    auto seq = parse_gtid_seq(values->front(), 0);
    if (!seq) return make_error(server.name + ": " + sql + ": " + seq.error().message());
    return seq->value_or(0);
  }

  // The highest domain-0 seq_no this server wrote under its own server_id.
  // Not gtid_binlog_pos: once an old primary replicates again (rebuilt, or
  // rejoined earlier), its binlog's last GTIDs are the new primary's, with
  // higher numbers that are no sign of errant transactions.
  static Result<std::uint64_t> own_last_seq(MYSQL* m, const ServerAddress& server) {
    const std::string sql = "SELECT @@global.server_id, @@global.gtid_binlog_state";
    if (mysql_real_query(m, sql.data(), sql.size()) != 0)
      return make_error(server.name + ": " + sql + ": " + mysql_error(m));
    MyResult res(mysql_store_result(m));
    MYSQL_ROW row = res ? mysql_fetch_row(res.get()) : nullptr;
    if (!row || !row[0] || !row[1]) return make_error(server.name + ": " + sql + ": no row");
    const unsigned long own_id = std::strtoul(row[0], nullptr, 10);
    std::uint64_t last = 0;
    std::stringstream state(row[1]);
    for (std::string gtid; std::getline(state, gtid, ',');) {
      unsigned long domain = 0, server_id = 0;
      unsigned long long seq = 0;
      if (std::sscanf(gtid.c_str(), " %lu-%lu-%llu", &domain, &server_id, &seq) != 3)
        return make_error(server.name + ": cannot read gtid_binlog_state '" + gtid + "'");
      if (domain == 0 && server_id == own_id) last = std::max<std::uint64_t>(last, seq);
    }
    return last;
  }

  // The highest domain-0 seq_no the IO thread received (Gtid_IO_Pos).
  static Result<std::uint64_t> received_seq(MYSQL* m, const ServerAddress& server) {
    const std::string sql = "SHOW ALL SLAVES STATUS";
    if (mysql_real_query(m, sql.data(), sql.size()) != 0)
      return make_error(server.name + ": " + sql + ": " + mysql_error(m));
    MyResult res(mysql_store_result(m));
    if (!res) return std::uint64_t{0};
    const unsigned fields = mysql_num_fields(res.get());
    MYSQL_FIELD* f = mysql_fetch_fields(res.get());
    int io_pos = -1;
    for (unsigned i = 0; i < fields; ++i)
      if (std::string_view(f[i].name) == "Gtid_IO_Pos") io_pos = static_cast<int>(i);
    std::uint64_t best = 0;
    while (MYSQL_ROW row = mysql_fetch_row(res.get())) {
      if (io_pos < 0 || !row[io_pos]) continue;
      auto seq = parse_gtid_seq(row[io_pos], 0);
      if (seq && *seq) best = std::max(best, **seq);
    }
    return best;
  }

  FailoverLogin login_;
};

}  // namespace

std::unique_ptr<FailoverOps> make_mysql_failover_ops(FailoverLogin login) {
  return std::make_unique<MyFailoverOps>(std::move(login));
}

}  // namespace shardgate::replication
