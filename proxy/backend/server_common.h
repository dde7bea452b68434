// What every server connection has, whatever its protocol: the login it was
// opened with and the one state it is in. Pools and sessions see this much.
#pragma once

#include <cstdint>
#include <string>

namespace shardgate::backend {

struct ServerLogin {
  std::string user;
  std::string password;
  std::string database;
  // Protocol options the connection is opened with (MySQL: the client
  // capability flags that change the format of answers, and the charset).
  std::uint32_t options = 0;
};

enum class ServerState {
  Connecting,  // startup and authentication in progress
  Idle,        // in a pool, no transaction open
  Active,      // leased to a client session
  Broken,      // must be closed, never reused
};

}  // namespace shardgate::backend
