// Owning handles for the control plane's client libraries (libpq, MariaDB
// Connector/C), so every early return closes what it opened.
#pragma once

#include <libpq-fe.h>
#include <mysql.h>

#include <memory>

namespace shardgate::replication {

struct PgConnCloser {
  void operator()(PGconn* c) const { PQfinish(c); }
};
using PgConn = std::unique_ptr<PGconn, PgConnCloser>;

struct PgResultCloser {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, PgResultCloser>;

struct MyCloser {
  void operator()(MYSQL* m) const { mysql_close(m); }
};
using MyConn = std::unique_ptr<MYSQL, MyCloser>;

struct MyResultCloser {
  void operator()(MYSQL_RES* r) const { mysql_free_result(r); }
};
using MyResult = std::unique_ptr<MYSQL_RES, MyResultCloser>;

}  // namespace shardgate::replication
