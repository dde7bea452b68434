#include "replication/prepared_recovery.h"

#include <libpq-fe.h>
#include <mysql.h>

#include <map>
#include <memory>

#include "replication/client_handles.h"

namespace shardgate::replication {

namespace {

bool named_ours(const std::string& gid, const std::string& prefix) {
  if (gid.rfind(prefix, 0) != 0) return false;
  // Our names are [a-z0-9_] (DecisionLog::next_gid): safe between quotes.
  for (char c : gid)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

bool gid_is_live(const std::string& gid, const RecoveryOptions& options) {
  return gid.rfind(options.live_prefix, 0) == 0;
}

// ---------------------------------------------------------------- PostgreSQL

PgConn pg_connect(const RecoveryServer& server, const RecoveryLogin& login,
                  const std::string& database, const RecoveryOptions& options, std::string& error) {
  const std::string host = server.unix_socket_dir.empty() ? server.host : server.unix_socket_dir;
  const std::string port = std::to_string(server.port);
  const std::string timeout =
      std::to_string(std::max<long long>(1, (options.connect_timeout.count() + 999) / 1000));
  const char* keys[] = {
      "host", "port", "user", "password", "dbname", "connect_timeout", "application_name", nullptr};
  const char* values[] = {host.c_str(),           port.c_str(),     login.user.c_str(),
                          login.password.c_str(), database.c_str(), timeout.c_str(),
                          "shardgate-recovery",   nullptr};
  PgConn conn(PQconnectdbParams(keys, values, 0));
  if (!conn || PQstatus(conn.get()) != CONNECTION_OK) {
    error = "shard " + server.shard + ": cannot connect as " + login.user + " to " + database +
            ": " + (conn ? PQerrorMessage(conn.get()) : "out of memory");
    while (!error.empty() && error.back() == '\n') error.pop_back();
    return nullptr;
  }
  return conn;
}

void pg_resolve(const RecoveryServer& server, const std::vector<RecoveryLogin>& logins,
                const RecoveryOptions& options,
                const std::function<bool(const std::string&)>& decided, RecoveryReport& report) {
  struct Row {
    std::string gid, database, owner;
  };
  std::vector<Row> rows;
  bool listed = false;
  std::string last_error;
  for (const auto& login : logins) {
    std::string error;
    PgConn conn = pg_connect(server, login, options.list_database, options, error);
    if (!conn) {
      last_error = error;
      continue;
    }
    const std::string pattern = options.prefix + "%";
    const char* params[] = {pattern.c_str()};
    PgResult res(PQexecParams(conn.get(),
                              "SELECT gid, database, owner FROM pg_prepared_xacts "
                              "WHERE gid LIKE $1 ORDER BY prepared",
                              1, nullptr, params, nullptr, nullptr, 0));
    if (PQresultStatus(res.get()) != PGRES_TUPLES_OK) {
      last_error = "shard " + server.shard +
                   ": cannot list prepared transactions: " + PQresultErrorMessage(res.get());
      continue;
    }
    for (int r = 0; r < PQntuples(res.get()); ++r)
      rows.push_back(
          {PQgetvalue(res.get(), r, 0), PQgetvalue(res.get(), r, 1), PQgetvalue(res.get(), r, 2)});
    listed = true;
    break;
  }
  if (!listed) {
    report.every_server_read = false;
    report.errors.push_back(last_error.empty() ? "shard " + server.shard + ": no login configured"
                                               : last_error);
    return;
  }
  std::map<std::pair<std::string, std::string>, PgConn> conns;  // (user, database)
  for (const auto& row : rows) {
    if (!named_ours(row.gid, options.prefix)) continue;
    const bool commit = decided(row.gid);
    if (!commit && !options.live_prefix.empty() && gid_is_live(row.gid, options)) {
      report.still_prepared.insert(row.gid);
      continue;
    }
    // The owner's login first; another (a superuser) may also finish it.
    std::vector<const RecoveryLogin*> order;
    for (const auto& l : logins)
      if (l.user == row.owner) order.push_back(&l);
    for (const auto& l : logins)
      if (l.user != row.owner) order.push_back(&l);
    bool done = false;
    std::string error;
    for (const RecoveryLogin* login : order) {
      auto key = std::make_pair(login->user, row.database);
      auto it = conns.find(key);
      if (it == conns.end()) {
        PgConn c = pg_connect(server, *login, row.database, options, error);
        if (!c) continue;
        it = conns.emplace(key, std::move(c)).first;
      }
      const std::string sql =
          std::string(commit ? "COMMIT PREPARED '" : "ROLLBACK PREPARED '") + row.gid + "'";
      PgResult res(PQexec(it->second.get(), sql.c_str()));
      if (PQresultStatus(res.get()) == PGRES_COMMAND_OK) {
        done = true;
        break;
      }
      error = "shard " + server.shard + ": " + sql + ": " + PQresultErrorMessage(res.get());
    }
    if (done) {
      ++(commit ? report.committed : report.rolled_back);
    } else {
      while (!error.empty() && error.back() == '\n') error.pop_back();
      report.errors.push_back(error);
      report.still_prepared.insert(row.gid);
    }
  }
}

// ---------------------------------------------------------------- MySQL

MyConn my_connect(const RecoveryServer& server, const RecoveryLogin& login,
                  const RecoveryOptions& options, std::string& error) {
  MyConn m(mysql_init(nullptr));
  if (!m) {
    error = "out of memory";
    return nullptr;
  }
  const bool socket = !server.unix_socket.empty();
  unsigned protocol = socket ? MYSQL_PROTOCOL_SOCKET : MYSQL_PROTOCOL_TCP;
  mysql_options(m.get(), MYSQL_OPT_PROTOCOL, &protocol);
  unsigned timeout =
      static_cast<unsigned>(std::max<long long>(1, (options.connect_timeout.count() + 999) / 1000));
  mysql_options(m.get(), MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
  if (!mysql_real_connect(m.get(), socket ? nullptr : server.host.c_str(), login.user.c_str(),
                          login.password.c_str(), nullptr, server.port,
                          socket ? server.unix_socket.c_str() : nullptr, 0)) {
    error =
        "shard " + server.shard + ": cannot connect as " + login.user + ": " + mysql_error(m.get());
    return nullptr;
  }
  return m;
}

void my_resolve(const RecoveryServer& server, const std::vector<RecoveryLogin>& logins,
                const RecoveryOptions& options,
                const std::function<bool(const std::string&)>& decided, RecoveryReport& report) {
  std::string error;
  MyConn conn;
  for (const auto& login : logins) {
    conn = my_connect(server, login, options, error);
    if (conn) break;
  }
  if (!conn) {
    report.every_server_read = false;
    report.errors.push_back(error.empty() ? "shard " + server.shard + ": no login configured"
                                          : error);
    return;
  }
  std::vector<std::string> gids;
  if (mysql_query(conn.get(), "XA RECOVER") != 0) {
    report.every_server_read = false;
    report.errors.push_back("shard " + server.shard + ": XA RECOVER: " + mysql_error(conn.get()));
    return;
  }
  if (MYSQL_RES* res = mysql_store_result(conn.get())) {
    while (MYSQL_ROW row = mysql_fetch_row(res)) {
      unsigned long* lengths = mysql_fetch_lengths(res);
      // formatID, gtrid_length, bqual_length, data (gtrid then bqual)
      if (!row[1] || !row[3]) continue;
      const std::size_t gtrid = std::stoul(row[1]);
      if (gtrid > lengths[3]) continue;
      if (row[2] && std::stoul(row[2]) != 0) continue;  // not a name of ours
      gids.emplace_back(row[3], gtrid);
    }
    mysql_free_result(res);
  }
  for (const auto& gid : gids) {
    if (!named_ours(gid, options.prefix)) continue;
    const bool commit = decided(gid);
    if (!commit && !options.live_prefix.empty() && gid_is_live(gid, options)) {
      report.still_prepared.insert(gid);
      continue;
    }
    const std::string sql = std::string(commit ? "XA COMMIT '" : "XA ROLLBACK '") + gid + "'";
    if (mysql_query(conn.get(), sql.c_str()) == 0) {
      ++(commit ? report.committed : report.rolled_back);
    } else {
      report.errors.push_back("shard " + server.shard + ": " + sql + ": " +
                              mysql_error(conn.get()));
      report.still_prepared.insert(gid);
    }
  }
}

}  // namespace

RecoveryReport resolve_prepared(const std::vector<RecoveryServer>& primaries,
                                const std::vector<RecoveryLogin>& logins,
                                const RecoveryOptions& options,
                                const std::function<bool(const std::string&)>& decided_commit) {
  RecoveryReport report;
  for (const auto& server : primaries) {
    if (options.mysql)
      my_resolve(server, logins, options, decided_commit, report);
    else
      pg_resolve(server, logins, options, decided_commit, report);
  }
  return report;
}

}  // namespace shardgate::replication
