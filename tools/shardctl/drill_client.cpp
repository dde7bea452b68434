#include "tools/shardctl/drill_client.h"

#include <libpq-fe.h>
#include <mysql.h>

namespace shardgate::shardctl {
namespace {

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\t') c = ' ';
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

class PgClient final : public DrillClient {
 public:
  explicit PgClient(PGconn* c) : conn_(c) {}
  ~PgClient() override { PQfinish(conn_); }

  Result<void> exec(const std::string& sql) override { return outcome(PQexec(conn_, sql.c_str())); }

  Result<void> exec_params(const std::string& sql,
                           const std::vector<std::int64_t>& params) override {
    std::vector<std::string> text;
    for (auto v : params) text.push_back(std::to_string(v));
    std::vector<const char*> values;
    for (const auto& t : text) values.push_back(t.c_str());
    return outcome(PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                                values.data(), nullptr, nullptr, 0));
  }

  Result<std::vector<std::string>> column(const std::string& sql) override {
    PGresult* r = PQexec(conn_, sql.c_str());
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
      std::string error = PQresultErrorMessage(r);
      PQclear(r);
      return make_error(one_line(error));
    }
    std::vector<std::string> out;
    for (int i = 0; i < PQntuples(r); ++i) out.emplace_back(PQgetvalue(r, i, 0));
    PQclear(r);
    return out;
  }

  bool usable() const override { return PQstatus(conn_) == CONNECTION_OK; }

 private:
  // Clears the result; the error the statement ended with, if any.
  Result<void> outcome(PGresult* r) {
    const auto status = PQresultStatus(r);
    std::string error = PQresultErrorMessage(r);
    PQclear(r);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
      return make_error(one_line(error.empty() ? PQerrorMessage(conn_) : error));
    return {};
  }

  PGconn* conn_;
};

class MyClient final : public DrillClient {
 public:
  explicit MyClient(MYSQL* m) : mysql_(m) {}
  ~MyClient() override {
    for (auto& [sql, stmt] : prepared_) mysql_stmt_close(stmt);
    mysql_close(mysql_);
  }

  Result<void> exec_params(const std::string& sql,
                           const std::vector<std::int64_t>& params) override {
    MYSQL_STMT*& stmt = prepared_[sql];
    if (!stmt) {
      stmt = mysql_stmt_init(mysql_);
      if (!stmt) return make_error("out of memory");
      if (mysql_stmt_prepare(stmt, sql.data(), sql.size()) != 0) return stmt_failure(stmt);
    }
    std::vector<long long> values(params.begin(), params.end());
    std::vector<MYSQL_BIND> binds(values.size());
    for (std::size_t i = 0; i < values.size(); ++i) {
      binds[i] = MYSQL_BIND{};
      binds[i].buffer_type = MYSQL_TYPE_LONGLONG;
      binds[i].buffer = &values[i];
    }
    if (mysql_stmt_bind_param(stmt, binds.data()) != 0 || mysql_stmt_execute(stmt) != 0)
      return stmt_failure(stmt);
    mysql_stmt_store_result(stmt);
    mysql_stmt_free_result(stmt);
    return {};
  }

  Result<void> exec(const std::string& sql) override {
    if (mysql_real_query(mysql_, sql.data(), sql.size()) != 0) return failure();
    if (MYSQL_RES* r = mysql_store_result(mysql_)) mysql_free_result(r);
    return {};
  }

  Result<std::vector<std::string>> column(const std::string& sql) override {
    if (mysql_real_query(mysql_, sql.data(), sql.size()) != 0) return failure();
    MYSQL_RES* r = mysql_store_result(mysql_);
    if (!r) return make_error("no result set");
    std::vector<std::string> out;
    while (MYSQL_ROW row = mysql_fetch_row(r)) out.emplace_back(row[0] ? row[0] : "");
    mysql_free_result(r);
    return out;
  }

  bool usable() const override { return !broken_; }

 private:
  Error failure() {
    const unsigned code = mysql_errno(mysql_);
    // 2006 gone away, 2013 lost during query, 1927 the proxy lost the server
    // connection, 1053/1317/1927: the statement ended with its connection.
    if (code == 2006 || code == 2013 || code == 2055) broken_ = true;
    return make_error(std::to_string(code) + " " + mysql_error(mysql_));
  }

  Error stmt_failure(MYSQL_STMT* stmt) {
    const unsigned code = mysql_stmt_errno(stmt);
    if (code == 2006 || code == 2013 || code == 2055) broken_ = true;
    return make_error(std::to_string(code) + " " + mysql_stmt_error(stmt));
  }

  MYSQL* mysql_;
  std::map<std::string, MYSQL_STMT*> prepared_;
  bool broken_ = false;
};

}  // namespace

Result<std::unique_ptr<DrillClient>> drill_connect(const DrillTarget& t) {
  if (t.mysql) {
    MYSQL* m = mysql_init(nullptr);
    if (!m) return make_error("out of memory");
    const unsigned connect_timeout = 2, io_timeout = 10;
    mysql_optionsv(m, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
    mysql_optionsv(m, MYSQL_OPT_READ_TIMEOUT, &io_timeout);
    mysql_optionsv(m, MYSQL_OPT_WRITE_TIMEOUT, &io_timeout);
    if (!mysql_real_connect(m, t.host.c_str(), t.user.c_str(), t.password.c_str(),
                            t.database.c_str(), static_cast<unsigned>(t.port), nullptr, 0)) {
      std::string error = std::to_string(mysql_errno(m)) + " " + mysql_error(m);
      mysql_close(m);
      return make_error(error);
    }
    return std::unique_ptr<DrillClient>(new MyClient(m));
  }
  const std::string port = std::to_string(t.port);
  const char* keys[] = {"host", "port", "user", "password", "dbname", "connect_timeout", nullptr};
  const char* values[] = {t.host.c_str(),     port.c_str(), t.user.c_str(), t.password.c_str(),
                          t.database.c_str(), "2",          nullptr};
  PGconn* c = PQconnectdbParams(keys, values, 0);
  if (!c || PQstatus(c) != CONNECTION_OK) {
    std::string error = c ? one_line(PQerrorMessage(c)) : "out of memory";
    PQfinish(c);
    return make_error(error);
  }
  // Notices (CREATE TABLE IF NOT EXISTS ... skipping) would clutter the report.
  PQsetNoticeProcessor(
      c, [](void*, const char*) {}, nullptr);
  return std::unique_ptr<DrillClient>(new PgClient(c));
}

}  // namespace shardgate::shardctl
