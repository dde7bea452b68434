// A blocking SQL client for failover drills, the same for both engines:
// libpq for PostgreSQL, MariaDB Connector/C for MySQL. One per thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"

namespace shardgate::shardctl {

struct DrillTarget {
  bool mysql = false;
  std::string host = "127.0.0.1";
  int port = 0;
  std::string user, password, database;
};

class DrillClient {
 public:
  virtual ~DrillClient() = default;
  // Runs a statement; the error is the server's (or the client library's) message.
  virtual Result<void> exec(const std::string& sql) = 0;
  // A statement with integer parameters, the way drivers send them: the
  // extended protocol (PostgreSQL, $1...) or a server-side prepared
  // statement (MySQL, ?), prepared once per connection.
  virtual Result<void> exec_params(const std::string& sql,
                                   const std::vector<std::int64_t>& params) = 0;
  // The first column of every row.
  virtual Result<std::vector<std::string>> column(const std::string& sql) = 0;
  // Whether the connection still works (after an error: reconnect when not).
  virtual bool usable() const = 0;
};

// Connects with a 2 s timeout (MySQL: reads and writes time out after 10 s).
Result<std::unique_ptr<DrillClient>> drill_connect(const DrillTarget& target);

}  // namespace shardgate::shardctl
