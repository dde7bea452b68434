// The one explicit state every client connection is in, whatever its protocol.
#pragma once

namespace shardgate::session {

enum class ClientState {
  Startup,         // greeting, SSLRequest, StartupMessage / CancelRequest
  Authenticating,  // password exchange
  Idle,            // logged in, no server connection held
  Active,          // a server connection is attached
  Closing,
};

}  // namespace shardgate::session
