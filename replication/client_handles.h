// Owning handles for the control plane's client libraries (libpq, MariaDB
// Connector/C), so every early return closes what it opened.
#pragma once

#include <libpq-fe.h>

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

}  // namespace shardgate::replication
