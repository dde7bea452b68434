// PostgreSQL side of a resharding connection (libpq, text results).
#include <libpq-fe.h>

#include <algorithm>

#include "replication/client_handles.h"
#include "replication/reshard_conn.h"

namespace shardgate::replication {

namespace {

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

class PgReshardConn final : public ReshardConn {
 public:
  PgReshardConn(PgConn conn, std::string name) : conn_(std::move(conn)), name_(std::move(name)) {}

  Result<void> exec(const std::string& sql) override {
    PgResult res(PQexec(conn_.get(), sql.c_str()));
    const auto status = PQresultStatus(res.get());
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) return failed(res.get(), sql);
    const char* n = PQcmdTuples(res.get());
    affected_ = n && *n ? std::stoull(n) : 0;
    return {};
  }

  Result<std::vector<Row>> query(const std::string& sql) override {
    PgResult res(PQexec(conn_.get(), sql.c_str()));
    if (PQresultStatus(res.get()) != PGRES_TUPLES_OK) return failed(res.get(), sql);
    std::vector<Row> rows(static_cast<std::size_t>(PQntuples(res.get())));
    const int cols = PQnfields(res.get());
    for (int r = 0; r < static_cast<int>(rows.size()); ++r) {
      Row& row = rows[r];
      row.reserve(cols);
      for (int c = 0; c < cols; ++c) {
        if (PQgetisnull(res.get(), r, c))
          row.emplace_back(std::nullopt);
        else
          row.emplace_back(std::string(PQgetvalue(res.get(), r, c),
                                       static_cast<std::size_t>(PQgetlength(res.get(), r, c))));
      }
    }
    return rows;
  }

  std::uint64_t affected() const override { return affected_; }

  std::string ident(std::string_view name) const override {
    // Names from the config are lower case unless the operator quoted
    // them there; a dotted name is schema.table.
    std::string out;
    std::size_t start = 0;
    for (;;) {
      const auto dot = name.find('.', start);
      const std::string part(name.substr(start, dot == std::string_view::npos ? dot : dot - start));
      char* q = PQescapeIdentifier(conn_.get(), part.c_str(), part.size());
      out += q ? q : "\"\"";
      PQfreemem(q);
      if (dot == std::string_view::npos) return out;
      out += '.';
      start = dot + 1;
    }
  }

  std::string literal(const Cell& value) const override {
    if (!value) return "NULL";
    char* q = PQescapeLiteral(conn_.get(), value->data(), value->size());
    std::string out = q ? q : "NULL";
    PQfreemem(q);
    return out;
  }

  Result<TableShape> describe(const std::string& table, const std::string& key_column) override {
    const std::string regclass = literal(ident(table));
    auto cols = query("SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(" + regclass +
                      ") AND attnum > 0 AND NOT attisdropped ORDER BY attnum");
    if (!cols) return cols.error();
    if (cols->empty())
      return make_error("table " + table + " does not exist on " + name_ +
                        ": create it there (pg_dump --schema-only -t " + table +
                        " from the source) before resharding");
    auto pk = query(
        "SELECT a.attname FROM pg_index i, unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) "
        "JOIN pg_attribute a ON a.attnum = k.attnum AND a.attrelid = to_regclass(" +
        regclass + ") WHERE i.indrelid = to_regclass(" + regclass +
        ") AND i.indisprimary ORDER BY k.n");
    if (!pk) return pk.error();
    return table_shape(table, *cols, *pk, key_column, name_);
  }

  Result<void> begin_snapshot() override {
    return exec("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");
  }
  Result<void> begin() override { return exec("BEGIN"); }
  Result<void> commit() override { return exec("COMMIT"); }
  void rollback() override { (void)exec("ROLLBACK"); }

  Result<std::string> write_position() override {
    auto rows = query("SELECT pg_current_wal_lsn()::text");
    if (!rows) return rows.error();
    return rows->at(0).at(0).value_or("0/0");
  }

  Result<bool> replayed(const std::string& position) override {
    auto rows = query("SELECT coalesce(pg_last_wal_replay_lsn() >= " + literal(position) +
                      "::pg_lsn, false)");
    if (!rows) return rows.error();
    return rows->at(0).at(0).value_or("f") == "t";
  }

  Result<int> transactions_older_than(std::int64_t unix_ms) override {
    auto rows = query("SELECT count(*) FROM pg_stat_activity WHERE xact_start < to_timestamp(" +
                      std::to_string(unix_ms) +
                      " / 1000.0) AND pid <> pg_backend_pid() AND backend_type = "
                      "'client backend' AND datname = current_database()");
    if (!rows) return rows.error();
    return std::stoi(*rows->at(0).at(0));
  }

 private:
  Error failed(PGresult* res, const std::string& sql) const {
    std::string what = res ? PQresultErrorMessage(res) : PQerrorMessage(conn_.get());
    return make_error(name_ + ": " + trimmed(what) + " (in: " + sql.substr(0, 120) + ")");
  }

  PgConn conn_;
  std::string name_;
  std::uint64_t affected_ = 0;
};

}  // namespace

Result<std::unique_ptr<ReshardConn>> connect_pg_reshard(const ServerAddress& server,
                                                        const CopyLogin& login) {
  const std::string host = server.unix_socket_dir.empty() ? server.host : server.unix_socket_dir;
  const std::string port = std::to_string(server.port);
  const std::string timeout =
      std::to_string(std::max<long long>(1, (login.connect_timeout.count() + 999) / 1000));
  const char* keys[] = {
      "host", "port", "user", "password", "dbname", "connect_timeout", "application_name", nullptr};
  const char* values[] = {
      host.c_str(),           port.c_str(),    login.user.c_str(),  login.password.c_str(),
      login.database.c_str(), timeout.c_str(), "shardgate-reshard", nullptr};
  PgConn conn(PQconnectdbParams(keys, values, 0));
  if (!conn || PQstatus(conn.get()) != CONNECTION_OK)
    return make_error("cannot connect to " + server.name + " as " + login.user + ": " +
                      trimmed(conn ? PQerrorMessage(conn.get()) : "out of memory"));
  return std::unique_ptr<ReshardConn>(new PgReshardConn(std::move(conn), server.name));
}

}  // namespace shardgate::replication
