// What every server connection has, whatever its protocol: the login it was
// opened with and the one state it is in. Pools and sessions see this much.
#pragma once

#include <string>

namespace shardgate::backend {

struct ServerLogin {
  std::string user;
  std::string password;
  std::string database;
};

enum class ServerState {
  Connecting,  // startup and authentication in progress
  Idle,        // in a pool, no transaction open
  Active,      // leased to a client session
  Broken,      // must be closed, never reused
};

}  // namespace shardgate::backend
